"""The fill's anchor: a content loss that holds the inside of a hole near its start.

Why (measured, docs/fill.md): inside a hole, the Neural Patches loss of a flat, blurred fill
is lower than that of the true texture (each patch's nearest style patch is closer to the
mean than to another sample), so L-BFGS drifts from any sharp start towards blur. The anchor
penalises the distance between the features and those of the start image, weighted from 0 at
the start's seams (the hole's border and the borders between copies: free to adapt, the
patch loss removes the seams there) to 1 farther than ``ramp`` pixels (held: the start's
texture stays sharp).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from ..features.holes import feature_cells


def held_share(depth: np.ndarray, ramp: float) -> np.ndarray:
    """How firmly the anchor holds a pixel (or cell) ``depth`` pixels from the nearest seam:
    0 on a seam, rising to 1 at ``ramp`` pixels."""
    return np.clip(depth / ramp, 0.0, 1.0)


class AnchorLoss:
    """Weighted mean squared feature distance to ``start`` over the feature positions
    that read the hole, averaged over layers, times ``weight``."""

    def __init__(self, start: Mapping[str, torch.Tensor], depth: np.ndarray, hole: np.ndarray,
                 geometry: Mapping[str, tuple[int, int]], ramp: float, weight: float, circular: bool) -> None:
        """``depth`` (h, w): each pixel's distance from the start's nearest seam (0 outside the
        copies); ``hole``: the free pixels; ``geometry``: layer -> (scale, receptive radius)."""
        self.start = dict(start)
        self.weight = weight
        self.weights: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        for name, (scale, radius) in geometry.items():
            rows, cols = hole.shape[0] // scale, hole.shape[1] // scale
            cell_depth = depth[:rows * scale, :cols * scale].reshape(rows, scale, cols, scale).mean(axis=(1, 3))
            device = self.start[name].device
            self.weights[name] = torch.from_numpy(held_share(cell_depth, ramp)).float().to(device)
            self.counts[name] = max(1, int(feature_cells(hole, scale, radius, circular).sum()))

    def __call__(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total = next(iter(features.values())).new_zeros(())
        for name, start in self.start.items():
            distance = ((features[name][0] - start[0]) ** 2).mean(0)
            total = total + torch.sum(self.weights[name] * distance) / self.counts[name]
        return total * (self.weight / len(self.start))
