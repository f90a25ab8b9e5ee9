"""The worker thread: owns the Engine (and so the device) and runs queued jobs one at a time,
taking connections in turn. Its events go to the socket loop through a queue and a wake-up
pipe the loop polls: the worker owns no ZeroMQ socket, so the loop can close the context and
exit while a job is still inside an engine call that has not yet looked at its cancel token."""
from __future__ import annotations

import gc
import logging
import math
import os
import queue
import threading
import time
import traceback
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from esm_client import protocol as P
from esm_contract.errors import EsmError
from esm_contract.jobs import Job
from esm_core import CancelToken, Cancelled, Engine, Progress

from esm_core.memory import prepare_for_job, release_freed_memory

log = logging.getLogger("esm.daemon")

PROGRESS_INTERVAL_S = 0.1  # at most ~10 progress messages a second (plus each phase's last step)
PREVIEW_MAX_SIDE = 256
OUT_OF_MEMORY_ADVICE = "out of memory: try a smaller size, fewer phases or matching \"fast\""


@dataclass(eq=False)  # jobs are compared by identity (the queue's remove)
class JobRecord:
    id: str
    owner: bytes  # ROUTER identity of the client
    request_id: Any
    job: Job[np.ndarray] | None  # parsed once, on the socket; None once it ended (its images' memory goes)
    preview_every_s: float | None
    output_pixels: int
    cancel: CancelToken = field(default_factory=CancelToken)
    running: bool = False
    ended: bool = False  # its client got its last event (the loop sets it; the worker may still run it)


class Event(NamedTuple):
    """A job's message for its client; ``last`` for the one that ends it."""

    job: JobRecord
    header: dict[str, Any]
    frames: list[Any]
    last: bool


def shrink(image: np.ndarray, max_side: int = PREVIEW_MAX_SIDE) -> np.ndarray:
    """Nearest-neighbour downscale so the longer side is at most ``max_side`` (previews only)."""
    step = math.ceil(max(image.shape[:2]) / max_side)
    return np.ascontiguousarray(image[::step, ::step]) if step > 1 else np.ascontiguousarray(image)


def _free_memory(engine: Engine) -> None:
    """Hands what a job's tensors used back to the system: the daemon idles between jobs."""
    gc.collect()
    release_freed_memory()
    if engine.device.type == "cuda":
        import torch

        torch.cuda.empty_cache()


# RuntimeErrors that mean memory ran out: torch's CPU allocator, and oneDNN failing to create a
# primitive whose descriptor it had already accepted (its scratchpad could not be allocated).
OUT_OF_MEMORY_MESSAGES = ("can't allocate memory", "could not create a primitive")


def _is_out_of_memory(error: BaseException) -> bool:
    """MemoryError, torch.cuda.OutOfMemoryError, or one of the RuntimeErrors above."""
    return (isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError"
            or (isinstance(error, RuntimeError) and any(m in str(error) for m in OUT_OF_MEMORY_MESSAGES)))


