"""The first phase's start image: noise with the exemplar's colours and spectrum.

Uniform noise in [0, 255] (the reference's start) has every colour and every frequency at the
same strength; at the coarsest phase, a handful of L-BFGS steps on a 32x32 image leave much of
it in place, and later phases inherit it as colour speckle and soft blotches (docs/quality.md,
eighth round: the marble at its own size lost its veins to it). Asymptotic discrete spot noise
(ADSN; Galerne, Gousseau and Morel, "Random phase textures", IEEE TIP 2011) is the Gaussian
texture with the exemplar's mean colour and autocorrelation: the exemplar minus its mean,
convolved with white noise. One noise image for all channels keeps the exemplar's colour
correlations; the convolution is circular, so the start of a tileable texture tiles too."""
from __future__ import annotations

import numpy as np
import torch


def spot_noise(exemplar: torch.Tensor, size: tuple[int, int], seed: int) -> torch.Tensor:
    """(1, C, h, w) exemplar in [0, 255] -> (1, C, height, width) ADSN for ``size`` = (width,
    height), clamped to [0, 255]. An exemplar larger than ``size`` contributes its centre,
    rescaled so the noise keeps the whole exemplar's variance."""
    width, height = size
    mean = exemplar.mean(dim=(-2, -1), keepdim=True)
    centred = (exemplar - mean).double()
    full_energy = centred.pow(2).sum(dim=(-2, -1), keepdim=True)
    top = max(0, (centred.shape[-2] - height) // 2)
    left = max(0, (centred.shape[-1] - width) // 2)
    spot = centred[..., top:top + height, left:left + width]
    spot = spot * (full_energy / spot.pow(2).sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)).sqrt()
    spot = spot / np.sqrt(exemplar.shape[-2] * exemplar.shape[-1])  # ADSN's normalisation: the exemplar's variance
    padded = torch.zeros(exemplar.shape[:2] + (height, width), dtype=torch.float64, device=exemplar.device)
    padded[..., :spot.shape[-2], :spot.shape[-1]] = spot
    white = torch.from_numpy(np.random.default_rng(seed).standard_normal((height, width))).to(exemplar.device)
    noise = torch.fft.irfft2(torch.fft.rfft2(padded) * torch.fft.rfft2(white), s=(height, width))
    return (noise + mean.double()).clamp(0, 255).to(torch.float32)
