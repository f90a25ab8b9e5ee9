"""The exemplar's grain given to a synthesised texture: after the optimisation, the finest
octave (``resample.finest_octave``) takes the exemplar's distribution of values, rank for rank,
along each of the exemplar's principal colour axes (histogram matching, as Heeger and Bergen's
pyramid synthesis does on every band, in their colour space; here on the finest band only).

The optimisation leaves the finest octave unlike the exemplar's: weaker in places (the patch
loss pulls each patch towards its match, and where matches disagree the pixels settle between
them) and, on smooth photos, speckled where the exemplar is clean. Matching the octave's
values gives its strength back where it is weak and takes the speckle out, without moving
anything coarser: layout, shapes and colours stay the optimisation's. Matched per RGB channel
instead, smooth areas came out flatter than in the exemplar (docs/quality.md, fifth round)."""
from __future__ import annotations

import torch

from ..features.resample import finest_octave
from ..losses.distribution import by_rank, quantiles


def match_grain(pixels: torch.Tensor, exemplar: torch.Tensor, strength: float, circular: bool) -> torch.Tensor:
    """``pixels`` (1, C, H, W, [0, 255]) with their finest octave moved ``strength`` (0: not at
    all, 1: fully) towards the values of the same ranks in ``exemplar``'s (1, C, h, w), per
    principal colour axis of the exemplar. With ``circular`` the octave wraps around (tileable
    output stays tileable)."""
    if not strength:
        return pixels
    colours = exemplar[0].flatten(1)
    axes = torch.linalg.eigh(torch.cov(colours)).eigenvectors if colours.shape[0] > 1 else colours.new_ones(1, 1)
    octave = axes.T @ finest_octave(pixels, circular)[0].flatten(1)  # (axes, positions)
    targets = torch.sort(axes.T @ finest_octave(exemplar)[0].flatten(1), dim=1).values
    matched = by_rank(octave, quantiles(targets, octave.shape[1]))
    return pixels + strength * (axes @ (matched - octave)).view_as(pixels)
