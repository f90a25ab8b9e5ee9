"""The socket loop: one ROUTER socket, requests decoded and checked against the limits here,
jobs handed to the Worker, worker events forwarded to their clients. The loop never runs
engine code, so pings and cancels are answered while a job runs; it also sends every job's
last event itself when the job is cancelled, so a cancel or a shutdown never waits for the
engine to notice. On loopback every request must be signed with the secret the daemon writes
into its user's runtime folder at start (docs/protocol.md, "Authentication")."""
from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import resource
import secrets
import signal
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import zmq

from esm_client import protocol as P
from esm_contract import __version__
from esm_contract.errors import EsmError
from esm_contract.jobs import MODES, ModeParams, output_size, parse_job

from . import keys as K
from . import paths
from .config import DaemonConfig, StartError, check_security
from esm_core.images import to_array
from esm_core.memory import estimate_peak_bytes, physical_memory_bytes, release_freed_memory, tune_allocator
from .worker import Event, JobRecord, Worker

log = logging.getLogger("esm.daemon")

POLL_MS = 200
SWEEP_S = 0.5  # how often silent clients are looked for
BATCH = 100  # requests handled before worker events get their turn
GRACE_S = 2.0  # on shutdown, how long the running job may take to stop before the process exits without it
TRIM_AFTER_BYTES = 16 << 20  # after a message this large, hand its memory back to the system
NOT_SIGNED = ("the request is not signed with this daemon's secret: it serves only the user who started it, whose "
              "clients read the secret from that user's runtime folder (docs/protocol.md, Authentication)")


class Incoming:
    """One request as read from the ROUTER: its signature and header frames, and the pixel
    frames, read one at a time and only as far as the header describes them (ZeroMQ hands over
    a message whole, but the daemon holds no frame the header did not declare at the declared
    size)."""

    def __init__(self, router: zmq.Socket, owner: zmq.Frame) -> None:
        self._router = router
        self._more = owner.more
        self.nbytes = 0
        self.signature = self._next() if self._more else None
        self.header = self._next() if self._more else None

    def pixel_frames(self, sizes: list[int]) -> list[zmq.Frame]:
        """Exactly ``len(sizes)`` frames of these sizes, else a bad_message Reply."""
        frames = []
        for number, size in enumerate(sizes, 1):
            if not self._more:
                raise P.ProtocolError(P.BAD_MESSAGE, f"the message has {number - 1} pixel frame(s); its images use {len(sizes)}")
            frame = self._next()
            if frame.buffer.nbytes != size:
                raise P.ProtocolError(P.BAD_MESSAGE, f"pixel frame {number} has {frame.buffer.nbytes} bytes; its image "
                                           f"needs {size}")
            frames.append(frame)
        if self._more:
            raise P.ProtocolError(P.BAD_MESSAGE, f"the message has more pixel frames than the {len(sizes)} its header "
                                       f"describes")
        return frames

    def discard(self) -> None:
        """Reads and drops the frames no handler asked for."""
        while self._more:
            self._next()

    def _next(self) -> zmq.Frame:
        frame = self._router.recv(copy=False)
        self._more = frame.more
        self.nbytes += frame.buffer.nbytes
        return frame


def _peer_is_local(endpoint: str, frame: zmq.Frame) -> bool:
    if not endpoint.startswith("tcp://"):
        return True  # ipc:// (a socket file only its owner may open) and inproc://
    try:
        address = frame.get("Peer-Address")
    except zmq.ZMQError:
        return False
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def _ipc_path(endpoint: str) -> Path | None:
    """The socket file of an ipc:// endpoint (None for tcp and Linux's abstract @names)."""
    if not endpoint.startswith("ipc://") or endpoint.startswith("ipc://@"):
        return None
    return Path(endpoint[len("ipc://"):])


