"""Where a fill starts: each hole begins as a copy of a known region whose surroundings
match the hole's surroundings, so that the patch loss refines sharp texture.

Measured reason (docs/fill.md): for the patches that straddle a hole's border, a flat fill
has a lower Neural Patches loss than the true texture, so L-BFGS started from noise settles
on a flat, blurred fill. Started from a copy, it only has to remove the seam.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt, label
from scipy.signal import correlate

from ..features.holes import grow

CANDIDATES = 4  # the seed picks one of this many good, distinct placements
MIN_OVERLAP = 0.25  # least share of the hole's surroundings a placement must compare


def _correlate(image: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Sum over the template of template * image, for every placement (valid mode)."""
    return correlate(image, template, mode="valid", method="fft")


def placement_costs(
    search: np.ndarray, usable: np.ndarray, target: np.ndarray, ring: np.ndarray, hole: np.ndarray,
    circular: bool,
) -> np.ndarray:
    """Mean squared difference between ``target``'s ``ring`` pixels and ``search`` at every
    placement of the template's top-left corner, +inf where the placement would copy a hole
    pixel from outside ``usable`` or compares too little of the ring. ``search`` (H, W, C)
    float, ``usable`` (H, W) bool; ``target`` (h, w, C), ``ring`` and ``hole`` (h, w) bool.
    Placements run over the search image padded by the template's size (zeros, or its
    wrap-around when ``circular``), so templates may stick out."""
    h, w = ring.shape
    pad = ((h, h), (w, w))
    mode = "wrap" if circular else "constant"
    known = np.pad(usable.astype(np.float64), pad, mode=mode)
    values = np.pad(search, pad + ((0, 0),), mode=mode) * known[..., None]
    weight = ring.astype(np.float64)
    compared = _correlate(known, weight)
    squares = _correlate(np.sum(values * values, axis=2), weight)
    cross = sum(_correlate(values[..., c], weight * target[..., c]) for c in range(target.shape[2]))
    target_squares = _correlate(known, weight * np.sum(target * target, axis=2))
    cost = (squares - 2.0 * cross + target_squares) / np.maximum(compared, 1e-9)
    lands_unknown = _correlate(1.0 - known, hole.astype(np.float64))
    invalid = (lands_unknown > 0.5) | (compared < MIN_OVERLAP * weight.sum())
    cost[invalid] = np.inf
    return cost


def _pick(cost: np.ndarray, spacing: int, rng: np.random.Generator) -> tuple[int, int] | None:
    """One of the CANDIDATES cheapest placements at least ``spacing`` apart."""
    order = np.argsort(cost, axis=None)
    chosen: list[tuple[int, int]] = []
    for flat in order[: 50_000]:
        if not np.isfinite(cost.flat[flat]):
            break
        y, x = np.unravel_index(flat, cost.shape)
        if all(abs(y - cy) >= spacing or abs(x - cx) >= spacing for cy, cx in chosen):
            chosen.append((int(y), int(x)))
            if len(chosen) == CANDIDATES:
                break
    return chosen[rng.integers(len(chosen))] if chosen else None


def _halves(part: np.ndarray) -> list[np.ndarray]:
    """``part`` cut in two across the longer side of its bounding box."""
    rows, cols = np.nonzero(part.any(axis=1))[0], np.nonzero(part.any(axis=0))[0]
    first = part.copy()
    if rows[-1] - rows[0] >= cols[-1] - cols[0]:
        first[(rows[0] + rows[-1] + 1) // 2:] = False
    else:
        first[:, (cols[0] + cols[-1] + 1) // 2:] = False
    return [half for half in (first, part & ~first) if half.any()]


def start_image(
    image: np.ndarray, hole: np.ndarray, source: np.ndarray | None, ring_width: int, circular: bool,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``image`` (uint8 HxWxC) with ``hole`` replaced by copies of known pixels (or of
    ``source``): each connected part of the hole is copied whole from the placement whose
    ``ring_width``-pixel surroundings match best; a part that fits nowhere is cut in halves,
    filled one after the other (a filled half counts as surroundings for the next). A
    single pixel that fits nowhere gets a random known (source) pixel. Also returns which
    copy each pixel came from (int32 HxW, 0 = known), so that the seams are known."""
    rng = np.random.default_rng(seed)
    pieces = np.zeros(hole.shape, np.int32)
    result = image.astype(np.float64)
    search = result if source is None else source.astype(np.float64)
    usable = ~hole if source is None else np.ones(source.shape[:2], bool)
    unknown = hole.copy()
    parts, count = label(hole, structure=np.ones((3, 3)))
    queue = [parts == index for index in range(1, count + 1)]
    while queue:
        part = queue.pop(0)
        grown = grow(part, ring_width, circular)
        rows, cols = np.nonzero(grown.any(axis=1))[0], np.nonzero(grown.any(axis=0))[0]
        # a part that wraps around an edge spans the whole axis: take its whole extent
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        ring = (grown & ~unknown)[box]
        cost = placement_costs(search, usable, result[box], ring, part[box], circular)
        place = _pick(cost, max(1, ring_width // 2), rng)
        ys, xs = np.nonzero(part[box])
        if place is None and len(ys) > 1:
            queue[:0] = _halves(part)
            continue
        pieces[part] = pieces.max() + 1
        if place is None:
            pool = search[usable]
            result[box][ys, xs] = pool[rng.integers(0, len(pool), len(ys))]
        else:
            # placement (py, px) puts the template's corner at (py - h, px - w) of the search image
            top, left = place[0] - ring.shape[0] + ys, place[1] - ring.shape[1] + xs
            if circular:
                top, left = top % search.shape[0], left % search.shape[1]
            result[box][ys, xs] = search[top, left]
        unknown &= ~part
    return np.clip(np.round(result), 0, 255).astype(np.uint8), pieces


def seam_distance(pieces: np.ndarray, circular: bool) -> np.ndarray:
    """For each pixel of a copy (``pieces`` > 0): how far (in pixels) it lies from the nearest
    pixel next to another copy or to a known pixel, i.e. from a seam; 0 on known pixels."""
    mode = "wrap" if circular else "edge"
    padded = np.pad(pieces, 1, mode=mode)
    centre = padded[1:-1, 1:-1]
    seam = ((centre != padded[:-2, 1:-1]) | (centre != padded[2:, 1:-1])
            | (centre != padded[1:-1, :-2]) | (centre != padded[1:-1, 2:]))
    if circular:  # the middle of a 3x3 tiling: distances wrap around
        height, width = pieces.shape
        depth = distance_transform_edt(~np.tile(seam, (3, 3)))[height:2 * height, width:2 * width]
    else:
        depth = distance_transform_edt(~seam)
    return np.where(pieces > 0, depth, 0.0)
