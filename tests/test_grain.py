"""The grain step (esm_core.modes.grain): a soft image gets the exemplar's fine detail back
without its coarser content moving, tileable images stay tileable, strength 0 changes nothing."""
from __future__ import annotations

import torch

from esm_core.features.resample import finest_octave, resize
from esm_core.modes.grain import match_grain


def _texture(seed: int, size: int = 64) -> torch.Tensor:
    """Noise with structure at every scale, in [0, 255]."""
    generator = torch.Generator().manual_seed(seed)
    image = sum(resize(torch.rand(1, 3, size // step, size // step, generator=generator), size, size) * step
                for step in (1, 2, 4, 8))
    return (image - image.min()) / (image.max() - image.min()) * 255


def _detail_rms(image: torch.Tensor) -> float:
    return float(finest_octave(image).pow(2).mean().sqrt())


def _soft(image: torch.Tensor, circular: bool = False) -> torch.Tensor:
    """``image`` with most of its finest octave gone, as the optimisation leaves it in places."""
    return image - 0.7 * finest_octave(image, circular)


def test_a_soft_image_gets_the_exemplars_grain_and_keeps_its_coarse_content() -> None:
    exemplar = _texture(0)
    soft = _soft(_texture(1))  # the same kind of texture
    sharpened = match_grain(soft, exemplar, 1.0, circular=False)
    assert _detail_rms(soft) < 0.6 * _detail_rms(exemplar)
    assert abs(_detail_rms(sharpened) / _detail_rms(exemplar) - 1) < 0.25
    # the image at a quarter of its size barely moves: what was added is fine detail
    coarse_change = (resize(sharpened, 16, 16) - resize(soft, 16, 16)).abs().mean()
    assert coarse_change < 0.35 * (sharpened - soft).abs().mean()  # measured 0.26


def test_half_strength_goes_half_way_and_zero_changes_nothing() -> None:
    exemplar, soft = _texture(0), _soft(_texture(1))
    full, half = (match_grain(soft, exemplar, strength, circular=False) for strength in (1.0, 0.5))
    assert torch.allclose(half - soft, 0.5 * (full - soft), atol=1e-3)
    assert match_grain(soft, exemplar, 0.0, circular=False) is soft


def test_tileable_images_stay_tileable() -> None:
    """With ``circular`` the step has no edges: shifting the tile shifts the result (by an even
    number of pixels: the octave halves the resolution)."""
    exemplar, tile = _texture(0), _soft(torch.roll(_texture(1), (5, 9), dims=(2, 3)), circular=True)
    shifted = torch.roll(tile, (18, 40), dims=(2, 3))
    assert torch.allclose(torch.roll(match_grain(tile, exemplar, 1.0, circular=True), (18, 40), dims=(2, 3)),
                          match_grain(shifted, exemplar, 1.0, circular=True), atol=0.05)  # ties may swap
