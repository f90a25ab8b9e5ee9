"""Keeps Neural Patches from copying the exemplar wholesale (docs/quality.md).

The patch loss is lowest when the image is the exemplar, and nearest-neighbour fields drift
there: a region whose patches all match the exemplar at one offset (style position minus image
position) is a verbatim copy of it. After every match, an offset that more than
``COPY_FRACTION`` of the grid's positions share is penalised in proportion to its excess, and
the patches using it are matched again, exactly, with every candidate's score lowered by the
penalty of the offset it would have. Rematched independently, neighbouring patches would pick
unrelated offsets and blur; a few propagation passes (PatchMatch's) let each take over a
neighbour's offset, with a bonus for every neighbour it then agrees with, so a copied region
breaks into smaller coherent pieces. Small coherent regions, which keep the texture's
structure, cost nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..features.patches import extract_patches, match_exact, normalise_rows, with_backoff

# An offset is free up to this fraction of the style grid (or of the image's, if larger): 40 % of
# the square that `esm eval`'s copy measure counts (a quarter of the exemplar's side, 1/16 of
# its area). Its penalty grows linearly to the full strength at twice that. Measured
# (docs/quality.md, sixth round): with variety 0.5, 0.03 let the fence photo come back 0.12-0.13
# copied at the exemplar's own size, 0.02 left the roughcast flat (0.20); 0.025 neither.
COPY_FRACTION = 0.025
MIN_FREE = 4  # positions an offset may always hold (tiny coarse grids)
PROPAGATION_ROUNDS = 3  # passes in which rematched patches may take over a neighbour's offset
COHERENCE = 0.5  # bonus, times the strength, for each neighbour sharing a candidate's offset
# The strength applies in full up to FULL_AREA times the exemplar's area and falls geometrically
# to FADED_SHARE of it at FADED_AREA times (twice the exemplar's side), staying there beyond.
# Measured (docs/quality.md): near the exemplar's size the patch loss rebuilds the exemplar
# unless the penalty is strong (at variety 0.1: 0.05 left copies on 4 of 19 photos, 0.5 on none;
# variety 0.5 and 1.0 drift to copies harder, and 5 holds them). At twice its side, where the
# structure loss runs from the first phase (seventh round), 2 kept copies to 0.67 at most and
# gave the lowest patch SWD (0.073; 5: 0.076 with longer copies; 0.5 under the old layout phase).
FULL_AREA = 1.3  # covers the 8 px margin around a non-tileable texture of the exemplar's size
FADED_AREA = 4.0
FADED_SHARE = 0.4


def strength_for_size(strength: float, output_area: int, exemplar_area: int) -> float:
    """The penalty strength for an output of ``output_area`` pixels from an exemplar of
    ``exemplar_area``: ``strength`` near the exemplar's size, ``FADED_SHARE`` of it from twice
    its side."""
    ratio = output_area / exemplar_area
    if ratio <= FULL_AREA:
        return strength
    fade = min(1.0, math.log(ratio / FULL_AREA) / math.log(FADED_AREA / FULL_AREA))
    return strength * FADED_SHARE ** fade


@dataclass(frozen=True)
class OffsetTable:
    """Offsets between a query grid (the image's patches) and a style grid, as indices into
    one flat table: offset (dy, dx) = style position - query position."""

    query: tuple[int, int]  # rows, columns
    style: tuple[int, int]

    @property
    def size(self) -> int:
        return (self.query[0] + self.style[0] - 1) * (self.query[1] + self.style[1] - 1)

    def keys(self, query_positions: torch.Tensor, style_positions: torch.Tensor) -> torch.Tensor:
        """Table indices of the offsets between row-major grid positions (broadcast)."""
        query_cols, style_cols = self.query[1], self.style[1]
        dy = style_positions // style_cols - query_positions // query_cols + (self.query[0] - 1)
        dx = style_positions % style_cols - query_positions % query_cols + (query_cols - 1)
        return dy * (query_cols + style_cols - 1) + dx


def offset_penalties(table: OffsetTable, keys: torch.Tensor, strength: float) -> torch.Tensor:
    """(table size,): each offset's penalty given the offsets ``keys`` in use: 0 up to the
    free share of the grid, rising linearly to ``strength`` at twice it."""
    free = max(float(MIN_FREE), COPY_FRACTION * max(table.style[0] * table.style[1], table.query[0] * table.query[1]))
    counts = torch.bincount(keys, minlength=table.size).to(torch.float32)
    return ((counts - free) / free).clamp_(0.0, 1.0).mul_(strength)


def spread_copies(
    features: torch.Tensor, circular: bool, style: torch.Tensor, indices: torch.Tensor, table: OffsetTable,
    style_positions: torch.Tensor, strength: float, variety: float = 0.0,
    style_history: torch.Tensor | None = None,
) -> torch.Tensor:
    """``indices`` (each image patch's style patch) with the patches at over-used offsets
    matched again. ``features`` (1, C, H, W) are the image's (``circular``: its patches wrap
    around), ``style`` (style patches, D) the row-normalised style patches,
    ``style_positions`` their style grid positions; ``variety`` and ``style_history`` bias
    the new matches as they did the first."""
    queries = torch.arange(len(indices), device=indices.device)
    keys = table.keys(queries, style_positions[indices])
    penalties = offset_penalties(table, keys, strength)
    crowded = (penalties[keys] > 0).nonzero()[:, 0]
    if len(crowded) == 0:
        return indices
    bias = variety * style_history if (variety and style_history is not None) else torch.zeros_like(style[:, 0])

    def penalty(start: int, stop: int) -> torch.Tensor:
        return penalties[table.keys(crowded[start:stop, None], style_positions[None, :])]

    current = normalise_rows(extract_patches(features, circular)[crowded])
    spread = indices.clone()
    spread[crowded] = with_backoff(lambda budget: match_exact(current, style, variety, style_history, budget,
                                                              penalty).indices)
    neighbours = _neighbours(crowded, table.query, circular)
    patch_at = torch.full((table.style[0] * table.style[1],), -1, dtype=torch.long, device=indices.device)
    patch_at[style_positions] = torch.arange(len(style_positions), device=indices.device)
    for _ in range(PROPAGATION_ROUNDS):
        keys = table.keys(queries, style_positions[spread])
        penalties = offset_penalties(table, keys, strength)
        candidates = _neighbour_candidates(spread, crowded, neighbours, table.style, style_positions, patch_at)
        candidate_keys = table.keys(crowded[:, None], style_positions[candidates])
        neighbour_keys = torch.stack([torch.where(inside, keys[at], -1) for _, _, at, inside in neighbours], 1)
        agreeing = (candidate_keys[:, :, None] == neighbour_keys[:, None, :]).sum(2)
        scores = _scores(current, style, candidates) - bias[candidates] - penalties[candidate_keys]
        scores += COHERENCE * strength * agreeing
        spread[crowded] = candidates.gather(1, scores.argmax(1, keepdim=True))[:, 0]
    return spread


_DIRECTIONS = ((0, 1), (0, -1), (1, 0), (-1, 0))
_SCORE_ROWS = 2048
Neighbour = tuple[int, int, torch.Tensor, torch.Tensor]  # dy, dx, positions, inside the grid


def _neighbours(rows: torch.Tensor, shape: tuple[int, int], circular: bool) -> list[Neighbour]:
    """For each of the four directions, the row-major grid positions of ``rows``' neighbours
    (clamped to the grid) and whether they lie inside it (always, when ``circular`` wraps)."""
    grid_rows, grid_cols = shape
    y, x = rows // grid_cols, rows % grid_cols
    neighbours = []
    for dy, dx in _DIRECTIONS:
        ny, nx = y + dy, x + dx
        inside = (ny >= 0) & (ny < grid_rows) & (nx >= 0) & (nx < grid_cols)
        if circular:
            ny, nx, inside = ny % grid_rows, nx % grid_cols, torch.ones_like(inside)
        neighbours.append((dy, dx, ny.clamp(0, grid_rows - 1) * grid_cols + nx.clamp(0, grid_cols - 1), inside))
    return neighbours


def _neighbour_candidates(matches: torch.Tensor, rows: torch.Tensor, neighbours: list[Neighbour],
                          style_shape: tuple[int, int], style_positions: torch.Tensor,
                          patch_at: torch.Tensor) -> torch.Tensor:
    """(len(rows), 5): each of ``rows``' own match and the style patch each of its four
    ``neighbours``' offsets would give it (PatchMatch's propagation; its own match where that
    falls outside the style grid). ``patch_at`` maps style grid positions to style patches."""
    style_rows, style_cols = style_shape
    own = matches[rows]
    columns = [own]
    for dy, dx, at, inside in neighbours:
        neighbour = style_positions[matches[at]]
        sy, sx = neighbour // style_cols - dy, neighbour % style_cols - dx
        fits = inside & (sy >= 0) & (sy < style_rows) & (sx >= 0) & (sx < style_cols)
        candidate = patch_at[sy.clamp(0, style_rows - 1) * style_cols + sx.clamp(0, style_cols - 1)]
        columns.append(torch.where(fits & (candidate >= 0), candidate, own))
    return torch.stack(columns, 1)


def _scores(current: torch.Tensor, style: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """(rows, k): each row of ``current`` against its ``candidates`` (rows, k) rows of ``style``."""
    scores = current.new_empty(candidates.shape)
    for start in range(0, len(current), _SCORE_ROWS):
        stop = start + _SCORE_ROWS
        scores[start:stop] = torch.bmm(style[candidates[start:stop]], current[start:stop, :, None])[..., 0]
    return scores
