"""The texture's start image (esm_core.modes.spotnoise): noise with the exemplar's colours and
spectrum, seeded, of any size, tiling."""
from __future__ import annotations

import numpy as np
import torch

from esm_core.modes.spotnoise import spot_noise


def stripes(width: int = 64, height: int = 48, period: int = 8) -> torch.Tensor:
    """(1, 3, H, W): vertical stripes, a colour per channel, values in [0, 255]."""
    wave = torch.sin(torch.arange(width) * (2 * np.pi / period))
    colours = torch.tensor([[200.0, 40.0], [120.0, 30.0], [60.0, -20.0]])  # mean, amplitude per channel
    return (colours[:, :1, None] + colours[:, 1:, None] * wave).expand(3, height, width)[None].clone()


def test_the_noise_has_the_exemplars_mean_colour_and_contrast() -> None:
    exemplar = stripes()
    noise = spot_noise(exemplar, (160, 96), seed=1)
    assert noise.shape == (1, 3, 96, 160)
    assert torch.allclose(noise.mean(dim=(-2, -1)), exemplar.mean(dim=(-2, -1)), atol=4.0)
    ratio = noise.std(dim=(-2, -1)) / exemplar.std(dim=(-2, -1))
    assert ((ratio > 0.8) & (ratio < 1.25)).all(), ratio


def test_the_noise_has_the_exemplars_spectrum_and_colour_correlation() -> None:
    """Stripes of period 8 along x: the noise's power along x peaks at that period, and the
    channels move together as in the exemplar (one white noise drives them all; noise drawn
    per channel would leave them uncorrelated)."""
    noise = spot_noise(stripes(), (128, 64), seed=2)[0]
    power = torch.fft.rfft(noise[0] - noise[0].mean(), dim=1).abs().pow(2).mean(dim=0)
    near = power[128 // 8 - 2:128 // 8 + 3].sum() / power.sum()  # the padded spot's spectrum leaks to neighbours
    assert near > 0.8, near
    correlation = torch.corrcoef(noise.flatten(1))
    assert correlation[0, 1] > 0.9  # amplitudes 40 and 30: in phase
    assert correlation[0, 2] < -0.9  # 40 and -20: in opposite phase


def test_the_noise_is_seeded_and_tiles() -> None:
    exemplar = stripes()
    first = spot_noise(exemplar, (96, 80), seed=3)
    assert torch.equal(first, spot_noise(exemplar, (96, 80), seed=3))
    assert not torch.equal(first, spot_noise(exemplar, (96, 80), seed=4))
    # circular convolution: the step across the wrap is like any step inside
    inside = (first[..., :, 1:] - first[..., :, :-1]).abs().mean()
    across = (first[..., :, 0] - first[..., :, -1]).abs().mean()
    assert across < 1.5 * inside


def test_an_exemplar_larger_than_the_output_keeps_its_contrast() -> None:
    exemplar = stripes(width=256, height=256)
    noise = spot_noise(exemplar, (32, 24), seed=5)
    assert noise.shape == (1, 3, 24, 32)
    ratio = noise.std(dim=(-2, -1)) / exemplar.std(dim=(-2, -1))
    assert ((ratio > 0.6) & (ratio < 1.5)).all(), ratio
