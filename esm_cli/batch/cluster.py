"""Runs batch jobs on Ray: the only module of ESM that imports ray (tests/test_batch.py and
.importlinter check that the engine, the daemon, the contract and the client never do).

Workers are actors that each hold an ``Engine`` (networks and style features stay cached).
The driver reads every input, hands each worker at most ``IN_FLIGHT`` jobs, prefers the
worker that ran the same exemplar last, writes each result atomically and records it.
"""
from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from esm_contract.errors import JOB_FAILED, OUT_OF_MEMORY, EsmError
from esm_cli.batch.jobs import load_job
from esm_cli.batch.manifest import BatchJob
from esm_cli.batch.results import CANCELLED, ERROR, OK, Results, row
from esm_cli.errors import UserError

if TYPE_CHECKING:
    import numpy as np

    from esm_contract.jobs import Job

IN_FLIGHT = 2  # jobs queued on a worker: one running, one ready, so a worker never waits on the driver
ATTEMPTS = 3  # runs of a job whose worker dies, before it is recorded as an error
WORKER_LOST = "worker_lost"  # results.jsonl's code for a job whose worker died ATTEMPTS times
LOCAL_OBJECT_STORE = 512 << 20  # the local instance's object store: IN_FLIGHT jobs per worker fit many times
WAIT_S = 0.5  # how often the driver looks up from waiting (progress, Ctrl-C)


class Worker:
    """A Ray actor: one Engine on one device, ``threads`` torch threads on a CPU."""

    def __init__(self, device: str, threads: int) -> None:
        import torch

        from esm_core import Engine
        from esm_core.memory import tune_allocator

        tune_allocator()
        torch.set_num_threads(threads)
        self.engine = Engine(device)
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def run(self, job: Job[np.ndarray], exemplar: str) -> dict[str, Any]:
        """The job's images and their ``esm eval`` figures against ``job.images[exemplar]``,
        or its error; a failing job never takes the worker down."""
        from esm_core import evaluate

        started = time.monotonic()
        try:
            images = self.engine.run(job)
            figures = [evaluate(job.images[exemplar], image, tile=job.params.tileable) for image in images]
            return {"images": images, "eval": figures, "seconds": time.monotonic() - started, "worker": self.name}
        except EsmError as error:
            code, message = error.code, error.message
        except MemoryError:
            code, message = OUT_OF_MEMORY, "out of memory"
        except Exception as error:  # noqa: BLE001  (one job's failure is its row, not the batch's)
            oom = "out of memory" in str(error).lower()
            code, message = (OUT_OF_MEMORY if oom else JOB_FAILED), f"{type(error).__name__}: {error}"
        return {"code": code, "message": message, "seconds": time.monotonic() - started, "worker": self.name}


@dataclass
class _Slot:
    actor: Any
    index: int
    running: int = 0
    last: str | None = None  # the exemplar file of its last job: its style features are cached


@dataclass
class _Pending:
    job: BatchJob
    slot: _Slot
    attempt: int


@dataclass
class Plan:
    workers: int
    device: str  # "cpu" or "cuda"
    threads: int  # torch threads of a CPU worker


