"""L-BFGS-B on pixels, as the reference ran it: bounds [0, 255], history 5, a fixed number of
loss evaluations, no early stopping."""
from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.optimize
import torch

HISTORY = 5
PIXEL_MIN, PIXEL_MAX = 0.0, 255.0
FIRST_STEP = 1.0  # root-mean-square size of the first step, in grey levels

LossFunction = Callable[[torch.Tensor], torch.Tensor]
AfterEvaluation = Callable[[int, float, np.ndarray], None]


class _BudgetSpent(Exception):
    pass


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

    bounds = scipy.optimize.Bounds(np.full(start.size, PIXEL_MIN), np.full(start.size, PIXEL_MAX))
    try:
        scipy.optimize.minimize(
            value_and_gradient, start.astype(np.float64), jac=True, method="L-BFGS-B", bounds=bounds,
            options={"maxcor": HISTORY, "maxfun": evaluations + 1, "maxiter": 10 * evaluations + 10,
                     "ftol": 0.0, "gtol": 0.0},
        )
    except _BudgetSpent:
        pass
    return best_x
