"""The worker thread: owns the Engine (and so the device), runs queued jobs one at a time and
reports their events to the socket loop over an inproc ZeroMQ socket (sockets are not
thread-safe, so only the loop touches the ROUTER)."""
from __future__ import annotations

import gc
import logging
import math
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq

from esm_api import protocol as P
from esm_core import CancelToken, Cancelled, Engine, ImageError, ParamError, Progress, SizeError

from .memory import prepare_for_job, release_freed_memory

log = logging.getLogger("esm.daemon")

PROGRESS_INTERVAL_S = 0.1  # at most ~10 progress messages a second (plus each phase's last step)
PREVIEW_MAX_SIDE = 256
END, PROGRESS = b"end", b"progress"


@dataclass
class JobRecord:
    id: str
    owner: bytes  # ROUTER identity of the client
    request_id: Any
    mode: str
    params: dict[str, Any]
    images: dict[str, np.ndarray]
    preview_every_s: float | None
    output_pixels: int
    cancel: CancelToken = field(default_factory=CancelToken)
    running: bool = False


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


class Worker(threading.Thread):
    def __init__(self, engine: Engine, context: zmq.Context, events_endpoint: str) -> None:
        super().__init__(name="esm-worker", daemon=True)  # a stuck evaluation must not block exit
        self.engine = engine
        self._context = context
        self._events_endpoint = events_endpoint
        self._queue: deque[JobRecord | None] = deque()
        self._ready = threading.Condition()
        self._socket: zmq.Socket | None = None

    # -- called from the socket loop
    def enqueue(self, job: JobRecord) -> None:
        with self._ready:
            self._queue.append(job)
            self._ready.notify()

    def unqueue(self, job_id: str) -> JobRecord | None:
        """Removes a job that has not started; None if it already runs (or ended)."""
        with self._ready:
            for job in self._queue:
                if job is not None and job.id == job_id:
                    self._queue.remove(job)
                    return job
        return None

    def queued(self) -> int:
        with self._ready:
            return sum(job is not None for job in self._queue)

    def stop(self) -> None:
        with self._ready:
            self._queue.append(None)
            self._ready.notify()

    # -- the thread
    def run(self) -> None:
        self._socket = self._context.socket(zmq.PUSH)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SNDTIMEO, 1000)  # the loop is gone only when stopping: never hang
        self._socket.connect(self._events_endpoint)
        try:
            while True:
                with self._ready:
                    while not self._queue:
                        self._ready.wait()
                    job = self._queue.popleft()
                    if job is None:
                        return
                    job.running = True
                self._execute(job)
        finally:
            self._socket.close()

    def _emit(self, kind: bytes, job: JobRecord, header: dict[str, Any], frames: list[Any] = ()) -> None:
        assert self._socket is not None
        header = {"v": P.PROTOCOL_VERSION, "id": job.request_id, "job": job.id, **header}
        try:
            self._socket.send_multipart([kind, job.id.encode(), job.owner, P.pack(header), *frames], copy=False)
        except zmq.Again:
            log.warning("socket loop gone; dropped an event of job %s", job.id)

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
            self._emit(PROGRESS, job, header, frames)

        prepare_for_job(job.output_pixels)
        try:
            results = self.engine.run(job.mode, job.params, job.images, on_progress, job.cancel)
        except Cancelled:
            log.info("job %s cancelled after %.1f s", job.id, time.monotonic() - started)
            self._emit(END, job, {"type": "cancelled", "message": "the job was cancelled"})
        except (ParamError, ImageError, SizeError) as error:
            self._emit(END, job, {"type": "error", "code": P.BAD_PARAMS, "message": str(error)})
        except MemoryError:
            self._fail_out_of_memory(job)
        except Exception as error:  # one failed job must never stop the daemon
            if type(error).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError
                self._fail_out_of_memory(job)
                return
            log.error("job %s failed:\n%s", job.id, traceback.format_exc())
            self._emit(END, job, {"type": "error", "code": P.JOB_FAILED,
                                  "message": f"{type(error).__name__}: {error}"})
        else:
            images = [np.ascontiguousarray(r if r.ndim == 3 else r[..., None], dtype=np.uint8) for r in results]
            descriptors = [{"width": a.shape[1], "height": a.shape[0], "channels": a.shape[2], "frame": i + 1}
                           for i, a in enumerate(images)]
            elapsed = time.monotonic() - started
            log.info("job %s (%s) done in %.2f s", job.id, job.mode, elapsed)
            self._emit(END, job, {"type": "result", "images": descriptors, "elapsed_s": elapsed}, images)
        finally:
            job.images = {}  # the inputs' memory goes as soon as the job ends
            _free_memory(self.engine)

    def _fail_out_of_memory(self, job: JobRecord) -> None:
        log.warning("job %s ran out of memory", job.id)
        _free_memory(self.engine)
        self._emit(END, job, {"type": "error", "code": P.OUT_OF_MEMORY,
                              "message": "out of memory: try a smaller size or fewer phases"})