def connect(address: str | None) -> bool:
    """Joins ``address`` (auto, HOST:PORT, ray://HOST:PORT) or starts a local instance; True
    when this call started Ray (and so shuts it down). Ray already started in this process
    (a test, a script) is used as it is."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address is None:
        kwargs.update(num_cpus=os.cpu_count() or 1, include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE)
    else:
        kwargs["address"] = address
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise UserError(f"cannot {'start Ray' if address is None else f'join the Ray cluster at {address}'}: "
                        f"{str(error).splitlines()[0] if str(error) else type(error).__name__}", exit_code=1) from None
    return True


def plan(workers: int | None, device: str) -> Plan:
    """One worker per GPU when there are GPUs (``device`` auto or cuda), else ``workers``
    (default 1) CPU workers sharing the largest node's cores."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if device == "cuda" and not gpus:
        raise UserError("--device cuda: the Ray cluster has no GPU")
    if device != "cpu" and gpus:
        return Plan(workers or gpus, "cuda", 1)
    cores = max((int(node["Resources"].get("CPU", 0)) for node in ray.nodes() if node.get("Alive")), default=1)
    count = workers or 1
    return Plan(count, "cpu", max(1, cores // count))


class Batch:
    """Runs jobs on the plan's workers and records each in ``results``; ``on_done`` is called
    after every recorded row (the progress bar)."""

    def __init__(self, outdir: Path, plan: Plan, results: Results, on_done: Callable[[], None]) -> None:
        self.outdir, self.plan, self.results, self.on_done = outdir, plan, results, on_done
        cpus = 0 if plan.device == "cuda" else plan.threads
        self._remote = ray.remote(num_cpus=cpus, num_gpus=1 if plan.device == "cuda" else 0)(Worker)
        self._started = 0
        self._name = f"esm-batch-{uuid.uuid4().hex[:8]}"  # each batch's own: a killed actor's name frees late
        self._slots = [self._start() for _ in range(plan.workers)]
        self._pending: dict[Any, _Pending] = {}  # object ref -> its job
        self._retry: deque[tuple[BatchJob, int]] = deque()

    def _start(self) -> _Slot:
        index, self._started = self._started, self._started + 1
        # Named, so an operator (or a test) finds the workers: ray.util.list_named_actors().
        actor = self._remote.options(name=f"{self._name}-worker-{index}").remote(self.plan.device, self.plan.threads)
        return _Slot(actor, index)

    def run(self, jobs: Iterable[BatchJob]) -> None:
        """Every job, IN_FLIGHT per worker at most; Ctrl-C (KeyboardInterrupt) cancels the
        running ones (``cancelled`` rows) and is raised again."""
        feed: Iterator[BatchJob] = iter(jobs)
        try:
            while True:
                while self._free() is not None:
                    if self._retry:
                        job, attempt = self._retry.popleft()
                    else:
                        job, attempt = next(feed, None), 1
                        if job is None:
                            break
                    self._submit(job, attempt)
                if not self._pending:
                    return
                ready, _ = ray.wait(list(self._pending), num_returns=1, timeout=WAIT_S)
                for ref in ready:
                    self._finish(ref)
        except KeyboardInterrupt:
            for pending in self._pending.values():
                self.results.add(row(pending.job.line, pending.job.output, CANCELLED, outputs=pending.job.outputs,
                                     code=CANCELLED, message="interrupted (Ctrl-C)", runs=pending.attempt))
            self._pending.clear()
            raise
        finally:
            for slot in self._slots:
                ray.kill(slot.actor)  # a cancelled job stops at once; finished jobs are recorded already

    def _free(self) -> _Slot | None:
        slots = [slot for slot in self._slots if slot.running < IN_FLIGHT]
        return min(slots, key=lambda slot: slot.running) if slots else None

    def _submit(self, job: BatchJob, attempt: int) -> None:
        try:
            typed = load_job(job)
        except (EsmError, UserError) as error:
            code = error.code if isinstance(error, EsmError) else "bad_params"
            self._record(row(job.line, job.output, ERROR, outputs=job.outputs, code=code, message=str(error)))
            return
        exemplar = str(job.images[job.exemplar])
        free = [slot for slot in self._slots if slot.running < IN_FLIGHT]
        # Same exemplar, same worker when it has room: its Engine has the style features cached.
        slot = next((s for s in free if s.last == exemplar), min(free, key=lambda s: s.running))
        slot.running += 1
        slot.last = exemplar
        self._pending[slot.actor.run.remote(typed, job.exemplar)] = _Pending(job, slot, attempt)

    def _finish(self, ref: Any) -> None:
        pending = self._pending.pop(ref)
        job = pending.job
        pending.slot.running -= 1
        try:
            result = ray.get(ref)
        except (RayActorError, ActorDiedError, ActorUnavailableError) as error:
            self._lost(pending, error)
            return
        runs = pending.attempt
        if "code" in result:
            self._record(row(job.line, job.output, ERROR, outputs=job.outputs, code=result["code"],
                             message=result["message"], seconds=result["seconds"], worker=result["worker"], runs=runs))
            return
        from esm_core.images import save_image

        try:
            for name, image in zip(job.outputs, result["images"]):
                (self.outdir / name).parent.mkdir(parents=True, exist_ok=True)
                save_image(image, self.outdir / name)  # atomic: a temporary file, then a rename
        except (EsmError, OSError) as error:
            self._record(row(job.line, job.output, ERROR, outputs=job.outputs,
                             code=getattr(error, "code", JOB_FAILED), message=str(error),
                             seconds=result["seconds"], worker=result["worker"], runs=runs))
            return
        self._record(row(job.line, job.output, OK, outputs=job.outputs, seconds=result["seconds"],
                         worker=result["worker"], figures=dict(zip(job.outputs, result["eval"])), runs=runs))

    def _lost(self, pending: _Pending, error: Exception) -> None:
        """A dead worker: replaced by a new one; its jobs run again elsewhere, ATTEMPTS times in all."""
        dead = pending.slot
        if dead in self._slots:
            self._slots[self._slots.index(dead)] = self._start()
        if pending.attempt < ATTEMPTS:
            self._retry.append((pending.job, pending.attempt + 1))
            return
        job = pending.job
        self._record(row(job.line, job.output, ERROR, outputs=job.outputs, code=WORKER_LOST,
                         message=f"its worker died {ATTEMPTS} times ({type(error).__name__})", runs=pending.attempt))

    def _record(self, entry: dict[str, Any]) -> None:
        self.results.add(entry)
        self.on_done()


def shutdown() -> None:
    ray.shutdown()
