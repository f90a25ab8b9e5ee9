"""Where a fill starts: each hole begins as a copy of a known region whose surroundings
match the hole's surroundings, so that the patch loss refines sharp texture; the copy's
border is then blended into the known pixels in the gradient domain.

Measured reason (docs/fill.md): for the patches that straddle a hole's border, a flat fill
has a lower Neural Patches loss than the true texture, so L-BFGS started from noise settles
on a flat, blurred fill. Started from a copy, it only has to remove the seam; the patch loss
halves the copy's step across the border but leaves it twice the photo's own, so the start
hands it a blended border.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.ndimage import distance_transform_edt, label
from scipy.signal import correlate
from scipy.sparse.linalg import cg

from ..features.holes import grow

CANDIDATES = 4  # the seed picks one of this many good, distinct placements
MIN_OVERLAP = 0.25  # least share of the hole's surroundings a placement must compare
BLEND_REACH = 4.0  # pixels: how far into the hole the border's correction reaches (1/e)
_NEIGHBOURS = ((1, 0), (-1, 0), (0, 1), (0, -1))


@dataclass
class StartCopy:
    """The copies a fill starts from."""

    pixels: np.ndarray  # float64 HxWxC: the image with every hole pixel copied
    pieces: np.ndarray  # int32 HxW: which copy each pixel came from, 0 = known
    origin: np.ndarray  # int64 HxWx2: the (row, col) of the search image each hole pixel came from, -1 if none


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


def _search(image: np.ndarray, hole: np.ndarray, source: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Where copies come from (float HxWxC) and which of its pixels may be copied."""
    if source is None:
        return image.astype(np.float64), ~hole
    return source.astype(np.float64), np.ones(source.shape[:2], bool)


def start_image(
    image: np.ndarray, hole: np.ndarray, source: np.ndarray | None, ring_width: int, circular: bool,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """A fill's start (uint8 HxWxC): ``copy_start``'s copies with their borders blended
    (``blend_seams``), and which copy each pixel came from (int32 HxW, 0 = known)."""
    copy = copy_start(image, hole, source, ring_width, circular, seed)
    return blend_seams(copy, image, hole, source, circular), copy.pieces


def copy_start(
    image: np.ndarray, hole: np.ndarray, source: np.ndarray | None, ring_width: int, circular: bool,
    seed: int,
) -> StartCopy:
    """``image`` (uint8 HxWxC) with ``hole`` replaced by copies of known pixels (or of
    ``source``): each connected part of the hole is copied whole from the placement whose
    ``ring_width``-pixel surroundings match best; a part that fits nowhere is cut in halves,
    filled one after the other (a filled half counts as surroundings for the next). A
    single pixel that fits nowhere gets a random known (source) pixel."""
    rng = np.random.default_rng(seed)
    pieces = np.zeros(hole.shape, np.int32)
    origin = np.full(hole.shape + (2,), -1, np.int64)
    result = image.astype(np.float64)
    search, usable = _search(image, hole, source)
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
            origin[box][ys, xs] = np.stack([top, left], axis=1)
        unknown &= ~part
    return StartCopy(result, pieces, origin)


def blend_seams(
    copy: StartCopy, image: np.ndarray, hole: np.ndarray, source: np.ndarray | None, circular: bool,
    reach: float = BLEND_REACH,
) -> np.ndarray:
    """``copy``'s pixels (uint8) with a correction added inside the hole that makes the step
    from each known pixel to its hole neighbour the step the copy had at its origin, fading
    over ``reach`` pixels into the hole (screened Poisson: the correction c solves
    (degree + 1/reach^2) c_p - sum of c over p's hole neighbours = sum, over p's known
    neighbours q, of image(q) minus the search image at q's place relative to p's origin).
    A plain Poisson blend (no screening) carries the border's mismatch across the whole hole
    as a visible shade; see docs/fill.md. Known pixels are never changed."""
    search, usable = _search(image, hole, source)
    known = copy.pixels  # equal to the image outside the hole
    height, width = hole.shape
    ys, xs = np.nonzero(hole)
    count = len(ys)
    index = np.full(hole.shape, -1, np.int64)
    index[ys, xs] = np.arange(count)
    degree = np.full(count, 1.0 / reach ** 2)
    border = np.zeros((count, known.shape[2]))
    rows, cols = [], []
    for dy, dx in _NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        if circular:
            ny, nx = ny % height, nx % width
        inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        p, ny, nx = np.nonzero(inside)[0], ny[inside], nx[inside]
        in_hole = hole[ny, nx]
        rows.append(p[in_hole])
        cols.append(index[ny[in_hole], nx[in_hole]])
        degree[p[in_hole]] += 1
        p, ny, nx = p[~in_hole], ny[~in_hole], nx[~in_hole]
        sy, sx = copy.origin[ys[p], xs[p], 0] + dy, copy.origin[ys[p], xs[p], 1] + dx
        valid = copy.origin[ys[p], xs[p], 0] >= 0  # a random pixel has no origin to compare
        if circular:
            sy, sx = sy % search.shape[0], sx % search.shape[1]
        valid &= (sy >= 0) & (sy < search.shape[0]) & (sx >= 0) & (sx < search.shape[1])
        valid[valid] &= usable[sy[valid], sx[valid]]
        degree[p[valid]] += 1
        np.add.at(border, p[valid], known[ny[valid], nx[valid]] - search[sy[valid], sx[valid]])
    neighbours = np.concatenate(rows)
    system = sparse.csr_matrix(
        (np.concatenate([-np.ones(len(neighbours)), degree]),
         (np.concatenate([neighbours, np.arange(count)]), np.concatenate(cols + [np.arange(count)]))),
        shape=(count, count))
    result = copy.pixels.copy()
    for channel in range(known.shape[2]):  # diagonally dominant: conjugate gradients converge in tens of steps
        correction, _ = cg(system, border[:, channel], rtol=1e-6, maxiter=1000)
        result[ys, xs, channel] += correction
    return np.clip(np.round(result), 0, 255).astype(np.uint8)


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
