"""The socket loop: one ROUTER socket, requests decoded and checked against the limits here,
jobs handed to the Worker, worker events forwarded to their clients. The loop never runs
engine code, so pings and cancels are answered while a job runs."""
from __future__ import annotations

import ipaddress
import logging
import os
import signal
import time
import uuid
from typing import Any, Callable

import zmq

from esm_api import protocol as P
from esm_api.jobs import MODES, output_size, parse_job

from . import keys as K
from . import paths
from .arrays import to_array
from .config import DaemonConfig, StartError, check_security
from .memory import tune_allocator
from .worker import END, JobRecord, Worker

log = logging.getLogger("esm.daemon")

POLL_MS = 200
SWEEP_S = 0.5  # how often silent clients are looked for
DRAIN_S = 10.0  # on shutdown, how long to wait for the running job to notice its cancel
EVENTS_ENDPOINT = "inproc://esm-worker-events"


def version() -> str:
    from esm_cli import __version__

    return __version__


class Reply(Exception):
    """Raised by a request handler to answer with an error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _peer_is_local(frame: zmq.Frame) -> bool:
    try:
        address = frame.get("Peer-Address")
    except zmq.ZMQError:
        return True  # ipc/inproc transports carry no peer address
    if not address:
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


class Server:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.limits = config.limits
        self.server_keys = check_security(config)
        from esm_core import Engine

        self.engine = Engine(config.device, cache_bytes=config.cache_bytes)
        self.context = zmq.Context()
        self.jobs: dict[str, JobRecord] = {}  # queued and running, until their end is forwarded
        self.last_seen: dict[bytes, float] = {}
        self.counts = {"completed": 0, "failed": 0, "cancelled": 0}
        self.stopping: str | None = None  # why the daemon is shutting down
        self.pid = os.getpid()
        self.started = time.time()

    # -- lifetime
    def serve(self) -> None:
        router = self.context.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 1000)  # let the last replies out on shutdown
        router.setsockopt(zmq.MAXMSGSIZE, self.limits.max_frame_bytes + 1024)
        router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        auth = K.secure(self.context, router, self.server_keys) if self.server_keys else None
        try:
            router.bind(self.config.endpoint)
        except zmq.ZMQError as error:
            router.close(0)
            if auth:
                auth.stop()
            self.context.term()
            raise StartError(f"cannot listen on {self.config.endpoint}: {error}") from None
        events = self.context.socket(zmq.PULL)
        events.bind(EVENTS_ENDPOINT)
        worker = Worker(self.engine, self.context, EVENTS_ENDPOINT)
        worker.start()
        self.worker = worker
        record = paths.write_record(self.config.endpoint, {
            "pid": self.pid, "endpoint": self.config.endpoint, "version": version(),
            "device": str(self.engine.device), "started": self.started})
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        log.info("esm daemon %s listening on %s (pid %d, device %s%s)", version(), self.config.endpoint,
                 self.pid, self.engine.device, ", CURVE" if auth else "")
        try:
            self._loop(router, events)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            worker.stop()
            worker.join(timeout=DRAIN_S)
            events.close(0)
            router.close()
            if auth:
                auth.stop()
            self.context.term()
            paths.remove_record(self.config.endpoint, self.pid)
            log.info("esm daemon stopped (%s); removed %s", self.stopping, record)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.request_stop(signal.Signals(signum).name)

    def request_stop(self, reason: str) -> None:
        if self.stopping is None:
            self.stopping = reason
            log.info("stopping: %s; cancelling %d job(s)", reason, len(self.jobs))
            self._stop_deadline = time.monotonic() + DRAIN_S
            for job in list(self.jobs.values()):
                self._cancel(job)

    def _loop(self, router: zmq.Socket, events: zmq.Socket) -> None:
        self.router = router
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(events, zmq.POLLIN)
        next_sweep = time.monotonic() + SWEEP_S
        while True:
            ready = dict(poller.poll(POLL_MS))
            if events in ready:
                while events.poll(0):
                    self._forward(events.recv_multipart(copy=False))
            if router in ready:
                for _ in range(100):  # bounded batch, so worker events are never starved
                    if not router.poll(0):
                        break
                    self._handle(router.recv_multipart(copy=False))
            now = time.monotonic()
            if now >= next_sweep:
                self._sweep(now)
                next_sweep = now + SWEEP_S
            if self.stopping is not None and (not self.jobs or now > self._stop_deadline):
                return

    # -- worker events
    def _forward(self, frames: list[zmq.Frame]) -> None:
        kind, job_id, owner, *message = frames
        if kind.bytes == END:
            job = self.jobs.pop(job_id.bytes.decode(), None)
            outcome = P.unpack_header(message[0], max_bytes=1 << 20).get("type")
            self.counts[{"result": "completed", "cancelled": "cancelled"}.get(outcome, "failed")] += 1
            if job is not None and not any(j.owner == job.owner for j in self.jobs.values()):
                self.last_seen.pop(job.owner, None)
        self._send_frames(owner.bytes, message)

    def _send_frames(self, owner: bytes, message: list[Any]) -> None:
        try:
            self.router.send_multipart([owner, *message], copy=False, flags=zmq.NOBLOCK)
        except zmq.Again:
            log.warning("client is not reading; dropped a message")  # never block the loop

    def _reply(self, owner: bytes, rid: Any, header: dict[str, Any]) -> None:
        self._send_frames(owner, [P.pack({"v": P.PROTOCOL_VERSION, "id": rid, **header})])

    def _error(self, owner: bytes, rid: Any, code: str, message: str) -> None:
        self._reply(owner, rid, {"type": "error", "code": code, "message": message})

    # -- requests
    def _handle(self, frames: list[zmq.Frame]) -> None:
        owner = frames[0].bytes
        self.last_seen[owner] = time.monotonic()
        rid = None
        try:
            if len(frames) < 2:
                raise Reply(P.BAD_MESSAGE, "empty message")
            # Decoded within the frame limit first, so an oversized header's refusal carries its id.
            header = P.unpack_header(frames[1], self.limits.max_frame_bytes)
            rid = P.request_id(header)
            if frames[1].buffer.nbytes > self.limits.max_header_bytes:
                raise Reply(P.TOO_LARGE, f"header is {frames[1].buffer.nbytes} bytes; the limit is "
                                         f"{self.limits.max_header_bytes}")
            P.check_version(header)
            op = P.field(header, "op", str)
            handler = self._handlers().get(op)
            if handler is None:
                raise Reply(P.UNKNOWN_OP, f"unknown operation {op!r}; known: {', '.join(P.OPS)}")
            handler(owner, rid, header, frames[1:])
        except (Reply, P.ProtocolError) as error:
            self._error(owner, rid, error.code, error.message)
        except Exception as error:  # a bug in a handler must not take the daemon down
            log.exception("request failed")
            self._error(owner, rid, P.BAD_MESSAGE, f"request could not be handled ({type(error).__name__})")

    def _handlers(self) -> dict[str, Callable[[bytes, Any, dict[str, Any], list[zmq.Frame]], None]]:
        return {"ping": self._ping, "info": self._info, "submit": self._submit, "cancel": self._cancel_request,
                "heartbeat": self._heartbeat, "shutdown": self._shutdown}

    def _ping(self, owner: bytes, rid: Any, header: dict[str, Any], frames: list[zmq.Frame]) -> None:
        self._reply(owner, rid, {"type": "pong", "version": version(), "protocol": P.PROTOCOL_VERSION,
                                 "pid": self.pid})

    def _info(self, owner: bytes, rid: Any, header: dict[str, Any], frames: list[zmq.Frame]) -> None:
        running = sum(job.running for job in self.jobs.values())
        self._reply(owner, rid, {
            "type": "info", "version": version(), "protocol": P.PROTOCOL_VERSION, "pid": self.pid,
            "endpoint": self.config.endpoint, "device": str(self.engine.device),
            "uptime_s": time.time() - self.started, "modes": sorted(MODES), "limits": self.limits.to_dict(),
            "caches": self.engine.cache_info(),
            "jobs": {"running": running, "queued": len(self.jobs) - running, **self.counts}})

    def _heartbeat(self, owner: bytes, rid: Any, header: dict[str, Any], frames: list[zmq.Frame]) -> None:
        listed = P.field(header, "jobs", list, [])
        lost = [j for j in listed if isinstance(j, str) and (j not in self.jobs or self.jobs[j].owner != owner)]
        self._reply(owner, rid, {"type": "heartbeat", "lost": lost})

    def _shutdown(self, owner: bytes, rid: Any, header: dict[str, Any], frames: list[zmq.Frame]) -> None:
        if not _peer_is_local(frames[0]):
            raise Reply(P.FORBIDDEN, "shutdown is only accepted from this machine")
        self._reply(owner, rid, {"type": "ok"})
        self.request_stop("shutdown request")

    def _cancel_request(self, owner: bytes, rid: Any, header: dict[str, Any], frames: list[zmq.Frame]) -> None:
        job = self.jobs.get(P.field(header, "job", str))
        if job is None or job.owner != owner:
            raise Reply(P.UNKNOWN_JOB, "no such job of this client (it may have ended)")
        self._cancel(job)
        self._reply(owner, rid, {"type": "ok"})

    def _cancel(self, job: JobRecord) -> None:
        """Queued jobs end here and now; a running one stops at its next loss evaluation."""
        if self.worker.unqueue(job.id) is not None:
            self.jobs.pop(job.id, None)
            self.counts["cancelled"] += 1
            self._reply(job.owner, job.request_id, {"type": "cancelled", "job": job.id,
                                                    "message": "the job was cancelled before it started"})
        else:
            job.cancel.cancel()

    def _sweep(self, now: float) -> None:
        """Cancels the jobs of clients that stopped heartbeating (e.g. a killed plug-in)."""
        timeout = self.limits.heartbeat_timeout_s
        for job in list(self.jobs.values()):
            if now - self.last_seen.get(job.owner, now) > timeout and not job.cancel.cancelled:
                log.info("client of job %s silent for %.0f s; cancelling it", job.id, timeout)
                self._cancel(job)
        for owner, seen in list(self.last_seen.items()):
            if now - seen > 10 * timeout and not any(j.owner == owner for j in self.jobs.values()):
                del self.last_seen[owner]

    def _submit(self, owner: bytes, rid: Any, header: dict[str, Any], frames: list[zmq.Frame]) -> None:
        if self.stopping is not None:
            raise Reply(P.SHUTTING_DOWN, "the daemon is shutting down")
        limits = self.limits
        mode = P.field(header, "mode", str)
        params = P.field(header, "params", dict, {})
        described = P.field(header, "images", dict, {})
        preview_every_s = P.field(header, "preview_every_s", (int, float, type(None)), None)
        if preview_every_s is not None and not preview_every_s >= 0.05:  # also refuses NaN
            raise Reply(P.BAD_MESSAGE, "preview_every_s must be at least 0.05")
        if len(described) > limits.max_images:
            raise Reply(P.TOO_LARGE, f"{len(described)} images; the limit is {limits.max_images}")
        if not all(isinstance(name, str) for name in described):
            raise Reply(P.BAD_MESSAGE, "image names must be strings")
        images = {name: P.image_from_frames(d, frames, limits.max_pixels, f"image {name!r}")
                  for name, d in described.items()}
        used = sorted(d["frame"] for d in described.values())
        if used != list(range(1, len(frames))):
            raise Reply(P.BAD_MESSAGE, f"the message has {len(frames) - 1} pixel frame(s); the images must "
                                       f"use each exactly once")
        try:
            parsed = parse_job(mode, params, frozenset(images))
        except Exception as error:  # ParamError, and TypeErrors from oddly typed values
            raise Reply(P.BAD_PARAMS, str(error) or type(error).__name__) from None
        output_pixels = self._check_output_size(parsed, images.values())
        if self.worker.queued() >= limits.max_queue:
            raise Reply(P.BUSY, f"{limits.max_queue} jobs are already waiting; try again later")
        job = JobRecord(uuid.uuid4().hex, owner, rid, mode, params,
                        {name: to_array(image).copy() for name, image in images.items()},  # frees the frames
                        preview_every_s, output_pixels)
        self.jobs[job.id] = job
        self._reply(owner, rid, {"type": "accepted", "job": job.id, "queued": self.worker.queued()})
        self.worker.enqueue(job)

    def _check_output_size(self, parsed: Any, images: Any) -> int:
        """The job's output pixels (``esm_api.jobs.output_size``), if within the limit."""
        width, height = output_size(parsed, ((image.width, image.height) for image in images))
        if width * height > self.limits.max_output_pixels:
            raise Reply(P.TOO_LARGE, f"output {width}x{height} = {width * height} pixels; the limit is "
                                     f"{self.limits.max_output_pixels}")
        return width * height


def serve(config: DaemonConfig) -> None:
    """Runs the daemon in this process until shutdown or SIGTERM/SIGINT."""
    tune_allocator()  # before ZeroMQ's and the worker's threads (esm_cli.main did so already)
    Server(config).serve()
