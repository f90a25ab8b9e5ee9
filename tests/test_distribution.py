"""The sliced Wasserstein term (esm_core.losses.distribution): exact ranks, a loss that is zero only
for the exemplar's distribution, and a gradient that moves towards it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import torch.nn.functional as F

from esm_core.losses.distribution import SlicedWassersteinLoss, argsort_rows, channel_rows, local_rms, quantiles


def test_argsort_rows_equals_a_stable_argsort_with_negatives_and_ties() -> None:
    rng = np.random.default_rng(0)
    values = rng.standard_normal((5, 1000)).astype(np.float32)
    values[:, ::7] = values[:, 3:4]  # ties
    values[0, :10] = [0.0, -0.0, np.inf, -np.inf, 1e-30, -1e-30, 3.0, -3.0, 0.0, -0.0]
    ranks = argsort_rows(torch.from_numpy(values)).numpy()
    # -0.0 and 0.0 are different keys but equal floats: compare the sorted values, and the
    # order of equal keys (ties) with a stable argsort's
    assert np.array_equal(np.take_along_axis(values, ranks, 1), np.sort(values, axis=1))
    assert np.array_equal(ranks[1:], np.argsort(values[1:], axis=1, kind="stable"))


@pytest.fixture
def torch_threads():
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def test_argsort_rows_gives_the_same_ranks_on_one_thread_and_on_several(torch_threads) -> None:
    values = torch.from_numpy(np.random.default_rng(1).standard_normal((7, 3001)).astype(np.float32))
    torch_threads(1)
    alone = argsort_rows(values)
    torch_threads(3)  # 7 rows in 3 uneven parts
    assert torch.equal(argsort_rows(values), alone)
    assert torch.equal(alone, torch.argsort(values, dim=1, stable=True))


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(("height", "width", "cells"), [(37, 41, 16), (33, 20, 8), (9, 9, 16), (7, 12, 3), (5, 5, 1)])
def test_local_rms_and_its_gradient_equal_the_plain_formula(channels_last: bool, height: int, width: int,
                                                            cells: int) -> None:
    """local_rms pools in two stages with its own backward pass: same values and gradient as
    avg_pool2d(x²) over the (clamped) window at half-window strides, through autograd."""
    x = torch.randn(1, 3, height, width, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    window = max(1, min(cells, height, width))
    weights = None
    for fast in (True, False):
        image = x.clone().requires_grad_(True)
        rms = local_rms(image, cells) if fast else F.avg_pool2d(
            image.pow(2), window, stride=max(1, window // 2)).clamp_min(1e-12).sqrt()
        if weights is None:
            weights = torch.rand(rms.shape, dtype=rms.dtype, generator=torch.Generator().manual_seed(3))
            values = rms.detach()
        else:
            assert torch.allclose(rms, values)
        (rms * weights).sum().backward()
        if fast:
            gradient = image.grad
        else:
            assert torch.allclose(image.grad, gradient)


def test_channel_rows_is_a_view_of_a_channels_last_map() -> None:
    plain = torch.randn(1, 4, 5, 6)
    last = plain.contiguous(memory_format=torch.channels_last)
    expected = plain[0].flatten(1)
    assert torch.equal(channel_rows(plain), expected) and torch.equal(channel_rows(last), expected)
    assert channel_rows(last).data_ptr() == last.data_ptr()


def test_quantiles_resample_a_sorted_row_to_any_length() -> None:
    row = torch.arange(4, dtype=torch.float32)[None]
    assert quantiles(row, 4) is row
    assert quantiles(row, 8).tolist() == [[0, 0, 1, 1, 2, 2, 3, 3]]
    assert quantiles(row, 2).tolist() == [[1, 3]]


def features(seed: int, size: int, shift: float = 0.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(1, 6, size, size, generator=generator) * torch.linspace(0.5, 2, 6)[None, :, None, None] + shift


@pytest.mark.parametrize("size", [16, 32])
def test_loss_is_small_for_the_same_distribution_and_large_for_another(size: int) -> None:
    target = {"a": features(0, 16)}
    loss = SlicedWassersteinLoss(target, 1.0, torch.Generator().manual_seed(1))
    assert float(loss({"a": target["a"]})) == pytest.approx(0.0, abs=1e-10)
    same = float(loss({"a": features(2, size)}))
    other = float(loss({"a": features(2, size, shift=1.0)}))
    assert same < 0.1 * other


def test_a_gradient_step_moves_towards_the_exemplar_distribution() -> None:
    loss = SlicedWassersteinLoss({"a": features(0, 16)}, 1.0, torch.Generator().manual_seed(1))
    image = features(3, 16, shift=1.0).requires_grad_(True)
    before = loss({"a": image})
    before.backward()
    step = 0.25 * image[0].numel()  # the loss is a mean over channels x positions
    after = loss({"a": (image - step * image.grad).detach()})
    assert float(after) < 0.5 * float(before.detach())


def test_the_local_view_tells_even_detail_from_blotches_that_the_plain_one_cannot_see() -> None:
    """Strong detail on one half and weak on the other has nearly the exemplar's value
    distribution (variance 1) but not its windows' RMS: only the local view sees it."""
    generator = torch.Generator().manual_seed(4)
    exemplar = torch.randn(1, 6, 64, 64, generator=generator)
    even = torch.randn(1, 6, 64, 64, generator=generator)
    blotchy = torch.randn(1, 6, 64, 64, generator=generator)
    blotchy[..., :32] *= 1.3
    blotchy[..., 32:] *= 0.55  # (1.3² + 0.55²) / 2 ≈ 1
    plain = SlicedWassersteinLoss({"a": exemplar}, 1.0, torch.Generator().manual_seed(1))
    local = SlicedWassersteinLoss({"a": exemplar}, 1.0, torch.Generator().manual_seed(1), {"a": 8}, 1.0)
    assert local.layers == ["a"]
    local_only = float(local({"a": blotchy}) - plain({"a": blotchy}))
    assert local_only > 5 * float(local({"a": even}) - plain({"a": even}))
    assert float(plain({"a": blotchy})) < 0.2 * local_only
    assert torch.equal(local_rms(torch.full((1, 2, 8, 8), 3.0), 4), torch.full((1, 2, 3, 3), 3.0))
