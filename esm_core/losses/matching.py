"""Patch matchers by name: ``exact`` (brute force, the reference) and ``fast`` (approximate).

``fast`` runs PatchMatch (Barnes et al. 2009) on feature patches projected onto the style
patches' leading principal directions: every current patch keeps its match from the
previous loss evaluation (the image moves little between L-BFGS steps), tries the matches
of its neighbours shifted by one step (propagation) and random positions around its match
at shrinking radii (random search), and keeps whichever scores best; the best 4 are then
re-scored in full dimension, because the projection alone misses fine detail. Its cost is
linear in the number of patches instead of quadratic. A phase's first search starts from the
coarser phase's matches, rescaled. ``variety`` needs each style patch's best correlation with
any current patch; ``fast`` finds it with the same search run from the style side, whose
matches also give the forward search its candidates among little-used style patches.
docs/performance.md records what each part gave.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable, Protocol

import torch
import torch.nn.functional as F

from ..features.patches import (DEFAULT_BUDGET_BYTES, PATCH, MatchResult, extract_patches, match_exact, normalise_rows,
                      patch_map, with_backoff)

PROJECTION_DIMS = 96  # 64 and 80 lost 2-4 % more patch SWD at 512x512; 128: +1.4 s (docs/performance.md)
PCA_SAMPLES = 4096  # style patches that estimate the principal directions
POWER_ITERATIONS = 3
COLD_ITERATIONS = 8  # first search of a phase: from random matches
COARSE_ITERATIONS = 2  # first search of a phase that starts from the coarser phase's matches
WARM_ITERATIONS = 1  # later searches: from the previous evaluation's matches (2 cost 2x for 0.0003 correlation)
WARM_RADII = 4  # random search radii of warm searches: up to 8 positions from the match (all: no better)
RERANK = 4  # best candidates re-scored in full dimension, by the search and the flat fallback (docs/performance.md)
RESCORE_ROWS = 1024  # image patches re-scored at a time
SIMILAR = 4  # k-coherence: candidates from the style patches most like the current match (8: no better)
GRAPH_POOL = 4096  # the similar patches are looked for among at most this many (16384: 2x the index time, no gain)
EXACT_BELOW_FLOP = 4e9  # layers whose exact matching costs less use it (the coarse phases)
_EPS = 1e-8
_DIRECTIONS = ((0, 1), (0, -1), (1, 0), (-1, 0))

Matcher = Callable[..., MatchResult]


class FeatureMatcher(Protocol):
    """A matcher that searches on feature maps and keeps state between evaluations
    (``PatchLoss`` prefers this form when the style layer knows its patch grid). It may also
    offer ``adopt_matches(state, positions)``: start the next search from other matches."""

    def match_features(self, features: torch.Tensor, layer: Any, variety: float,
                       style_history: torch.Tensor | None, circular: bool,
                       select: torch.Tensor | None, state: SearchState) -> MatchResult: ...


def match_exact_backoff(current: torch.Tensor, style: torch.Tensor, variety: float = 0.0,
                        style_history: torch.Tensor | None = None) -> MatchResult:
    """``match_exact`` with smaller slices when memory runs short."""
    return with_backoff(lambda budget: match_exact(current, style, variety, style_history, budget))


def principal_basis(rows: torch.Tensor, dims: int) -> torch.Tensor:
    """(D, min(dims, D)): orthonormal leading directions of ``rows`` (n, D), uncentred (the
    matching compares dot products), by randomised subspace iteration on an evenly spaced
    sample. Deterministic; the small factorisations run on the CPU on every device."""
    count, width = rows.shape
    if dims >= width:
        return torch.eye(width, dtype=rows.dtype, device=rows.device)
    sample = rows[:: max(1, count // PCA_SAMPLES)]
    rank = min(width, dims + 8)
    generator = torch.Generator().manual_seed(0)
    basis = torch.randn(width, rank, generator=generator).to(rows)
    for _ in range(POWER_ITERATIONS):
        basis = torch.linalg.qr((sample.T @ (sample @ basis)).cpu()).Q.to(rows)
    projected = (sample @ basis).cpu()
    _, vectors = torch.linalg.eigh(projected.T @ projected)  # ascending
    return basis @ vectors[:, -dims:].flip(1).to(rows)


@dataclass
class StyleIndex:
    """What the search needs from one style layer, kept on the layer (``layer.index``)."""

    weight: torch.Tensor  # (d, C, 3, 3): projects every 3x3 patch of a feature map
    grid: tuple[int, int]  # the style patch grid (rows, columns)
    projected: torch.Tensor  # (rows * columns, d), zero where a patch was dropped
    patch_of: torch.Tensor  # (rows * columns,) long: grid position -> style patch, -1 if dropped
    positions: torch.Tensor  # (Ls,) long: style patch -> grid position
    valid: torch.Tensor  # (rows * columns,) bool
    norms: torch.Tensor  # (Ls,): the style patches' norms
    similar: torch.Tensor | None  # (rows * columns, k) long: each position's most similar style positions


def similar_positions(projected: torch.Tensor, positions: torch.Tensor, count: int, budget_bytes: int) -> torch.Tensor:
    """(rows * columns, count): for every style patch, the grid positions of the ``count``
    style patches most like it (itself included), by brute force in the projected space
    against at most ``GRAPH_POOL`` evenly spaced patches. Dropped positions list themselves."""
    grid_size = projected.shape[0]
    pool = positions[:: max(1, -(-len(positions) // GRAPH_POOL))]
    pool_vectors = projected[pool]
    count = min(count, len(pool))
    similar = torch.arange(grid_size, device=projected.device)[:, None].repeat(1, count)
    rows = max(1, budget_bytes // (8 * len(pool)))
    for start in range(0, len(positions), rows):
        chunk = positions[start:start + rows]
        similar[chunk] = pool[(projected[chunk] @ pool_vectors.T).topk(count, dim=1).indices]
    return similar


def style_index(layer: Any, dims: int, similar: int = 0, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> StyleIndex:
    key = ("patchmatch", dims, similar)
    if key not in layer.index:
        normalised = layer.normalised
        basis = principal_basis(normalised, dims)
        channels = normalised.shape[1] // (PATCH * PATCH)
        rows, cols = layer.grid
        positions = layer.positions if layer.positions is not None else torch.arange(
            rows * cols, device=normalised.device)
        projected = normalised.new_zeros(rows * cols, basis.shape[1])
        projected[positions] = normalised @ basis
        patch_of = torch.full((rows * cols,), -1, dtype=torch.long, device=normalised.device)
        patch_of[positions] = torch.arange(len(positions), device=normalised.device)
        graph = similar_positions(projected, positions, similar, budget_bytes) if similar else None
        layer.index[key] = StyleIndex(basis.T.reshape(-1, channels, PATCH, PATCH).contiguous(), (rows, cols),
                                      projected, patch_of, positions, patch_of >= 0,
                                      layer.squared_norms.sqrt().clamp_min(_EPS), graph)
    return layer.index[key]


def project_patches(padded: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``padded`` (1, C, H, W; a ``patches.patch_map``) -> ((positions, d), (positions,)): every
    3x3 window (as ``extract_patches`` orders them) divided by its norm and projected, as a
    convolution (no patch is ever unfolded), and the windows' norms."""
    projected = F.conv2d(padded, weight)
    norms = (F.avg_pool2d(padded.pow(2).sum(1, keepdim=True), PATCH, stride=1) * PATCH * PATCH).sqrt()
    projected = projected / norms.clamp_min(_EPS)
    return projected[0].flatten(1).T.contiguous(), norms.flatten()


