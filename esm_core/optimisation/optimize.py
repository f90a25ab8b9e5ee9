"""L-BFGS-B on pixels, as the reference ran it: bounds [0, 255], history 5, a fixed number of
loss evaluations, no early stopping."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Callable

import numpy as np
import scipy
import torch
from threadpoolctl import threadpool_limits


def _load_lbfgsb() -> ModuleType:
    """scipy's compiled L-BFGS-B routine without ``scipy.optimize``'s package, whose import
    (linalg, sparse, fft, special, the array-API layer) took 0.4-0.75 s of every run's start
    for nothing we use (docs/performance.md, "Start-up"). The extension needs only numpy; it
    is registered under its own name, so a later ``import scipy.optimize`` shares it."""
    name = "scipy.optimize._lbfgsb"
    if name in sys.modules:
        return sys.modules[name]
    folder = Path(scipy.__file__).parent / "optimize"
    path = next(path for suffix in importlib.machinery.EXTENSION_SUFFIXES
                if (path := folder / f"_lbfgsb{suffix}").is_file())
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return sys.modules.setdefault(name, module)


_lbfgsb = _load_lbfgsb()

HISTORY = 5
PIXEL_MIN, PIXEL_MAX = 0.0, 255.0
FIRST_STEP = 1.0  # root-mean-square size of the first step, in grey levels

LossFunction = Callable[[torch.Tensor], torch.Tensor]
AfterEvaluation = Callable[[int, float, np.ndarray], None]


class _BudgetSpent(Exception):
    pass


class _SequentialBlas:
    """While any L-BFGS-B run is active, the BLAS libraries that threadpoolctl finds (the
    OpenBLAS of numpy and scipy; torch's own BLAS is built in and not affected) use one thread.
    L-BFGS-B only calls vector routines, which gain nothing from threads, and OpenBLAS's idle
    threads busy-wait after every call, taking the cores from the torch work that follows:
    a 512x512 synthesis spent 1-1.5 s more in the network (docs/performance.md). OpenBLAS's
    limit is process-wide, so concurrent runs (lockstep batches) share one, restored when the
    last run ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs = 0
        self._limiter: threadpool_limits | None = None

    def __enter__(self) -> None:
        with self._lock:
            if not self._runs:
                self._limiter = threadpool_limits(limits=1, user_api="blas")
            self._runs += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._runs -= 1
            if not self._runs and self._limiter is not None:
                self._limiter.restore_original_limits()
                self._limiter = None


_SEQUENTIAL_BLAS = _SequentialBlas()


def minimise_pixels(
    loss_of: LossFunction,
    start: np.ndarray,
    evaluations: int,
    device: torch.device,
    after_evaluation: AfterEvaluation | None = None,
) -> np.ndarray:
    """Minimises ``loss_of(x)`` over the flat float64 vector ``start`` (pixel values),
    evaluating the loss exactly ``evaluations`` times (fewer only if L-BFGS-B converges).
    Returns the evaluated point with the lowest loss. ``after_evaluation(step, loss, x)``
    runs after each evaluation; an exception it raises (e.g. Cancelled) ends the run.

    L-BFGS-B with bounds starts from the identity as its Hessian estimate, so its first step
    is the raw gradient, which for these losses is tiny (a norm of about 1e-4 over all
    pixels). The secant pair from such a step is float32 rounding noise, its curvature
    update gets skipped and the run can stall at its start point for the whole phase. The
    optimiser therefore sees the loss times a constant chosen at the first evaluation that
    makes the first step ``FIRST_STEP`` grey levels (RMS): the minimum is the same."""
    best_loss, best_x = float("inf"), start
    count = 0
    scale = 0.0

    def value_and_gradient(x: np.ndarray) -> tuple[float, np.ndarray]:
        nonlocal count, best_loss, best_x, scale
        if count >= evaluations:
            raise _BudgetSpent
        pixels = torch.from_numpy(x).to(device=device, dtype=torch.float32).requires_grad_(True)
        loss = loss_of(pixels)
        loss.backward()
        count += 1
        value = float(loss.detach())
        if value < best_loss:
            best_loss, best_x = value, x.copy()
        if after_evaluation is not None:
            after_evaluation(count, value, x)
        gradient = pixels.grad.detach().to("cpu", torch.float64).numpy()
        if not scale:
            norm = float(np.linalg.norm(gradient))
            scale = FIRST_STEP * np.sqrt(x.size) / norm if norm > 0 else 1.0
        return value * scale, gradient * scale

    try:
        with _SEQUENTIAL_BLAS:
            _drive_setulb(value_and_gradient, np.clip(start.astype(np.float64), PIXEL_MIN, PIXEL_MAX))
    except _BudgetSpent:
        pass
    return best_x


# scipy.optimize.minimize spends seconds per phase on the bounds alone (a Python loop over every
# pixel, after two conversions between bound formats): 7 of 35 s of a 512x512 synthesis. This
# drives scipy's L-BFGS-B routine the way scipy's own driver does (scipy >= 1.15,
# optimize/_lbfgsb_py.py); tests/test_optimize.py checks the iterates equal minimize's.
def _drive_setulb(value_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]], x: np.ndarray) -> None:
    """Runs L-BFGS-B (history ``HISTORY``, bounds [PIXEL_MIN, PIXEL_MAX], no convergence
    tests) from ``x`` until ``value_and_gradient`` raises or the routine stops by itself."""
    n, m = x.size, HISTORY
    lower, upper = np.full(n, PIXEL_MIN), np.full(n, PIXEL_MAX)
    both_bounds = np.full(n, 2, np.int32)
    value, gradient = 0.0, np.zeros(n)
    work = np.zeros(2 * m * n + 5 * n + 11 * m * m + 8 * m)
    int_work = np.zeros(3 * n, np.int32)
    task, line_task = np.zeros(2, np.int32), np.zeros(2, np.int32)
    logical_save, int_save, double_save = np.zeros(4, np.int32), np.zeros(44, np.int32), np.zeros(29)
    factr, pgtol, max_line_search = 0.0, 0.0, 20
    while True:
        _lbfgsb.setulb(m, x, lower, upper, both_bounds, value, gradient, factr, pgtol, work, int_work, task,
                       logical_save, int_save, double_save, max_line_search, line_task)
        if task[0] == 3:  # wants the loss and gradient at x
            value, gradient = value_and_gradient(x)
        elif task[0] != 1:  # 1: a new iteration began; anything else: converged or gave up
            return