class Worker(threading.Thread):
    def __init__(self, engine: Engine) -> None:
        super().__init__(name="esm-worker", daemon=True)  # a stuck evaluation must not block exit
        self.engine = engine
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.wake_fd, self._wake_write = os.pipe()  # readable when events wait (the loop polls it)
        for fd in (self.wake_fd, self._wake_write):
            os.set_blocking(fd, False)
        self._queues: OrderedDict[bytes, deque[JobRecord]] = OrderedDict()  # per connection, in turn
        self._ready = threading.Condition()
        self._stopping = False

    # -- called from the socket loop
    def enqueue(self, job: JobRecord) -> None:
        with self._ready:
            self._queues.setdefault(job.owner, deque()).append(job)
            self._ready.notify()

    def unqueue(self, job: JobRecord) -> bool:
        """Removes a job that has not started; False if it already runs (or ended)."""
        with self._ready:
            jobs = self._queues.get(job.owner)
            if jobs is None or job not in jobs:
                return False
            jobs.remove(job)
            if not jobs:
                del self._queues[job.owner]
            return True

    def queued(self) -> int:
        with self._ready:
            return sum(len(jobs) for jobs in self._queues.values())

    def take_events(self) -> list[Event]:
        """The events waiting for the loop (it calls this when ``wake_fd`` is readable)."""
        try:
            os.read(self.wake_fd, 65536)
        except BlockingIOError:
            pass
        taken = []
        while True:
            try:
                taken.append(self.events.get_nowait())
            except queue.Empty:
                return taken

    def stop(self) -> None:
        with self._ready:
            self._stopping = True
            self._ready.notify()

    # -- the thread
    def _next(self) -> JobRecord | None:
        """The next connection's oldest job (round robin), or None when stopping."""
        with self._ready:
            while not self._queues and not self._stopping:
                self._ready.wait()
            if self._stopping:
                return None
            owner, jobs = next(iter(self._queues.items()))
            job = jobs.popleft()
            if jobs:
                self._queues.move_to_end(owner)
            else:
                del self._queues[owner]
            job.running = True
            return job

    def run(self) -> None:
        while (job := self._next()) is not None:
            self._execute(job)

    def _emit(self, job: JobRecord, header: dict[str, Any], frames: list[Any] = (), last: bool = False) -> None:
        self.events.put(Event(job, {"v": P.PROTOCOL_VERSION, "id": job.request_id, "job": job.id, **header},
                              list(frames), last))
        try:
            os.write(self._wake_write, b"\0")
        except BlockingIOError:
            pass  # the pipe is full of wake-ups already

    def _execute(self, job: JobRecord) -> None:
        started = time.monotonic()
        last_sent = last_preview = -math.inf

        def on_progress(p: Progress) -> None:
            nonlocal last_sent, last_preview
            now = time.monotonic()
            preview_due = job.preview_every_s is not None and now - last_preview >= job.preview_every_s
            if not preview_due and p.step != p.steps and now - last_sent < PROGRESS_INTERVAL_S:
                return
            fraction = p.fraction
            eta = (now - started) * (1 - fraction) / fraction if fraction > 0 else None
            header: dict[str, Any] = {"type": "progress", "phase": p.phase, "phases": p.phases, "step": p.step,
                                      "steps": p.steps, "loss": P.finite_or_none(p.loss),
                                      "eta_s": P.finite_or_none(eta)}
            frames = []
            if preview_due:
                preview = shrink(p.preview())
                header["preview"] = {"width": preview.shape[1], "height": preview.shape[0],
                                     "channels": preview.shape[2], "frame": 1}
                frames.append(preview)
                last_preview = now
            last_sent = now
            self._emit(job, header, frames)

        prepare_for_job(job.output_pixels)
        out_of_memory = False
        try:
            results = self.engine.run(job.job, on_progress, job.cancel)
        except Cancelled:
            log.info("job %s cancelled after %.1f s", job.id, time.monotonic() - started)
            self._emit(job, {"type": "cancelled", "message": "the job was cancelled"}, last=True)
        except EsmError as error:  # the job's own fault (parameters, images, sizes): its code says so
            self._emit(job, {"type": "error", "code": error.code, "message": error.message}, last=True)
        except Exception as error:  # one failed job must never stop the daemon
            if not _is_out_of_memory(error):
                log.error("job %s failed:\n%s", job.id, traceback.format_exc())
                self._emit(job, {"type": "error", "code": P.JOB_FAILED,
                                 "message": f"{type(error).__name__}: {error}"}, last=True)
            else:  # reported below, once the traceback (and the tensors its frames hold) is gone
                log.warning("job %s ran out of memory: %s", job.id, error)
                out_of_memory = True
        else:
            images = [np.ascontiguousarray(r if r.ndim == 3 else r[..., None], dtype=np.uint8) for r in results]
            descriptors = [{"width": a.shape[1], "height": a.shape[0], "channels": a.shape[2], "frame": i + 1}
                           for i, a in enumerate(images)]
            elapsed = time.monotonic() - started
            log.info("job %s (%s) done in %.2f s", job.id, job.job.mode, elapsed)
            self._emit(job, {"type": "result", "images": descriptors, "elapsed_s": elapsed}, images, last=True)
        finally:
            job.job = None  # the inputs' memory goes as soon as the job ends
            if out_of_memory:
                self.engine.clear_caches()  # room for the next job comes before cache hits
            _free_memory(self.engine)
        if out_of_memory:
            self._emit(job, {"type": "error", "code": P.OUT_OF_MEMORY, "message": OUT_OF_MEMORY_ADVICE}, last=True)
