"""Several independent pixel optimisations sharing one batched network pass per step.

Treating a batch as one long vector would couple its images through L-BFGS's line search
and its shared curvature estimate, so an image's result would depend on its companions.
Here every image gets its own ``optimize.minimise_pixels`` (in a thread that mostly
waits), and each round evaluates the loss of the whole batch at once: every image follows
the path it would follow alone, up to the rounding of the batched convolutions.
"""
from __future__ import annotations

import threading
from typing import Callable

import numpy as np
import torch

from .optimize import AfterEvaluation, minimise_pixels

BatchLoss = Callable[[torch.Tensor], torch.Tensor]  # flat pixels of B images -> (B,) losses

_CPU = torch.device("cpu")


class _Aborted(Exception):
    """Ends the worker threads when the batch evaluation failed or was cancelled."""


def minimise_lockstep(
    loss_of: BatchLoss,
    start: np.ndarray,
    evaluations: int,
    device: torch.device,
    after_evaluation: AfterEvaluation | None = None,
    *,
    batch: int,
) -> np.ndarray:
    """Like ``minimise_pixels`` for a flat vector holding ``batch`` equally sized images,
    where ``loss_of`` returns one loss per image and each image is minimised on its own.
    ``after_evaluation(round, mean loss, x)`` runs after each batched evaluation."""
    parts = np.split(np.asarray(start, np.float64), batch)
    current = [part.copy() for part in parts]
    results = [part.copy() for part in parts]
    condition = threading.Condition()
    pending: dict[int, np.ndarray] = {}
    replies: dict[int, tuple[float, torch.Tensor]] = {}
    running = set(range(batch))
    errors: list[BaseException] = []
    aborted = False

    def worker(index: int) -> None:
        def loss_alone(pixels: torch.Tensor) -> torch.Tensor:
            with condition:
                pending[index] = pixels.detach().numpy().astype(np.float64)
                condition.notify_all()
                condition.wait_for(lambda: index in replies or aborted)
                if aborted:
                    raise _Aborted
                value, gradient = replies.pop(index)
            # a stand-in whose value and gradient are this image's share of the batch's
            return (pixels * gradient).sum() - (pixels.detach() * gradient).sum() + value

        try:
            results[index] = minimise_pixels(loss_alone, parts[index], evaluations, _CPU)
        except _Aborted:
            pass
        except BaseException as error:  # surfaces in the calling thread
            errors.append(error)
        finally:
            with condition:
                running.discard(index)
                condition.notify_all()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(batch)]
    for thread in threads:
        thread.start()
    step = 0
    try:
        while True:
            with condition:
                condition.wait_for(lambda: errors or not running or running <= set(pending))
                if errors:
                    raise errors[0]
                if not running:
                    break
                asked = dict(pending)
                pending.clear()
            for index, x in asked.items():
                current[index] = x
            flat = torch.from_numpy(np.concatenate(current)).to(device, torch.float32).requires_grad_(True)
            losses = loss_of(flat)
            losses.sum().backward()  # the losses are separable: each image gets its own gradient
            gradients = flat.grad.detach().to(_CPU).split(parts[0].size)
            values = losses.detach().to(_CPU, torch.float64).numpy()
            step += 1
            if after_evaluation is not None:
                after_evaluation(step, float(values.mean()), np.concatenate(current))
            with condition:
                for index in asked:
                    replies[index] = (float(values[index]), gradients[index])
                condition.notify_all()
    finally:
        with condition:
            aborted = True
            condition.notify_all()
        for thread in threads:
            thread.join()
    return np.concatenate(results)
