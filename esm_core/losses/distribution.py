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

import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F


def argsort_rows(values: torch.Tensor) -> torch.Tensor:
    """The argsort of each row of a (K, N) float32 tensor, N < 2**32. On the CPU it sorts
    64-bit keys (the float's bits made orderable as integers, then the column index) with
    numpy, whose vectorised sort is about 5x faster than torch's argsort here, on as many
    threads as torch uses (numpy sorts on one core; the rows are independent); ties are
    broken by index, as a stable argsort would."""
    if values.device.type != "cpu":
        return torch.argsort(values, dim=1)
    bits = values.detach().contiguous().numpy().view(np.int32)
    keys = np.empty(bits.shape, np.int64)
    columns = np.arange(bits.shape[1], dtype=np.int64)
    workers = max(1, min(torch.get_num_threads(), bits.shape[0]))
    bounds = np.linspace(0, bits.shape[0], workers + 1).astype(int)
    rows = [slice(start, stop) for start, stop in zip(bounds[:-1], bounds[1:])]
    if workers == 1:
        _sort_keys(bits, keys, columns)
    else:
        list(_sorting_threads(workers).map(lambda part: _sort_keys(bits[part], keys[part], columns), rows))
    return torch.from_numpy(keys)


def _sort_keys(bits: np.ndarray, keys: np.ndarray, columns: np.ndarray) -> None:
    """``keys`` (same shape, int64) := the argsort of each row of the float32 ``bits``."""
    np.right_shift(bits, 31, out=keys)  # -1 for negative floats, 0 otherwise
    keys &= 0x7FFFFFFF
    keys ^= bits  # negative floats: every bit but the sign flipped, so integer order is float order
    keys <<= 32
    keys |= columns
    keys.sort(axis=1)
    keys &= 0xFFFFFFFF


@functools.cache
def _sorting_threads(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(workers, thread_name_prefix="esm-sort")


def quantiles(sorted_rows: torch.Tensor, count: int) -> torch.Tensor:
    """Each row's empirical quantile function (rows sorted) at ``count`` evenly spaced midpoints."""
    size = sorted_rows.shape[1]
    if size == count:
        return sorted_rows
    index = ((torch.arange(count, device=sorted_rows.device) + 0.5) * (size / count)).long().clamp_(max=size - 1)
    return sorted_rows[:, index]


def by_rank(values: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(K, N): each value of ``values`` replaced by the value of the same rank in its row of
    ``targets`` (K, N, sorted; ``quantiles`` resamples other counts)."""
    return torch.empty_like(values).scatter_(1, argsort_rows(values).to(values.device), targets)


def local_rms(features: torch.Tensor, cells: int) -> torch.Tensor:
    """(1, C, H, W) -> (1, C, h, w): each channel's root mean square over ``cells`` x ``cells``
    windows (fewer where the map is smaller) at half-window strides."""
    cells = max(1, min(cells, *features.shape[-2:]))
    stride = max(1, cells // 2)
    if cells == 2 * stride:  # a window is 2x2 blocks of a stride's side: pool each block once, then pairs
        mean_square = F.avg_pool2d(_WindowMeanSquare.apply(features, stride, stride), 2, stride=1)
    else:
        mean_square = _WindowMeanSquare.apply(features, cells, stride)
    return mean_square.clamp_min(1e-12).sqrt()


class _WindowMeanSquare(torch.autograd.Function):
    """avg_pool2d(x², cells, stride) whose backward is one pass over x (autograd's would make
    three full-size temporaries for the square's gradient)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, cells: int, stride: int) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.cells, ctx.stride = cells, stride
        return F.avg_pool2d(x * x, cells, stride)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (x,) = ctx.saved_tensors
        spread = torch.ops.aten.avg_pool2d_backward(
            grad * 2.0, x, [ctx.cells] * 2, [ctx.stride] * 2, [0, 0], False, True, None)
        return spread.mul_(x), None, None


def channel_rows(features: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) -> (C, H*W) as a view where the layout allows (no copy in either pass):
    channels-last maps (the CPU network's) give the transpose of their (H*W, C) rows."""
    if features.is_contiguous(memory_format=torch.channels_last):
        return features.permute(0, 2, 3, 1).reshape(-1, features.shape[1]).T
    return features.reshape(features.shape[1], -1)


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
        self._targets_by_size: dict[tuple[int, int], torch.Tensor] = {}  # (view, positions) -> quantiles
        for name, cells in self.views:
            flat = self._view(targets[name], cells)
            directions = torch.randn(flat.shape[0], flat.shape[0], generator=generator)
            directions = (directions / directions.norm(dim=0, keepdim=True)).to(flat.device)
            self.directions.append(directions)
            self.sorted_targets.append(torch.sort(directions.T @ flat, dim=1).values)

    @staticmethod
    def _view(features: torch.Tensor, cells: int) -> torch.Tensor:
        """(C, positions): the feature vectors, or with ``cells`` their local RMS."""
        return channel_rows(local_rms(features, cells) if cells else features)

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys(name for name, _ in self.views))

    def _quantiles(self, view: int, count: int) -> torch.Tensor:
        """The exemplar's projected values at ``count`` quantiles; kept, since every
        evaluation of a phase asks for the same count."""
        key = (view, count)
        if key not in self._targets_by_size:
            self._targets_by_size[key] = quantiles(self.sorted_targets[view], count)
        return self._targets_by_size[key]

    def __call__(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total = features[self.layers[0]].new_zeros(())
        for view, ((name, cells), weight, directions) in enumerate(zip(self.views, self.view_weights, self.directions)):
            projected = directions.T @ self._view(features[name], cells)
            with torch.no_grad():
                matched = by_rank(projected, self._quantiles(view, projected.shape[1]))
            total = total + weight * F.mse_loss(projected, matched)  # one fused backward pass
        return total * self.weight
