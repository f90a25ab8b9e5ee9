"""Client library for the ESM daemon: pyzmq + msgpack + the standard library only (vendored
into the GIMP and Krita plug-ins).

Blocking use::

    with Client() as client:
        [image] = client.run("texture", {"width": 256, "height": 256},
                             {"exemplar": RawImage(w, h, 3, pixels)}, on_progress=print)

Event-loop use (Qt timers, GIMP progress loops): ``job = client.submit(...)``, then call
``job.poll()`` now and then; it never blocks (with the default ``timeout_ms=0``), returns the
new events and sends the heartbeats that keep the job alive. A client that stops polling or
dies loses its jobs after the daemon's heartbeat timeout (a few seconds).

A Client owns one ZeroMQ DEALER socket and is not thread-safe: use one per thread. It signs
every request with the daemon's secret, read from this user's runtime folder
(``esm_client.runtime``), so it is served by the daemons this user started and no other's.
"""
from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, Union

import zmq

from esm_contract.errors import (  # noqa: F401  (raised by this module; callers import them from here too)
    DaemonError, DaemonUnavailable, JobCancelled, JobFailed)
from esm_contract.images import RawImage

from . import protocol as P
from .runtime import read_secret

KEYS_DIR_ENV = "ESM_KEYS_DIR"
HEARTBEAT_S = 1.0


@dataclass(frozen=True)
class Progress:
    """One loss evaluation of a running job. ``phase`` is 0-based of ``phases``; ``step``
    counts 1..``steps`` within the phase. ``preview`` is a small image, when one was due."""

    job_id: str
    phase: int
    phases: int
    step: int
    steps: int
    loss: float | None
    eta_s: float | None
    preview: RawImage | None = None

    @property
    def fraction(self) -> float:
        return (self.phase + self.step / max(self.steps, 1)) / max(self.phases, 1)


@dataclass(frozen=True)
class Finished:
    """The last event of a job: ``images`` on success, else ``error``."""

    job_id: str
    images: list[RawImage] | None
    error: DaemonError | None


Event = Union[Progress, Finished]


@dataclass(frozen=True)
class CurveKeys:
    """CURVE keys for a daemon bound to a non-loopback interface (see ``esm daemon keys``)."""

    server_public: bytes
    public: bytes
    secret: bytes

    @classmethod
    def from_dir(cls, folder: str | os.PathLike[str]) -> CurveKeys:
        """Reads ``server.key`` (the daemon's public key) and ``client.key_secret`` (this
        client's key pair) as written by ``esm daemon keys``."""
        import zmq.auth

        folder = Path(folder)
        try:
            server_public, _ = zmq.auth.load_certificate(folder / "server.key")
            public, secret = zmq.auth.load_certificate(folder / "client.key_secret")
        except (OSError, ValueError) as error:
            raise DaemonUnavailable(f"cannot read CURVE keys in {folder}: {error}") from None
        if secret is None:
            raise DaemonUnavailable(f"{folder / 'client.key_secret'} holds no secret key")
        return cls(server_public, public, secret)


class Job:
    """A submitted job. Events arrive through ``poll``/``events``/``wait``."""

    def __init__(self, client: Client, request_id: int) -> None:
        self._client = client
        self.request_id = request_id
        self.id: str | None = None  # set when the daemon accepts the job
        self.done = False
        self.result: list[RawImage] | None = None
        self.error: DaemonError | None = None
        self._events: list[Event] = []

    def poll(self, timeout_ms: int = 0) -> list[Event]:
        """New events (possibly none); waits at most ``timeout_ms`` for the first one."""
        if not self._events and not self.done:
            self._client._pump(timeout_ms, until=lambda: bool(self._events) or self.done)
        events, self._events = self._events, []
        return events

    def events(self) -> Iterator[Event]:
        """Yields every event until (and including) the Finished one."""
        while True:
            for event in self.poll(timeout_ms=int(HEARTBEAT_S * 1000)):
                yield event
                if isinstance(event, Finished):
                    return

    def wait(self, on_progress: Callable[[Progress], None] | None = None) -> list[RawImage]:
        """Blocks until the job ends; returns its images or raises its error."""
        for event in self.events():
            if isinstance(event, Progress) and on_progress is not None:
                on_progress(event)
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    def cancel(self) -> None:
        """Asks the daemon to cancel; the job then ends with JobCancelled (or its result, if
        it finished first). Does not block."""
        if not self.done and self.id is not None:
            self._client._send({"op": "cancel", "job": self.id})

    # -- called by Client when a message for this job arrives
    def _finish(self, images: list[RawImage] | None, error: DaemonError | None) -> None:
        if self.done:
            return
        self.done, self.result, self.error = True, images, error
        self._events.append(Finished(self.id or "", images, error))

    def _on_message(self, header: dict[str, Any], frames: Sequence[Any]) -> None:
        kind = header.get("type")
        if kind == "accepted":
            self.id = str(header.get("job"))
        elif kind == "progress":
            preview = header.get("preview")
            self._events.append(Progress(
                self.id or "", int(header.get("phase", 0)), int(header.get("phases", 1)),
                int(header.get("step", 0)), int(header.get("steps", 1)), header.get("loss"),
                header.get("eta_s"),
                _image(preview, frames, "preview") if isinstance(preview, dict) else None))
        elif kind == "result":
            images = [_image(d, frames, "result") for d in header.get("images", [])]
            self._finish(images, None)
        elif kind == "cancelled":
            self._finish(None, JobCancelled(str(header.get("message") or "the job was cancelled")))
        elif kind == "error":
            error_class = JobFailed if self.id is not None else DaemonError
            self._finish(None, error_class(str(header.get("code")), str(header.get("message"))))


