"""3x3 feature patches and exact nearest-neighbour matching by normalised cross-correlation.

Matching follows the reference: every patch of the current image picks the style patch with
the highest normalised cross-correlation, optionally biased by ``variety`` against style
patches that already matched very well somewhere in the previous evaluation. The score
matrix is never held whole: current patches are processed in slices sized to a byte budget.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

PATCH = 3
DEFAULT_BUDGET_BYTES = 256 * 2**20
_EPS = 1e-8


def extract_patches(features: torch.Tensor, circular: bool = False) -> torch.Tensor:
    """(1, C, H, W) -> (L, C*9): every 3x3 patch, stride 1. Without ``circular`` there is no
    padding (L = (H-2)(W-2)); with it the patches wrap around the edges (L = H*W)."""
    if circular:
        features = F.pad(features, (1, 1, 1, 1), mode="circular")
    return F.unfold(features, PATCH).squeeze(0).transpose(0, 1)


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
) -> MatchResult:
    """Brute force over all pairs. ``current`` (Lc, D) and ``style`` (Ls, D) must already be
    row-normalised. The choice maximises ``corr - variety * style_history``."""
    count_style = style.shape[0]
    rows = max(1, budget_bytes // (4 * count_style))
    indices = torch.empty(current.shape[0], dtype=torch.long, device=current.device)
    style_best = torch.full((count_style,), -float("inf"), dtype=current.dtype, device=current.device)
    bias = variety * style_history if (variety and style_history is not None) else None
    for start in range(0, current.shape[0], rows):
        scores = current[start:start + rows] @ style.T
        style_best = torch.maximum(style_best, scores.max(dim=0).values)
        if bias is not None:
            scores -= bias
        indices[start:start + rows] = scores.argmax(dim=1)
    return MatchResult(indices, style_best)
