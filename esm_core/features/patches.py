"""3x3 feature patches and exact nearest-neighbour matching by normalised cross-correlation.

Matching follows the reference: every patch of the current image picks the style patch with
the highest normalised cross-correlation, optionally biased by ``variety`` against style
patches that already matched very well somewhere in the previous evaluation. The score
matrix is never held whole: current patches are processed in slices sized to a byte budget.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

import torch
import torch.nn.functional as F

PATCH = 3
DEFAULT_BUDGET_BYTES = 256 * 2**20
MIN_BUDGET_BYTES = 1 << 20
_EPS = 1e-8
T = TypeVar("T")


def patch_map(features: torch.Tensor, circular: bool) -> torch.Tensor:
    """The map whose 3x3 windows (stride 1, no padding) are the patches of ``features``:
    ``features`` itself, or with ``circular`` wrapped around by one pixel on every side."""
    return F.pad(features, (1, 1, 1, 1), mode="circular") if circular else features


def extract_patches(features: torch.Tensor, circular: bool = False) -> torch.Tensor:
    """(1, C, H, W) -> (L, C*9): every 3x3 patch, stride 1. Without ``circular`` there is no
    padding (L = (H-2)(W-2)); with it the patches wrap around the edges (L = H*W)."""
    return F.unfold(patch_map(features, circular), PATCH).squeeze(0).transpose(0, 1)


def normalise_rows(patches: torch.Tensor) -> torch.Tensor:
    return patches / patches.norm(dim=1, keepdim=True).clamp_min(_EPS)


@dataclass
class MatchResult:
    indices: torch.Tensor  # (Lc,) long: the chosen style patch of every current patch
    style_best: torch.Tensor  # (Ls,): each style patch's best raw correlation with any current patch


def match_exact(
    current: torch.Tensor,
    style: torch.Tensor,
    variety: float = 0.0,
    style_history: torch.Tensor | None = None,
    budget_bytes: int = DEFAULT_BUDGET_BYTES,
    penalty: Callable[[int, int], torch.Tensor] | None = None,
) -> MatchResult:
    """Brute force over all pairs. ``current`` (Lc, D) and ``style`` (Ls, D) must already be
    row-normalised. The choice maximises ``corr - variety * style_history - penalty``, where
    ``penalty(start, stop)`` gives current rows start..stop a (rows, Ls) penalty of their own
    (``esm_core.losses.copies``); ``style_best`` is always the unpenalised best."""
    count_style = style.shape[0]
    bytes_per_row = 4 * count_style * (1 if penalty is None else 4)  # + the penalty and its int64 index
    rows = max(1, min(current.shape[0], budget_bytes // bytes_per_row))
    indices = torch.empty(current.shape[0], dtype=torch.long, device=current.device)
    style_best = torch.full((count_style,), -float("inf"), dtype=current.dtype, device=current.device)
    bias = variety * style_history if (variety and style_history is not None) else None
    slice_scores = current.new_empty(rows, count_style)  # reused: one block per call, not one per slice
    for start in range(0, current.shape[0], rows):
        chunk = current[start:start + rows]
        scores = torch.mm(chunk, style.T, out=slice_scores[:len(chunk)])
        style_best = torch.maximum(style_best, scores.max(dim=0).values)
        if bias is not None:
            scores -= bias
        if penalty is not None:
            scores -= penalty(start, start + len(chunk))
        indices[start:start + rows] = scores.argmax(dim=1)
    return MatchResult(indices, style_best)


def is_out_of_memory(error: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    text = str(error)
    return isinstance(error, oom) or "out of memory" in text or "can't allocate memory" in text


def with_backoff(run: Callable[[int], T], budget_bytes: int = DEFAULT_BUDGET_BYTES) -> T:
    """``run(budget)``, retried with a quarter of the budget whenever it runs out of memory
    (CPU or GPU), down to ``MIN_BUDGET_BYTES``."""
    while True:
        try:
            return run(budget_bytes)
        except RuntimeError as error:
            if not is_out_of_memory(error) or budget_bytes <= MIN_BUDGET_BYTES:
                raise
        budget_bytes = max(MIN_BUDGET_BYTES, budget_bytes // 4)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def position_major(patches: torch.Tensor) -> torch.Tensor:
    """(L, C*9) rows as ``extract_patches`` orders them (channel, then the 3x3 window) ->
    (L, 9*C) ordered (window row, window column, channel): the layout ``patch_distance``
    folds fast, with each position's channels contiguous."""
    count = patches.shape[0]
    return patches.reshape(count, -1, PATCH, PATCH).permute(0, 2, 3, 1).reshape(count, -1)


def _fold_matches(targets: torch.Tensor, grid: torch.Tensor, weight: torch.Tensor | None,
                  shape: tuple[int, int], budget_bytes: int) -> torch.Tensor:
    """(C, rows + 2, cols + 2): the position-major style patches ``targets[grid]`` (times
    ``weight``) added back where they belong on the feature map, a band of grid rows at a
    time. Nine shifted channels-last additions: about 6x faster than ``F.fold`` on the CPU."""
    rows, cols = shape
    channels = targets.shape[1] // (PATCH * PATCH)
    folded = targets.new_zeros(rows + 2, cols + 2, channels)
    band = max(1, budget_bytes // (8 * cols * targets.shape[1]))
    for top in range(0, rows, band):
        bottom = min(rows, top + band)
        chunk = targets.index_select(0, grid[top * cols:bottom * cols])
        if weight is not None:
            chunk = chunk * weight[top * cols:bottom * cols, None]
        chunk = chunk.view(bottom - top, cols, PATCH, PATCH, channels)
        for dy in range(PATCH):
            for dx in range(PATCH):
                folded[top + dy:bottom + dy, dx:dx + cols] += chunk[:, :, dy, dx]
    return folded.permute(2, 0, 1)


def patch_distance(
    features: torch.Tensor,
    targets: torch.Tensor,
    squared_norms: torch.Tensor,
    indices: torch.Tensor,
    circular: bool = False,
    select: torch.Tensor | None = None,
    budget_bytes: int = DEFAULT_BUDGET_BYTES,
) -> torch.Tensor:
    """The Neural Patches loss of one layer: the mean over the 3x3 patches of ``features``
    (1, C, H, W; those ``select`` picks) and their values of (patch - style patch[match])², where
    ``targets`` holds the style patches position-major (``position_major``), ``indices`` each
    patch's match and ``squared_norms`` the style patches' squared norms.
    Equal to unfolding the current patches, but computed on the feature map as
    sum(cover·f²) - 2·sum(f·T) + sum(|t|²), with T the matched style patches folded onto the
    map and cover the number of patches over each position: no unfolded copy of the current
    features, and no fold in the backward pass."""
    features = patch_map(features, circular)
    rows, cols = features.shape[-2] - 2, features.shape[-1] - 2
    with torch.no_grad():
        grid, weight = indices, None
        if select is not None:
            grid = indices.new_zeros(rows * cols)
            grid[select] = indices
            weight = features.new_zeros(rows * cols)
            weight[select] = 1.0
        target = with_backoff(lambda budget: _fold_matches(targets, grid, weight, (rows, cols), budget),
                              budget_bytes)
        ones = features.new_ones(rows * cols) if weight is None else weight
        cover = F.fold(ones.expand(PATCH * PATCH, -1)[None], (rows + 2, cols + 2), PATCH)[0]
        constant = squared_norms[indices].sum()
    current = features.squeeze(0)  # a view: [0]'s backward would zero and copy a full map
    value = (cover * current * current).sum() - 2.0 * (target * current).sum() + constant
    return value / (indices.numel() * targets.shape[1])
