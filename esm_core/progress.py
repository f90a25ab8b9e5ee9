"""Progress reports and cooperative cancellation: how a caller watches and stops a job."""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np

from esm_contract.errors import CANCELLED, EsmError


class Cancelled(EsmError):
    """Raised inside the engine when its CancelToken was set."""

    code = CANCELLED


class CancelToken:
    """Thread-safe flag; the engine checks it once per loss evaluation."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled("the job was cancelled")


@dataclass(frozen=True)
class Progress:
    """One loss evaluation finished. ``step`` counts from 1 to ``steps`` within ``phase``
    (0-based, of ``phases``). ``preview()`` renders the current image (uint8 HxWxC);
    it costs a copy, so call it only when a preview is wanted."""

    phase: int
    phases: int
    step: int
    steps: int
    loss: float
    preview: Callable[[], np.ndarray]

    @property
    def fraction(self) -> float:
        """Overall completion in [0, 1], counting every phase as equal work."""
        return (self.phase + self.step / max(self.steps, 1)) / max(self.phases, 1)


ProgressCallback = Callable[[Progress], None]


def map_previews(progress: ProgressCallback | None,
                 transform: Callable[[np.ndarray], np.ndarray]) -> ProgressCallback | None:
    """``progress`` whose previews pass through ``transform`` (still lazily: only when one is
    asked for), e.g. to show the caller's view of the image being optimised."""
    if progress is None:
        return None

    def report(update: Progress) -> None:
        def preview(update: Progress = update) -> np.ndarray:
            return transform(update.preview())
        progress(dataclasses.replace(update, preview=preview))

    return report
