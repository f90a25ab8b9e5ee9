"""The pixel optimiser: bounds, the exact evaluation budget, the best point, its direct
L-BFGS-B driver taking the same steps as scipy.optimize.minimize, and one BLAS thread while
it runs."""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
import scipy.optimize
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from esm_core.optimisation import optimize

DEVICE = torch.device("cpu")


def bumpy_loss(pixels: torch.Tensor) -> torch.Tensor:
    """A smooth, badly conditioned, non-quadratic loss (no convergence within the tests'
    budgets) whose minimum lies partly outside [0, 255]."""
    target = torch.linspace(-40.0, 300.0, pixels.numel(), dtype=pixels.dtype)
    curvature = torch.logspace(0, 4, pixels.numel(), dtype=pixels.dtype)
    return (curvature * (pixels - target) ** 2).mean() + torch.cos(pixels / 9.0).mean()


def scipy_driver(value_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]], x: np.ndarray) -> None:
    """The public way to run the same L-BFGS-B: the reference for the direct driver."""
    bounds = scipy.optimize.Bounds(np.full(x.size, optimize.PIXEL_MIN), np.full(x.size, optimize.PIXEL_MAX))
    scipy.optimize.minimize(value_and_gradient, x, jac=True, method="L-BFGS-B", bounds=bounds,
                            options={"maxcor": optimize.HISTORY, "maxfun": 10**6, "maxiter": 10**6,
                                     "ftol": 0.0, "gtol": 0.0})


def run(evaluations: int) -> tuple[np.ndarray, list[tuple[int, float, np.ndarray]]]:
    seen: list[tuple[int, float, np.ndarray]] = []
    start = np.random.default_rng(0).uniform(0, 255, 500)
    best = optimize.minimise_pixels(bumpy_loss, start, evaluations, DEVICE,
                                    lambda step, loss, x: seen.append((step, loss, x.copy())))
    return best, seen


def test_direct_driver_takes_the_same_steps_as_scipy_minimize(monkeypatch: pytest.MonkeyPatch) -> None:
    best_direct, seen_direct = run(25)
    monkeypatch.setattr(optimize, "_drive_setulb", scipy_driver)
    best_scipy, seen_scipy = run(25)
    assert [step for step, _, _ in seen_direct] == list(range(1, 26))
    assert [loss for _, loss, _ in seen_direct] == [loss for _, loss, _ in seen_scipy]
    assert all(np.array_equal(a, b) for (_, _, a), (_, _, b) in zip(seen_direct, seen_scipy))
    assert np.array_equal(best_direct, best_scipy)


def test_budget_bounds_and_best_point() -> None:
    best, seen = run(12)
    assert len(seen) == 12  # exactly the budget: no early stop on these tolerances
    losses = [loss for _, loss, _ in seen]
    assert losses[-1] < losses[0] / 10  # it really optimised
    assert best.min() >= optimize.PIXEL_MIN and best.max() <= optimize.PIXEL_MAX
    assert np.array_equal(best, seen[int(np.argmin(losses))][2])  # the best evaluated point


def blas_threads() -> list[int]:
    return [library["num_threads"] for library in threadpool_info() if library["user_api"] == "blas"]


def test_blas_uses_one_thread_while_any_run_is_active_and_is_restored_after() -> None:
    start = np.random.default_rng(0).uniform(0, 255, 500)
    outer_threads: list[list[int]] = []

    def outer_step(step: int, loss: float, x: np.ndarray) -> None:
        if step == 2:  # a second run starts and ends while this one is active (as lockstep runs do)
            inner_threads: list[list[int]] = []
            optimize.minimise_pixels(bumpy_loss, start, 2, DEVICE, lambda *_: inner_threads.append(blas_threads()))
            assert inner_threads and all(set(threads) == {1} for threads in inner_threads)
        outer_threads.append(blas_threads())

    with threadpool_limits(limits=2, user_api="blas"):  # threads to take away, even on a one-core machine
        assert blas_threads() and set(blas_threads()) == {2}
        optimize.minimise_pixels(bumpy_loss, start, 4, DEVICE, outer_step)
        assert len(outer_threads) == 4 and all(set(threads) == {1} for threads in outer_threads)
        assert set(blas_threads()) == {2}
