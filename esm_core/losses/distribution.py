"""The sliced Wasserstein loss on network features (Heitz et al., CVPR 2021): the image's
feature vectors at a layer must have the exemplar's distribution along random directions.

Neural Patches pulls every image patch towards its nearest exemplar patch; alone it leaves
washed-out areas (many patches settle on the exemplar's flattest ones) and, when the output
is not much larger than the exemplar, rebuilds the exemplar itself. A distribution term
fixes the first (the fine layers' detail must be as strong, as often, as in the exemplar)
and, used alone in the first phases, the second: it matches statistics, never positions, so
the layout it starts from is new (docs/quality.md).

Matching the feature vectors' distribution says how much detail the image has, not where:
it is met by some areas with too much and others with none (washed-out blotches). So the
term also matches the distribution of the features' local RMS over small windows: every
window must carry the detail of some window of the exemplar.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F


def argsort_rows(values: torch.Tensor) -> torch.Tensor:
    """The argsort of each row of a (K, N) float32 tensor, N < 2**32. On the CPU it sorts
    64-bit keys (the float's bits made orderable as integers, then the column index) with
    numpy, whose vectorised sort is about 5x faster than torch's argsort here; ties are
    broken by index, as a stable argsort would."""
    if values.device.type != "cpu":
        return torch.argsort(values, dim=1)
    bits = values.detach().contiguous().numpy().view(np.int32)
    keys = np.empty(bits.shape, np.int64)
    np.right_shift(bits, 31, out=keys)  # -1 for negative floats, 0 otherwise
    keys &= 0x7FFFFFFF
    keys ^= bits  # negative floats: every bit but the sign flipped, so integer order is float order
    keys <<= 32
    keys |= np.arange(bits.shape[1], dtype=np.int64)
    keys.sort(axis=1)
    keys &= 0xFFFFFFFF
    return torch.from_numpy(keys)


def quantiles(sorted_rows: torch.Tensor, count: int) -> torch.Tensor:
    """Each row's empirical quantile function (rows sorted) at ``count`` evenly spaced midpoints."""
    size = sorted_rows.shape[1]
    if size == count:
        return sorted_rows
    index = ((torch.arange(count, device=sorted_rows.device) + 0.5) * (size / count)).long().clamp_(max=size - 1)
    return sorted_rows[:, index]


def local_rms(features: torch.Tensor, cells: int) -> torch.Tensor:
    """(1, C, H, W) -> (1, C, h, w): each channel's root mean square over ``cells`` x ``cells``
    windows (fewer where the map is smaller) at half-window strides."""
    cells = max(1, min(cells, *features.shape[-2:]))
    return F.avg_pool2d(features.pow(2), cells, stride=max(1, cells // 2)).clamp_min(1e-12).sqrt()


class SlicedWassersteinLoss:
    """Mean over layers of the squared 1-D Wasserstein-2 distance between the image's and the
    exemplar's feature values projected on random unit directions (as many as the layer has
    channels), times ``weight``. The directions are drawn once, from ``generator``: the loss
    is a fixed function, as L-BFGS needs. Its gradient is that of the mean squared distance
    from each projected value to the exemplar's value of the same rank, so no sort is
    differentiated. Images are (1, C, H, W); the exemplar may have another size.

    ``local`` names layers whose ``local_rms`` over that many cells is matched too: the mean
    over those, times ``local_weight``, is added to the mean over the layers."""

    def __init__(self, targets: Mapping[str, torch.Tensor], weight: float, generator: torch.Generator,
                 local: Mapping[str, int] | None = None, local_weight: float = 1.0) -> None:
        self.weight = weight
        self.views = [(name, 0) for name in targets] + [(name, cells) for name, cells in (local or {}).items()]
        counts = len(targets), len(self.views) - len(targets)
        self.view_weights = [1.0 / counts[0] if cells == 0 else local_weight / counts[1] for _, cells in self.views]
        self.directions: list[torch.Tensor] = []
        self.sorted_targets: list[torch.Tensor] = []
        for name, cells in self.views:
            flat = self._view(targets[name], cells)
            directions = torch.randn(flat.shape[0], flat.shape[0], generator=generator)
            directions = (directions / directions.norm(dim=0, keepdim=True)).to(flat.device)
            self.directions.append(directions)
            self.sorted_targets.append(torch.sort(directions.T @ flat, dim=1).values)

    @staticmethod
    def _view(features: torch.Tensor, cells: int) -> torch.Tensor:
        """(C, positions): the feature vectors, or with ``cells`` their local RMS."""
        return (local_rms(features, cells) if cells else features)[0].flatten(1)

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys(name for name, _ in self.views))

    def __call__(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total = features[self.layers[0]].new_zeros(())
        for (name, cells), weight, directions, sorted_targets in zip(
                self.views, self.view_weights, self.directions, self.sorted_targets):
            projected = directions.T @ self._view(features[name], cells)
            with torch.no_grad():
                targets = quantiles(sorted_targets, projected.shape[1])
                by_rank = torch.empty_like(projected).scatter_(1, argsort_rows(projected).to(projected.device), targets)
            total = total + weight * (projected - by_rank).pow(2).mean()
        return total * self.weight