def _image(descriptor: Any, frames: Sequence[Any], what: str) -> RawImage:
    image = P.image_from_frames(descriptor, frames, what=what)
    return RawImage(image.width, image.height, image.channels, bytes(memoryview(image.data)))


class Client:
    """A connection to one daemon. ``timeout_s`` bounds every wait for the daemon: a request
    without reply, or a running job whose daemon stops answering heartbeats, raises
    DaemonUnavailable after that long. ``secret`` is the daemon's secret; by default it is read
    from the runtime folder (``esm_client.runtime.read_secret``) at every request, so a restarted
    daemon's new secret is used."""

    def __init__(self, endpoint: str | None = None, timeout_s: float = 10.0, *,
                 curve: CurveKeys | None = None, context: zmq.Context | None = None,
                 secret: bytes | None = None) -> None:
        self.endpoint = P.default_endpoint(endpoint)
        self.timeout_s = timeout_s
        self._secret = secret
        if curve is None and not P.is_loopback(self.endpoint) and os.environ.get(KEYS_DIR_ENV):
            curve = CurveKeys.from_dir(os.environ[KEYS_DIR_ENV])
        self._ids = itertools.count(1)
        self._jobs: dict[int, Job] = {}  # by submit request id, while not done
        self._replies: dict[int, tuple[dict[str, Any], list[Any]]] = {}
        self._waiting: set[int] = set()
        self._last_heartbeat = 0.0
        self._unanswered_since: float | None = None  # first heartbeat not yet answered
        self._socket = (context or zmq.Context.instance()).socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        # Not ZMQ_IMMEDIATE: with it, libzmq discards received but unread messages when the daemon
        # disconnects, e.g. the reply to shutdown or a job's "cancelled" sent as the daemon exits.
        self._socket.setsockopt(zmq.SNDTIMEO, max(1, int(timeout_s * 1000)))
        if curve is not None:
            self._socket.curve_serverkey = curve.server_public
            self._socket.curve_publickey = curve.public
            self._socket.curve_secretkey = curve.secret
        try:
            self._socket.connect(self.endpoint)
        except zmq.ZMQError as error:
            self._socket.close()
            raise DaemonUnavailable(f"bad endpoint {self.endpoint!r}: {error}") from None

    def close(self) -> None:
        self._socket.close(linger=0)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- operations
    def ping(self) -> dict[str, Any]:
        """The daemon's pong: version, protocol, pid."""
        return self.request("ping")

    def info(self) -> dict[str, Any]:
        """Version, device, limits, modes, queue and cache statistics."""
        return self.request("info")

    def shutdown(self) -> None:
        """Asks the daemon to exit (it cancels running jobs first). Local clients only."""
        self.request("shutdown")

    def submit(self, mode: str, params: Mapping[str, Any] | None, images: Mapping[str, RawImage],
               preview_every_s: float | None = None) -> Job:
        """Queues a job; returns once the daemon accepted it. A job the daemon refuses (bad
        parameters, over the limits, queue full) raises DaemonError here."""
        named = list(images.items())
        header: dict[str, Any] = {
            "op": "submit", "mode": mode, "params": dict(params or {}),
            "images": {name: image.descriptor(i + 1) for i, (name, image) in enumerate(named)}}
        if preview_every_s is not None:
            header["preview_every_s"] = float(preview_every_s)
        job = Job(self, 0)
        self._send(header, [image.data for _, image in named], job)
        self._pump(self.timeout_s * 1000, until=lambda: job.id is not None or job.done, fail_slow=True)
        if job.id is None and job.error is not None:  # refused; an accepted job reports through its events
            raise job.error
        return job

    def run(self, mode: str, params: Mapping[str, Any] | None, images: Mapping[str, RawImage],
            on_progress: Callable[[Progress], None] | None = None,
            preview_every_s: float | None = None) -> list[RawImage]:
        """Submits a job and blocks until it ends; returns its images or raises
        JobFailed/JobCancelled/DaemonUnavailable. KeyboardInterrupt cancels the job."""
        job = self.submit(mode, params, images, preview_every_s)
        try:
            return job.wait(on_progress)
        except KeyboardInterrupt:
            job.cancel()
            self._pump(1000, until=lambda: job.done)  # let the cancel reach the daemon
            raise

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Sends one request and returns its reply header (raises DaemonError on an error reply)."""
        rid = self._send({"op": op, **fields})
        self._waiting.add(rid)
        try:
            self._pump(self.timeout_s * 1000, until=lambda: rid in self._replies, fail_slow=True)
            header, _ = self._replies.pop(rid)
        finally:
            self._waiting.discard(rid)
        if header.get("type") == "error":
            raise DaemonError(str(header.get("code")), str(header.get("message")))
        return header

    # -- plumbing
    def _send(self, header: dict[str, Any], frames: Sequence[Any] = (), job: Job | None = None) -> int:
        rid = next(self._ids)
        header = {"v": P.PROTOCOL_VERSION, "id": rid, **header}
        if job is not None:
            job.request_id = rid
            self._jobs[rid] = job
        packed = P.pack(header)
        secret = self._secret or read_secret(self.endpoint)
        # Without a secret the frame stays empty: a CURVE daemon ignores it, a local one refuses.
        signature = P.sign(secret, packed) if secret else b""
        try:
            self._socket.send_multipart([signature, packed, *frames], copy=False)
        except zmq.Again:
            self._jobs.pop(rid, None)
            raise DaemonUnavailable(f"no ESM daemon answers at {self.endpoint} "
                                    f"(start one with: esm daemon start)") from None
        return rid

    def _heartbeat(self) -> None:
        """While jobs are active: tell the daemon we are alive, and notice when it is not."""
        active = [job for job in self._jobs.values() if job.id is not None and not job.done]
        if not active:
            return
        now = time.monotonic()
        if self._unanswered_since is not None and now - self._unanswered_since > self.timeout_s:
            error = DaemonUnavailable(f"the ESM daemon at {self.endpoint} stopped answering")
            for job in active:
                job._finish(None, error)
                self._jobs.pop(job.request_id, None)
            return
        if now - self._last_heartbeat >= HEARTBEAT_S:
            self._last_heartbeat = now
            if self._unanswered_since is None:
                self._unanswered_since = now
            try:
                self._send({"op": "heartbeat", "jobs": [job.id for job in active]})
            except DaemonUnavailable:
                pass  # reported above once timeout_s has passed without an answer

    def _pump(self, timeout_ms: float, until: Callable[[], bool], fail_slow: bool = False) -> None:
        """Receives and routes messages until ``until()`` holds or ``timeout_ms`` passes;
        heartbeats on the way. With ``fail_slow`` a timeout raises DaemonUnavailable."""
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            self._heartbeat()
            if until():
                return
            remaining = deadline - time.monotonic()
            if self._socket.poll(max(0.0, min(remaining, HEARTBEAT_S)) * 1000, zmq.POLLIN):
                while self._socket.poll(0, zmq.POLLIN):
                    self._route(self._socket.recv_multipart(copy=False))
                continue
            if remaining <= 0:
                if fail_slow:
                    raise DaemonUnavailable(f"no answer from an ESM daemon at {self.endpoint} within "
                                            f"{self.timeout_s:g} s (start one with: esm daemon start)")
                return

    def _route(self, frames: list[Any]) -> None:
        self._unanswered_since = None
        try:
            header = P.unpack_header(frames[0], max_bytes=1 << 24)
        except P.ProtocolError:
            return  # not from an ESM daemon; nothing sensible to do with it
        rid = header.get("id")
        if header.get("type") == "heartbeat":
            lost = set(header.get("lost") or ())
            for job in list(self._jobs.values()):
                if job.id in lost:
                    job._finish(None, DaemonUnavailable("the ESM daemon no longer knows this job "
                                                        "(it was restarted)"))
                    self._jobs.pop(job.request_id, None)
        if rid in self._jobs:
            job = self._jobs[rid]
            job._on_message(header, frames)
            if job.done:
                del self._jobs[rid]
        elif rid in self._waiting:
            self._replies[rid] = (header, frames)
