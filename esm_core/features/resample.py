"""Resizing images between phases, with wrap-around for tileable output."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def resize(pixels: torch.Tensor, width: int, height: int, circular: bool = False) -> torch.Tensor:
    """Bicubic resize of (N, C, H, W); anti-aliased when shrinking. With ``circular`` the
    image is treated as one period of a tiling: it is resized as the centre of a 3x3
    tiling, so the result's edges continue each other."""
    if pixels.shape[-2:] == (height, width):
        return pixels
    if not circular:
        return F.interpolate(pixels, size=(height, width), mode="bicubic", align_corners=False, antialias=True)
    tiled = pixels.repeat(1, 1, 3, 3)
    big = F.interpolate(tiled, size=(3 * height, 3 * width), mode="bicubic", align_corners=False, antialias=True)
    return big[..., height:2 * height, width:2 * width]


def finest_octave(pixels: torch.Tensor, circular: bool = False) -> torch.Tensor:
    """The detail that halving the resolution loses: ``pixels`` minus their bicubic
    down-and-up-sampled copy (with ``circular``, as one period of a tiling)."""
    height, width = pixels.shape[-2:]
    coarse = resize(resize(pixels, max(1, width // 2), max(1, height // 2), circular=circular), width, height,
                    circular=circular)
    return pixels - coarse