def _raise_descriptor_limit() -> None:
    """Soft descriptor limit up to the hard one: at the limit libzmq's accept fails and its
    listener spins a core, so a flood of connections must not reach it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # macOS refuses an unlimited soft limit: keep what there is
            pass


def _device_memory(device: Any) -> int:
    if device.type == "cuda":
        import torch

        return torch.cuda.get_device_properties(device).total_memory
    return physical_memory_bytes()


class Server:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.server_keys = check_security(config)
        # Off loopback CURVE authenticates every connection; on loopback the secret does.
        self.secret = None if self.server_keys else secrets.token_hex(32).encode("ascii")
        from esm_core import Engine

        self.engine = Engine(config.device, cache_bytes=config.cache_bytes)
        self.limits = config.limits if config.limits.memory_bytes else dataclasses.replace(
            config.limits, memory_bytes=_device_memory(self.engine.device))
        self.context = zmq.Context()
        self.jobs: dict[str, JobRecord] = {}  # queued and running, until the worker is done with them
        self.last_seen: dict[bytes, float] = {}  # the active clients
        self.drained_at = time.monotonic()  # when the socket last had nothing left to read
        self.counts = {"completed": 0, "failed": 0, "cancelled": 0}
        self.stopping: str | None = None  # why the daemon is shutting down
        self.signalled: str | None = None  # a stop signal, acted on by the loop
        self.pid = os.getpid()
        self.started = time.time()

    # -- lifetime
    def serve(self) -> bool:
        """Serves until a stop; returns False when the running job was still inside the engine
        after the grace period (the caller should then end the process without waiting)."""
        router = self.context.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 1000)  # let the last replies out on shutdown
        router.setsockopt(zmq.MAXMSGSIZE, self.limits.max_frame_bytes + 1024)
        # ROUTER_HANDOVER stays off: a second connection with a routing id in use is refused, so
        # no one takes over another client's job events.
        auth = K.secure(self.context, router, self.server_keys) if self.server_keys else None
        _raise_descriptor_limit()
        socket_file = _ipc_path(self.config.endpoint)
        umask = os.umask(0o077) if socket_file else None  # the socket file is its owner's only
        try:
            router.bind(self.config.endpoint)
            if self.secret:  # only now: had the bind failed, the file might be a running daemon's
                paths.write_secret(self.config.endpoint, self.secret)
        except (zmq.ZMQError, OSError) as error:
            router.close(0)
            if auth:
                auth.stop()
            self.context.term()
            if isinstance(error, zmq.ZMQError):
                raise StartError(f"cannot listen on {self.config.endpoint}: {error}") from None
            raise StartError(f"cannot write the daemon's secret: {error}") from None
        finally:
            if umask is not None:
                os.umask(umask)
        worker = Worker(self.engine)
        worker.start()
        self.worker = worker
        record = paths.write_record(self.config.endpoint, {
            "pid": self.pid, "endpoint": self.config.endpoint, "version": __version__,
            "device": str(self.engine.device), "started": self.started})
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        log.info("esm daemon %s listening on %s (pid %d, device %s%s)", __version__, self.config.endpoint,
                 self.pid, self.engine.device, ", CURVE" if auth else "")
        try:
            self._loop(router)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            worker.stop()
            router.close()
            if auth:
                auth.stop()
            self.context.term()  # the worker owns no socket: this waits for the last replies only
            if socket_file:
                socket_file.unlink(missing_ok=True)
            if self.secret:
                paths.remove_secret(self.config.endpoint, self.secret)
            paths.remove_record(self.config.endpoint, self.pid)
        worker.join(timeout=0.5)
        log.info("esm daemon stopped (%s); removed %s%s", self.stopping, record,
                 "; the running job had not stopped" if worker.is_alive() else "")
        return not worker.is_alive()

    def _on_signal(self, signum: int, frame: Any) -> None:
        # Only noted: the handler may run between two frames of a message the loop is sending.
        self.signalled = signal.Signals(signum).name

    def request_stop(self, reason: str) -> None:
        if self.stopping is None:
            self.stopping = reason
            log.info("stopping: %s; cancelling %d job(s)", reason, len(self.jobs))
            self._stop_deadline = time.monotonic() + GRACE_S
            for job in list(self.jobs.values()):
                self._cancel(job, "the daemon is shutting down")

    def _loop(self, router: zmq.Socket) -> None:
        self.router = router
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(self.worker.wake_fd, zmq.POLLIN)
        next_sweep = time.monotonic() + SWEEP_S
        while True:
            ready = dict(poller.poll(POLL_MS))
            if self.signalled is not None:
                self.request_stop(self.signalled)
            if self.worker.wake_fd in ready:
                for event in self.worker.take_events():
                    self._forward(event)
            if router not in ready:
                self.drained_at = time.monotonic()
            else:
                for _ in range(BATCH):  # bounded, so worker events are never starved
                    if not router.poll(0):
                        self.drained_at = time.monotonic()
                        break
                    self._receive(router)
            now = time.monotonic()
            if now >= next_sweep:
                self._sweep()
                next_sweep = now + SWEEP_S
            if self.stopping is not None and (not self.jobs or now > self._stop_deadline):
                return

    # -- worker events
    def _forward(self, event: Event) -> None:
        job = event.job
        if event.last:
            self.jobs.pop(job.id, None)
        if job.ended:
            return  # its client already has its last event (the job was cancelled)
        if event.last:
            job.ended = True
            outcome = event.header["type"]
            self.counts[{"result": "completed", "cancelled": "cancelled"}.get(outcome, "failed")] += 1
        self._send_frames(job.owner, [P.pack(event.header), *event.frames])

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
    def _receive(self, router: zmq.Socket) -> None:
        owner = router.recv(copy=False)
        incoming = Incoming(router, owner)
        error = self._handle(owner.bytes, incoming)
        incoming.discard()
        if incoming.nbytes >= TRIM_AFTER_BYTES:
            release_freed_memory()  # else the heap keeps the frames' pages (glibc trims only its top)
        if error is not None:  # after the frames are gone: a refused message leaves no memory behind
            self._error(owner.bytes, *error)

    def _handle(self, owner: bytes, incoming: Incoming) -> tuple[Any, str, str] | None:
        """Runs the request's handler; returns the error reply (id, code, message) it ended in."""
        rid = None
        try:
            frame = incoming.header
            if frame is None:  # e.g. a protocol 1 client's request: a header without a signature
                if self.secret:
                    raise P.ProtocolError(P.UNAUTHORISED, NOT_SIGNED)
                raise P.ProtocolError(P.BAD_MESSAGE, "a request is a signature frame, then a header frame")
            size = frame.buffer.nbytes
            if size > self.limits.max_header_bytes:  # before decoding or hashing: the work stays bounded
                rid = P.leading_request_id(frame.buffer, self.limits.max_header_bytes)
                raise P.ProtocolError(P.TOO_LARGE, f"header is {size} bytes; the limit is {self.limits.max_header_bytes}")
            if self.secret and not P.signature_matches(self.secret, incoming.signature.buffer, frame.buffer):
                rid = P.leading_request_id(frame.buffer, self.limits.max_header_bytes)  # the client's, to match
                raise P.ProtocolError(P.UNAUTHORISED, NOT_SIGNED)
            header = P.unpack_header(frame.buffer, self.limits.max_header_bytes)
            rid = P.request_id(header)
            if owner not in self.last_seen and len(self.last_seen) >= self.limits.max_clients:
                raise P.ProtocolError(P.TOO_MANY_CLIENTS, f"{len(self.last_seen)} other clients are active; the limit is "
                                                f"{self.limits.max_clients}: try again later")
            self.last_seen[owner] = time.monotonic()
            P.check_version(header)
            op = P.field(header, "op", str)
            handler = self._handlers().get(op)
            if handler is None:
                raise P.ProtocolError(P.UNKNOWN_OP, f"unknown operation {op!r}; known: {', '.join(P.OPS)}")
            if op != "submit":
                incoming.pixel_frames([])  # only a submit carries pixels
            handler(owner, rid, header, incoming)
        except EsmError as error:  # a refusal (ProtocolError) or parameters that do not validate (ParamError)
            return rid, error.code, error.message
        except Exception as error:  # a bug in a handler must not take the daemon down
            log.exception("request failed")
            return rid, P.BAD_MESSAGE, f"request could not be handled ({type(error).__name__})"
        return None

    def _handlers(self) -> dict[str, Callable[[bytes, Any, dict[str, Any], Incoming], None]]:
        return {"ping": self._ping, "info": self._info, "submit": self._submit, "cancel": self._cancel_request,
                "heartbeat": self._heartbeat, "shutdown": self._shutdown}

    def _ping(self, owner: bytes, rid: Any, header: dict[str, Any], incoming: Incoming) -> None:
        self._reply(owner, rid, {"type": "pong", "version": __version__, "protocol": P.PROTOCOL_VERSION,
                                 "pid": self.pid})

    def _info(self, owner: bytes, rid: Any, header: dict[str, Any], incoming: Incoming) -> None:
        running = sum(job.running and not job.ended for job in self.jobs.values())
        queued = sum(not job.running for job in self.jobs.values())
        self._reply(owner, rid, {
            "type": "info", "version": __version__, "protocol": P.PROTOCOL_VERSION, "pid": self.pid,
            "endpoint": self.config.endpoint, "device": str(self.engine.device),
            "uptime_s": time.time() - self.started, "modes": sorted(MODES), "limits": self.limits.to_dict(),
            "caches": self.engine.cache_info(), "jobs": {"running": running, "queued": queued, **self.counts}})

    def _heartbeat(self, owner: bytes, rid: Any, header: dict[str, Any], incoming: Incoming) -> None:
        listed = P.field(header, "jobs", list, [])
        lost = [j for j in listed if isinstance(j, str) and (j not in self.jobs or self.jobs[j].owner != owner)]
        self._reply(owner, rid, {"type": "heartbeat", "lost": lost})

    def _shutdown(self, owner: bytes, rid: Any, header: dict[str, Any], incoming: Incoming) -> None:
        if not _peer_is_local(self.config.endpoint, incoming.header):
            raise P.ProtocolError(P.FORBIDDEN, "shutdown is only accepted from this machine")
        self._reply(owner, rid, {"type": "ok"})
        self.request_stop("shutdown request")

    def _cancel_request(self, owner: bytes, rid: Any, header: dict[str, Any], incoming: Incoming) -> None:
        job = self.jobs.get(P.field(header, "job", str))
        if job is None or job.owner != owner or job.ended:
            raise P.ProtocolError(P.UNKNOWN_JOB, "no such job of this client (it may have ended)")
        self._reply(owner, rid, {"type": "ok"})
        self._cancel(job, "the job was cancelled")

    def _cancel(self, job: JobRecord, message: str) -> None:
        """Ends the job for its client now. A queued job is dropped; a running one stops at the
        engine's next look at its token, and what the worker then reports is not forwarded."""
        if job.ended:
            return
        job.ended = True
        self.counts["cancelled"] += 1
        if self.worker.unqueue(job):
            self.jobs.pop(job.id, None)
            message += " before it started"
        else:
            job.cancel.cancel()
        self._reply(job.owner, job.request_id, {"type": "cancelled", "job": job.id, "message": message})

    def _sweep(self) -> None:
        """Cancels the jobs of clients that stopped heartbeating (e.g. a killed plug-in) and
        forgets clients silent that long. Silence counts up to when the socket was last read
        empty: a client's heartbeats still waiting to be read are no silence."""
        timeout = self.limits.heartbeat_timeout_s
        owners = set()
        for job in list(self.jobs.values()):
            owners.add(job.owner)
            if self.drained_at - self.last_seen.get(job.owner, self.drained_at) > timeout and not job.ended:
                log.info("client of job %s silent for %.0f s; cancelling it", job.id, timeout)
                self._cancel(job, "the client stopped sending heartbeats")
        for owner, seen in list(self.last_seen.items()):
            if self.drained_at - seen > timeout and owner not in owners:
                del self.last_seen[owner]

    def _submit(self, owner: bytes, rid: Any, header: dict[str, Any], incoming: Incoming) -> None:
        if self.stopping is not None:
            raise P.ProtocolError(P.SHUTTING_DOWN, "the daemon is shutting down")
        if rid is None:  # its events could not be told apart
            raise P.ProtocolError(P.BAD_MESSAGE, "a submit needs an id: an int or a string of up to 128 characters")
        limits = self.limits
        mode = P.field(header, "mode", str)
        params = P.field(header, "params", dict, {})
        described = P.field(header, "images", dict, {})
        preview_every_s = P.field(header, "preview_every_s", (int, float, type(None)), None)
        if preview_every_s is not None and not preview_every_s >= 0.05:  # also refuses NaN
            raise P.ProtocolError(P.BAD_MESSAGE, "preview_every_s must be at least 0.05")
        if len(described) > limits.max_images:
            raise P.ProtocolError(P.TOO_LARGE, f"{len(described)} images; the limit is {limits.max_images}")
        if not all(isinstance(name, str) for name in described):
            raise P.ProtocolError(P.BAD_MESSAGE, "image names must be strings")
        declared = [P.check_descriptor(d, limits.max_pixels, f"image {name!r}") for name, d in described.items()]
        sizes = {frame: width * height * channels for width, height, channels, frame in declared}
        if sorted(sizes) != list(range(1, len(declared) + 1)):
            raise P.ProtocolError(P.BAD_MESSAGE, "the images must use frames 1.. in turn, each exactly once")
        frames = [incoming.header, *incoming.pixel_frames([sizes[n] for n in sorted(sizes)])]
        images = {name: P.image_from_frames(d, frames, limits.max_pixels, f"image {name!r}")
                  for name, d in described.items()}
        try:
            parsed = parse_job(mode, params, images)  # the one parse: the worker runs this Job
        except EsmError:
            raise
        except Exception as error:  # TypeErrors from oddly typed values
            raise P.ProtocolError(P.BAD_PARAMS, str(error) or type(error).__name__) from None
        output_pixels = self._check_output_size(parsed.params, images.values())
        self._check_memory(parsed.params, output_pixels, images.values())
        if self.worker.queued() >= limits.max_queue:
            raise P.ProtocolError(P.BUSY, f"{limits.max_queue} jobs are already waiting; try again later")
        job = JobRecord(uuid.uuid4().hex, owner, rid,
                        parsed.with_images({name: to_array(image).copy() for name, image in images.items()}),  # frees the frames
                        preview_every_s, output_pixels)
        self.jobs[job.id] = job
        self._reply(owner, rid, {"type": "accepted", "job": job.id, "queued": self.worker.queued()})
        self.worker.enqueue(job)

    def _check_output_size(self, params: ModeParams, images: Any) -> int:
        """The job's output pixels (``esm_contract.jobs.output_size``), if within the limit."""
        width, height = output_size(params, ((image.width, image.height) for image in images))
        if width * height > self.limits.max_output_pixels:
            raise P.ProtocolError(P.TOO_LARGE, f"output {width}x{height} = {width * height} pixels; the limit is "
                                     f"{self.limits.max_output_pixels}")
        return width * height

    def _check_memory(self, params: ModeParams, output_pixels: int, images: Any) -> None:
        """Refuses a job whose estimated peak memory is more than the device has."""
        needed = estimate_peak_bytes(output_pixels * getattr(params, "count", 1),
                                     sum(image.width * image.height for image in images))
        if self.limits.memory_bytes and needed > self.limits.memory_bytes:
            raise P.ProtocolError(P.TOO_LARGE, f"the job would need about {needed / 2**30:.1f} GiB at its peak (estimate); "
                                     f"the {self.engine.device.type} has {self.limits.memory_bytes / 2**30:.1f} GiB: "
                                     f"try a smaller size")


def serve(config: DaemonConfig) -> None:
    """Runs the daemon in this process until shutdown or SIGTERM/SIGINT."""
    tune_allocator()  # before ZeroMQ's and the worker's threads (esm_cli.main did so already)
    if not Server(config).serve():
        # The running job is inside an engine call that cannot be interrupted: end the process
        # now rather than after it (its client already has its "cancelled").
        logging.shutdown()
        os._exit(0)
