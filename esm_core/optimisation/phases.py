"""The phases of a run, coarse to fine: each phase's start (noise, the previous result
upscaled, or a given image), the pixels it optimises (all, or a fill's free ones), progress
and cancellation. Every mode runs its losses through ``run_phases``."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from ..features.exemplar import Networks, to_uint8
from ..features.resample import resize
from ..progress import CancelToken, Progress, ProgressCallback
from .multiscale import Phase
from .optimize import minimise_pixels


KnownPixels = Callable[[Phase], tuple[torch.Tensor, torch.Tensor]]


def _free_pixels(
    pixels: torch.Tensor, known: tuple[torch.Tensor, torch.Tensor] | None,
) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """(the optimiser's start vector, vector -> image): every pixel, or only the free ones."""
    shape = pixels.shape
    if known is None:
        return pixels.flatten(), lambda flat: flat.view(shape)
    fixed, free = known
    index = free.expand(shape).flatten().nonzero().squeeze(1)
    base = fixed.flatten()
    return pixels.flatten()[index], lambda flat: base.index_put((index,), flat).view(shape)


def run_phases(
    resources: Networks,
    plan: list[Phase],
    channels: int,
    seed: int | Sequence[int],
    make_loss: Callable[[Phase], Callable[[torch.Tensor], torch.Tensor]],
    iterations: int,
    circular: bool,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
    known: KnownPixels | None = None,
    initial: Callable[[Phase], torch.Tensor] | None = None,
    minimise: Callable[..., np.ndarray] = minimise_pixels,
) -> torch.Tensor:
    """Runs the phases of ``plan``: uniform noise in [0, 255] first, then each phase starts
    from the previous result, upscaled (bicubic). Returns (1, C, H, W) float pixels.
    With ``known`` (fill), ``known(phase)`` gives (pixels, free) at the phase's size: only
    where the bool (1, 1, H, W) ``free`` is set are pixels optimised; the rest is held at
    ``pixels``. ``initial(phase)`` replaces the first phase's noise. A sequence of seeds optimises a batch, one noise image per seed, with
    ``minimise`` (e.g. esm_core.optimisation.lockstep.minimise_lockstep); the result is (N, C, H, W)."""
    pixels: torch.Tensor | None = None
    for phase in plan:
        width, height = phase.size
        if pixels is None and initial is not None:
            pixels = initial(phase)
        elif pixels is None:
            noise = np.concatenate([np.random.default_rng(s).uniform(0.0, 255.0, (1, channels, height, width))
                                    for s in ([seed] if isinstance(seed, int) else seed)])
            pixels = torch.from_numpy(noise).to(resources.device, torch.float32)
        else:
            pixels = resize(pixels, width, height, circular=circular).clamp(0, 255)
        loss_of_image = make_loss(phase)
        start, compose = _free_pixels(pixels, None if known is None else known(phase))

        def loss_of(flat: torch.Tensor) -> torch.Tensor:
            return loss_of_image(compose(flat))

        def after(step: int, loss: float, x: np.ndarray, phase: Phase = phase,
                  compose: Callable[[torch.Tensor], torch.Tensor] = compose) -> None:
            if cancel is not None:
                cancel.check()
            if progress is not None:
                snapshot = x.copy()  # the optimiser may reuse x's buffer before preview() is called
                image = lambda: compose(torch.from_numpy(snapshot).to(resources.device, torch.float32))  # noqa: E731
                progress(Progress(phase.index, len(plan), step, iterations, loss,
                                  preview=lambda: to_uint8(image())))

        if cancel is not None:
            cancel.check()
        best = minimise(loss_of, start.double().cpu().numpy(), iterations, resources.device, after)
        pixels = compose(torch.from_numpy(best).to(resources.device, torch.float32))
    assert pixels is not None
    return pixels