def patch_scores(padded: torch.Tensor, targets: torch.Tensor, candidates: torch.Tensor,
                 budget_bytes: int) -> torch.Tensor:
    """(positions, k): the dot product of every 3x3 window of ``padded`` (1, C, H, W; a
    ``patches.patch_map``; as ``extract_patches`` orders them) with each of its ``candidates``
    (positions, k) rows of ``targets`` (position-major patches, ``patches.position_major``), in
    full dimension. The windows are gathered from the channels-last map a slice at a time,
    never unfolded whole."""
    channels, height, width = padded.shape[1:]
    cols = width - PATCH + 1
    table = padded[0].permute(1, 2, 0).reshape(-1, channels)  # no copy when channels-last
    window = torch.tensor([dy * width + dx for dy in range(PATCH) for dx in range(PATCH)], device=padded.device)
    count, k = candidates.shape
    # slices of about a thousand patches: their gathered candidates stay in the cache
    rows = max(1, min(RESCORE_ROWS, budget_bytes // (4 * (k + 1) * targets.shape[1])))
    scores = targets.new_empty(count, k)
    for start in range(0, count, rows):
        place = torch.arange(start, min(start + rows, count), device=padded.device)
        corner = (place // cols) * width + place % cols
        current = table.index_select(0, (corner[:, None] + window).reshape(-1)).view(len(place), -1, 1)
        scores[start:start + rows] = torch.bmm(_take(targets, candidates[start:start + rows]), current)[..., 0]
    return scores


def _take(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` for a row index of any shape; index_select is far cheaper than
    advanced indexing on the CPU (no per-element bounds bookkeeping, no thread start-up)."""
    return table.index_select(0, index.reshape(-1)).view(*index.shape, *table.shape[1:])


class _Grid:
    """Row-major positions of a 2-D grid and integer helpers on them."""

    def __init__(self, shape: tuple[int, int], device: torch.device) -> None:
        self.rows, self.cols = shape
        flat = torch.arange(self.rows * self.cols, device=device)
        self.y, self.x = flat // self.cols, flat % self.cols

    def at(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return y.clamp_(0, self.rows - 1).mul_(self.cols).add_(x.clamp_(0, self.cols - 1))


Grids = tuple[tuple[int, int], tuple[int, int]]  # (image patch grid, style patch grid)


@dataclass
class SearchState:
    """One style layer's search state, kept by ``PatchLoss`` from one evaluation to the next
    and, shared between a run's phases, from one phase to the next. ``forward``: a style grid
    position per image patch; ``reverse``: an image grid position per style patch (the search
    from the style side); the ``*_start`` ones: a coarser phase's, rescaled to this phase's
    grids, to start from."""

    grids: Grids | None = None  # the grids the matches belong to
    forward: torch.Tensor | None = None
    reverse: torch.Tensor | None = None
    forward_start: torch.Tensor | None = None
    reverse_start: torch.Tensor | None = None
    generator: torch.Generator | None = None
    positions: tuple[_Grid, _Grid] | None = None  # the grids' position helpers

    def reset(self, **values: Any) -> None:
        """Forgets everything, then holds ``values`` (a new phase's grids, or an exact search's matches)."""
        for item in fields(self):
            setattr(self, item.name, values.get(item.name))

    def start(self, key: str) -> tuple[torch.Tensor | None, bool]:
        """(start matches of the ``key`` ("forward"/"reverse") search, whether they are this
        phase's own): the previous evaluation's, else the coarser phase's, else none."""
        own = getattr(self, key)
        return (own, True) if own is not None else (getattr(self, key + "_start"), False)


def rescale_matches(matches: torch.Tensor, old: tuple[tuple[int, int], tuple[int, int]],
                    new: tuple[tuple[int, int], tuple[int, int]]) -> torch.Tensor:
    """A coarser phase's matches as a start for this phase: ``matches`` maps each position of
    the old query grid to a position of the old target grid (``old`` = (query grid, target
    grid), row-major); the result does the same for the ``new`` grids. A position takes the
    match of the coarse position it falls in, moved by its own offset within that position
    and scaled to the new target grid (PatchMatch's coarse-to-fine initialisation)."""
    (old_query, old_target), (new_query, new_target) = old, new
    device = matches.device

    def axis(new_side: int, old_side: int) -> tuple[torch.Tensor, torch.Tensor]:
        place = torch.arange(new_side, device=device, dtype=torch.float32) * (old_side / new_side)
        cell = place.floor().long().clamp_(0, old_side - 1)
        return cell, place - cell

    cell_y, frac_y = axis(new_query[0], old_query[0])
    cell_x, frac_x = axis(new_query[1], old_query[1])
    coarse = matches.view(old_query)[cell_y[:, None], cell_x[None, :]]
    target_y = (coarse // old_target[1]) + frac_y[:, None]
    target_x = (coarse % old_target[1]) + frac_x[None, :]
    y = (target_y * (new_target[0] / old_target[0])).round().long().clamp_(0, new_target[0] - 1)
    x = (target_x * (new_target[1] / old_target[1])).round().long().clamp_(0, new_target[1] - 1)
    return (y * new_target[1] + x).flatten()


def _best_of(query: torch.Tensor, target: torch.Tensor, bias: torch.Tensor, candidates: torch.Tensor,
             budget_bytes: int, keep: int = 1, seen: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query row, the ``keep`` best of its candidate targets, best first:
    (scores, indices), each (rows, keep); computed in slices. ``seen`` (one per target)
    is raised to the best unbiased score of each target among the candidates."""
    count, k = candidates.shape
    keep = min(keep, k)
    rows = max(1, budget_bytes // (4 * k * (target.shape[1] + 2)))
    scores = query.new_empty(count, keep)
    chosen = candidates.new_empty(count, keep)
    for start in range(0, count, rows):
        cand = candidates[start:start + rows]
        value = torch.bmm(_take(target, cand), query[start:start + rows, :, None])[..., 0]
        if seen is not None:
            seen.scatter_reduce_(0, cand.reshape(-1), value.reshape(-1), "amax")
        value -= _take(bias, cand)
        best, where = value.max(dim=1, keepdim=True) if keep == 1 else value.topk(keep, dim=1)
        scores[start:start + rows] = best
        chosen[start:start + rows] = cand.gather(1, where)
    return scores, chosen


def patchmatch(
    query: torch.Tensor, query_grid: _Grid, target: torch.Tensor, target_grid: _Grid, bias: torch.Tensor,
    allowed: torch.Tensor, start: torch.Tensor | None, iterations: int, generator: torch.Generator,
    budget_bytes: int = DEFAULT_BUDGET_BYTES, keep: int = 1, similar: torch.Tensor | None = None,
    seen: torch.Tensor | None = None, fixed: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Approximate argmax over target positions of ``query·target - bias`` for every query
    position. ``allowed`` lists the target positions that may be chosen (``bias`` is +inf at
    the others). Returns (matches, scores), each (positions, keep): the ``keep`` best
    candidates of the last iteration; ``start`` is the previous matches, if any.
    ``similar`` (target positions, k) adds the targets most like each match as candidates;
    ``seen`` (target positions,) receives the best ``query·target`` among every candidate
    tried in the last iteration; ``fixed`` (query positions, k) are candidates tried at
    every iteration."""
    device = query.device
    count = query.shape[0]

    def uniform() -> torch.Tensor:
        return _take(allowed, torch.randint(len(allowed), (count,), generator=generator, device=device))

    matches = uniform() if start is None else start
    scores, chosen = _best_of(query, target, bias, matches[:, None], budget_bytes)
    radii = []
    r = max(target_grid.rows, target_grid.cols)
    while r >= 1:
        radii.append(r)
        r //= 2
    if start is not None:  # a warm start's better matches lie close by
        radii = radii[-WARM_RADII:]
    for iteration in range(iterations):
        # long jumps first when starting from random matches (jump flooding), then neighbours
        step = max(1, 2 ** (iterations - 3 - iteration)) if start is None else 1
        ty, tx = _take(target_grid.y, matches), _take(target_grid.x, matches)
        columns = [matches[:, None], uniform()[:, None]]
        if similar is not None:
            columns.append(_take(similar, matches))
        if fixed is not None:
            columns.append(fixed)
        for dy, dx in _DIRECTIONS:
            ny = (query_grid.y + dy * step).clamp_(0, query_grid.rows - 1)
            nx = (query_grid.x + dx * step).clamp_(0, query_grid.cols - 1)
            neighbour = _take(matches, ny * query_grid.cols + nx)
            columns.append(target_grid.at(_take(target_grid.y, neighbour) - (ny - query_grid.y),
                                          _take(target_grid.x, neighbour) - (nx - query_grid.x))[:, None])
        offsets = torch.randint(-radii[0], radii[0] + 1, (2, count, len(radii)), generator=generator, device=device)
        limits = torch.tensor(radii, device=device)
        offsets = torch.remainder(offsets, 2 * limits + 1) - limits  # uniform in [-r, r] for each radius
        columns.append(target_grid.at(ty[:, None] + offsets[0], tx[:, None] + offsets[1]))
        last = iteration == iterations - 1
        scores, chosen = _best_of(query, target, bias, torch.cat(columns, 1), budget_bytes,
                                  keep if last else 1, seen if last else None)
        matches = chosen[:, 0]
    return chosen, scores


class PatchMatcher:
    """The ``fast`` matcher. Holds only settings: the per-layer search state lives in the
    ``state`` dict that ``PatchLoss`` passes in, so one instance serves any number of jobs.

    ``dims``: projected dimensions; ``cold``/``warm``: search iterations without/with the
    previous evaluation's matches; ``coarse``: those of a phase's first search when it starts
    from the coarser phase's matches; ``similar``: k-coherence candidates; ``rerank``: the best
    candidates (in the projected space) re-scored exactly, 0 for none; ``exact_below``:
    layers whose exact matching costs fewer floating-point operations use it."""

    def __init__(self, dims: int = PROJECTION_DIMS, cold: int = COLD_ITERATIONS, warm: int = WARM_ITERATIONS,
                 similar: int = SIMILAR, rerank: int = RERANK, exact_below: float = EXACT_BELOW_FLOP,
                 budget_bytes: int = DEFAULT_BUDGET_BYTES, coarse: int = COARSE_ITERATIONS) -> None:
        self.dims, self.cold, self.warm, self.coarse, self.similar = dims, cold, warm, coarse, similar
        self.rerank, self.exact_below, self.budget_bytes = rerank, exact_below, budget_bytes

    def match_features(
        self, features: torch.Tensor, layer: Any, variety: float, style_history: torch.Tensor | None,
        circular: bool, select: torch.Tensor | None, state: SearchState,
    ) -> MatchResult:
        """Matches every 3x3 patch of ``features`` (1, C, H, W; ``select`` picks the patches
        reported) against ``layer`` (a StyleLayer with ``grid``). ``state`` carries the
        matches in both directions from one call to the next."""
        with torch.no_grad():
            return with_backoff(lambda budget: self._match(features, layer, variety, style_history, circular,
                                                           select, state, budget), self.budget_bytes)

    def _match(self, features: torch.Tensor, layer: Any, variety: float, style_history: torch.Tensor | None,
               circular: bool, select: torch.Tensor | None, state: SearchState, budget: int) -> MatchResult:
        height, width = features.shape[-2:]
        shape = (height, width) if circular else (height - 2, width - 2)
        if 2.0 * shape[0] * shape[1] * layer.normalised.numel() <= self.exact_below:
            current = normalise_rows(extract_patches(features, circular))
            result = match_exact(current if select is None else current[select], layer.normalised, variety,
                                 style_history, budget)
            if select is None:  # the next, finer phase starts from these
                state.reset(grids=(shape, layer.grid), forward=result.indices if layer.positions is None
                            else layer.positions[result.indices])
            return result
        index = style_index(layer, self.dims, self.similar, budget)
        device = features.device
        padded = patch_map(features, circular)  # once for the projection and the re-scoring
        query, query_norms = project_patches(padded, index.weight)
        if state.grids != (shape, index.grid):
            self._new_phase(state, (shape, index.grid), device)
        assert state.positions is not None and state.generator is not None
        current_grid, style_grid = state.positions
        generator = state.generator
        chosen = torch.arange(len(query), device=device)
        if select is not None:
            chosen = chosen[select]

        bias = torch.zeros(len(index.valid), dtype=query.dtype, device=device)
        if variety and style_history is not None:
            bias[index.positions] = variety * style_history
        bias.masked_fill_(~index.valid, float("inf"))
        seen = None
        if variety and select is None and not self.rerank:
            seen = torch.full((len(index.valid),), -float("inf"), dtype=query.dtype, device=device)
        start, iterations = self._start(state, "forward")
        inverse = self._inverse(state, index, start)
        candidates, scores = patchmatch(query, current_grid, index.projected, style_grid, bias, index.positions,
                                        start, iterations, generator, budget, max(1, self.rerank),
                                        index.similar, seen, fixed=inverse)
        if self.rerank:  # the best candidates re-ranked by their normalised cross-correlations in full
            patches = _take(index.patch_of, candidates).clamp_(min=0)  # dropped ones are barred by ``bias``
            raw = patch_scores(padded, layer.targets, patches, budget)
            raw /= query_norms.clamp_min(_EPS)[:, None] * _take(index.norms, patches)
            scores, where = (raw - _take(bias, candidates)).max(1, keepdim=True)
            matches, raw = candidates.gather(1, where)[:, 0], raw.gather(1, where)[:, 0]
        else:
            matches, raw = candidates[:, 0], scores[:, 0] + _take(bias, candidates[:, 0])
        state.forward = matches
        indices = _take(index.patch_of, matches)
        if select is not None:
            indices, raw, matches = indices[select], raw[select], matches[select]
        # each style patch's best correlation with any current patch: at least the scores of
        # the patches matched to it, and what the same search run from the style side finds
        style_best = torch.full((len(index.positions),), -float("inf"), dtype=query.dtype, device=device)
        style_best.scatter_reduce_(0, indices, raw, "amax")
        if not variety:  # no use for more
            return MatchResult(indices, style_best)
        current_bias = torch.zeros(len(query), dtype=query.dtype, device=device)
        if select is not None:
            current_bias.fill_(float("inf"))
            current_bias[chosen] = 0.0
        # k-coherence backwards: the current patches matched to this style patch's look-alikes
        owner = torch.full((len(index.valid),), -1, dtype=torch.long, device=device)
        owner.scatter_reduce_(0, matches, chosen, "amax")
        fixed = _take(owner, index.similar) if index.similar is not None else owner[:, None]
        spare = _take(chosen, torch.randint(len(chosen), fixed.shape, generator=generator, device=device))
        fixed = torch.where(fixed >= 0, fixed, spare)
        start, iterations = self._start(state, "reverse")
        reverse, best = patchmatch(index.projected, style_grid, query, current_grid, current_bias, chosen,
                                   start, iterations, generator, budget, fixed=fixed)
        state.reverse = reverse[:, 0]
        best = _take(best[:, 0], index.positions)
        if seen is not None:
            best = torch.maximum(best, _take(seen, index.positions))
        return MatchResult(indices, torch.maximum(style_best, best))

    @staticmethod
    def adopt_matches(state: SearchState, positions: torch.Tensor) -> None:
        """Makes ``positions`` (a style grid position per image patch) the matches that the
        next search of ``state``'s layer starts from (PatchLoss's copy penalty moves some)."""
        if state.forward is not None:
            state.forward = positions

    @staticmethod
    def _inverse(state: SearchState, index: StyleIndex, start: torch.Tensor | None) -> torch.Tensor | None:
        """(image positions, 1): for each image patch, a style patch whose best image patch
        (the previous evaluation's reverse search) it was, else its start match. These are the
        candidates that ``variety`` turns to: style patches little used so far, which the
        forward search's neighbours and look-alikes rarely reach."""
        if state.reverse is None or start is None:
            return None
        owned = torch.full_like(start, -1)
        owned.scatter_reduce_(0, _take(state.reverse, index.positions), index.positions, "amax")
        return torch.where(owned >= 0, owned, start)[:, None]

    @staticmethod
    def _new_phase(state: SearchState, grids: Grids, device: torch.device) -> None:
        """Resets ``state`` for new grids; a coarser phase's matches, if ``state`` holds them
        (``PatchLoss`` shares its states between phases), become this phase's starts."""
        previous = state.grids
        starts = {}
        if previous is not None:
            for key, old, new in (("forward", previous, grids), ("reverse", previous[::-1], grids[::-1])):
                if getattr(state, key) is not None:
                    starts[key + "_start"] = rescale_matches(getattr(state, key), old, new)
        state.reset(grids=grids, generator=torch.Generator(device=device).manual_seed(0),
                    positions=(_Grid(grids[0], device), _Grid(grids[1], device)), **starts)

    def _start(self, state: SearchState, key: str) -> tuple[torch.Tensor | None, int]:
        """(start matches, iterations) of the ``key`` search: the previous evaluation's matches,
        else the coarser phase's, else random ones."""
        start, own = state.start(key)
        return start, (self.warm if own else self.coarse if start is not None else self.cold)

    def __call__(self, current: torch.Tensor, style: torch.Tensor, variety: float = 0.0,
                 style_history: torch.Tensor | None = None) -> MatchResult:
        """The flat form, for callers without feature maps: candidates from a brute-force
        search in the projected space, re-ranked in full dimension. ``style_best`` is the
        projected estimate."""
        with torch.no_grad():
            return with_backoff(lambda budget: self._match_flat(current, style, variety, style_history, budget),
                                self.budget_bytes)

    def _match_flat(self, current: torch.Tensor, style: torch.Tensor, variety: float,
                    style_history: torch.Tensor | None, budget: int) -> MatchResult:
        basis = principal_basis(style, self.dims)
        small_current, small_style = current @ basis, style @ basis
        bias = variety * style_history if (variety and style_history is not None) else torch.zeros_like(style[:, 0])
        keep = min(RERANK, style.shape[0])
        rows = max(1, budget // (4 * (style.shape[0] + keep * style.shape[1])))
        indices = torch.empty(current.shape[0], dtype=torch.long, device=current.device)
        style_best = torch.full((style.shape[0],), -float("inf"), dtype=current.dtype, device=current.device)
        for start in range(0, current.shape[0], rows):
            scores = small_current[start:start + rows] @ small_style.T
            style_best = torch.maximum(style_best, scores.max(dim=0).values)
            top = (scores - bias).topk(keep, dim=1).indices
            exact = torch.bmm(style[top], current[start:start + rows, :, None])[..., 0] - bias[top]
            indices[start:start + rows] = top.gather(1, exact.argmax(dim=1, keepdim=True))[:, 0]
        return MatchResult(indices, style_best)


_FAST = PatchMatcher()
MATCHERS: dict[str, Matcher] = {"exact": match_exact_backoff, "fast": _FAST}


def matcher(name: str) -> Matcher:
    """The matcher called ``name`` (one of ``esm_contract.params.MATCHINGS``)."""
    try:
        return MATCHERS[name]
    except KeyError:
        raise ValueError(f"unknown matching {name!r}; known: {', '.join(MATCHERS)}") from None

