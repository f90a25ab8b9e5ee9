"""The exemplar's grain given to a synthesised texture: after the optimisation, each of the
finest ``OCTAVES`` octaves (``resample.finest_octave`` of the image at full, half and quarter
size) takes the exemplar's distribution of values, rank for rank, along each of the exemplar's
principal colour axes (histogram matching, as Heeger and Bergen's pyramid synthesis does on
every band, in their colour space; here on the fine bands only). The two coarser octaves are
matched only when they are, as a whole, weaker than the exemplar's; along an axis where they
are ten times as strong (colour noise on a grey exemplar) they are matched whatever the rest is.

The optimisation leaves the fine octaves unlike the exemplar's: weaker in places (the patch
loss pulls each patch towards its match, and where matches disagree the pixels settle between
them) and, on smooth photos, speckled where the exemplar is clean. Matching the octaves' values
gives their strength back where it is weak and takes the speckle out, without moving anything
coarser: layout and colours stay the optimisation's. Matched per RGB channel instead, smooth
areas came out flatter than in the exemplar; the finest octave alone left the leaves' and
beans' shading soft (docs/quality.md, fifth and tenth rounds)."""
from __future__ import annotations

import torch

from ..features.resample import finest_octave, resize
from ..losses.distribution import by_rank, quantiles

# patch SWD at 512x512 over 19 photos x 2 seeds: the finest octave alone 0.0565, three 0.0499 (0.0502
# with the gate below, which keeps the marble as it was), four 0.0509 (docs/quality.md, tenth round)
OCTAVES = 3
MIN_OCTAVE_SIDE = 16  # an octave is matched only where both images keep this many pixels at its scale
# a coarser octave's colour axis this many times as strong (RMS) as the exemplar's is noise and is
# matched even where the gate leaves the octave alone: the grey rough canvas's chroma is 35-77 times
# the exemplar's; the strongest axis kept by the gate elsewhere, the marble's, 3.4 (docs/quality.md)
NOISE_RATIO = 10.0


def match_grain(pixels: torch.Tensor, exemplar: torch.Tensor, strength: float, circular: bool) -> torch.Tensor:
    """``pixels`` (1, C, H, W, [0, 255]) with their fine octaves moved ``strength`` (0: not at
    all, 1: fully) towards the values of the same ranks in ``exemplar``'s (1, C, h, w), per
    principal colour axis of the exemplar. With ``circular`` the octaves wrap around (tileable
    output stays tileable)."""
    if not strength:
        return pixels
    colours = exemplar[0].flatten(1)
    axes = torch.linalg.eigh(torch.cov(colours)).eigenvectors if colours.shape[0] > 1 else colours.new_ones(1, 1)
    height, width = pixels.shape[-2:]
    side = min(height, width, *exemplar.shape[-2:])
    matched = pixels
    # coarser first: the finer octaves are matched last, after the coarser changes' upsampling touched them
    for level in reversed([level for level in range(OCTAVES) if level == 0 or side >> level >= MIN_OCTAVE_SIDE]):
        scale = 2 ** level
        small = resize(matched, width // scale, height // scale, circular=circular)
        target = resize(exemplar, exemplar.shape[-1] // scale, exemplar.shape[-2] // scale)
        octave, target_octave = finest_octave(small, circular), finest_octave(target)
        values, targets = axes.T @ octave[0].flatten(1), axes.T @ target_octave[0].flatten(1)  # (axes, positions)
        power, target_power = values.pow(2).mean(1), targets.pow(2).mean(1)
        chosen = torch.ones_like(power, dtype=torch.bool)
        if level:
            # a coarser octave already as strong as the exemplar's is left alone: matching it reshaped the
            # marble's soft cells into sharper ones instead of giving it veins (docs/quality.md, tenth round)
            weaker = bool(power.sum() < target_power.sum())
            chosen = torch.full_like(chosen, weaker) | (power > NOISE_RATIO ** 2 * target_power)
            if not chosen.any():
                continue
        change = _octave_change(values, targets, chosen)
        matched = matched + resize((axes @ change).view_as(octave), width, height, circular=circular)
    return pixels + strength * (matched - pixels)


def _octave_change(values: torch.Tensor, targets: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """What gives the ``chosen`` rows of ``values`` (axes, positions) the distribution of the same
    rows of ``targets`` (axes, any count), value for value by rank; zero on the other rows."""
    matched = by_rank(values, quantiles(torch.sort(targets, dim=1).values, values.shape[1]))
    return (matched - values) * chosen[:, None]
