"""The wire protocol between ESM clients and the daemon (docs/protocol.md is its spec).

Standard library + msgpack only (pyzmq is not needed here): this module is vendored into
GIMP's and Krita's Pythons. A message is a ZeroMQ multipart message whose first frame is a
msgpack map (the header) and whose further frames are raw interleaved uint8 pixels that the
header describes, so pixels never pass through msgpack (zero-copy on both sides). A request
has one more frame before the header: its signature (``sign``).
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import msgpack

from esm_contract.errors import (  # noqa: F401  (the codes are part of the protocol: P.BAD_MESSAGE, ...)
    BAD_MESSAGE, BAD_PARAMS, BAD_VERSION, BUSY, CANCELLED, FORBIDDEN, JOB_FAILED, OUT_OF_MEMORY, SHUTTING_DOWN,
    TOO_LARGE, TOO_MANY_CLIENTS, UNAUTHORISED, UNAVAILABLE, UNKNOWN_JOB, UNKNOWN_OP, ProtocolError)
from esm_contract.images import CHANNELS, RawImage

from .runtime import DEFAULT_ENDPOINT, ENDPOINT_ENV, default_endpoint  # noqa: F401  (P.default_endpoint, ...)

PROTOCOL_VERSION = 2  # 2: requests start with a signature frame

# Request operations and reply/event types (the "op" and "type" fields).
OPS = ("ping", "info", "submit", "cancel", "heartbeat", "shutdown")
REPLY_TYPES = ("pong", "info", "ok", "heartbeat", "accepted", "progress", "result", "cancelled", "error")


def endpoint_host(endpoint: str) -> str | None:
    """Host part of a ``tcp://HOST:PORT`` endpoint; None for other transports."""
    if not endpoint.startswith("tcp://"):
        return None
    host = endpoint[len("tcp://"):].rpartition(":")[0]
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def is_loopback(endpoint: str) -> bool:
    """True when only this machine can reach ``endpoint``: tcp on a loopback address, or
    ipc:// (a Unix socket file, protected by file permissions) or inproc://."""
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    host = endpoint_host(endpoint)
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # "*", an interface name or a host name: could be reachable from outside
        return False


@dataclass(frozen=True)
class Limits:
    """What the daemon accepts; sent in ``info``. Everything is checked before any work."""

    max_header_bytes: int = 64 * 1024
    max_pixels: int = 4096 * 4096  # per input image
    max_output_pixels: int = 4096 * 4096  # per output image (params width x height)
    max_images: int = 8  # input images per job
    max_queue: int = 64  # jobs waiting behind the running one, all connections together
    max_clients: int = 64  # connections heard from within the heartbeat timeout (or with jobs)
    heartbeat_timeout_s: float = 5.0  # a client silent this long loses its jobs
    memory_bytes: int = 0  # a job's estimated peak memory may not exceed this (0: not checked)

    @property
    def max_frame_bytes(self) -> int:
        """ZMQ_MAXMSGSIZE: a larger frame makes ZeroMQ drop the connection (no reply possible).
        Headers up to 4x their limit still get through, to be refused with a reply."""
        return max(self.max_pixels * 4, self.max_header_bytes * 4)

    def to_dict(self) -> dict[str, Any]:
        return {"max_header_bytes": self.max_header_bytes, "max_pixels": self.max_pixels,
                "max_output_pixels": self.max_output_pixels, "max_images": self.max_images,
                "max_queue": self.max_queue, "max_clients": self.max_clients,
                "heartbeat_timeout_s": self.heartbeat_timeout_s, "memory_bytes": self.memory_bytes,
                "max_frame_bytes": self.max_frame_bytes}


def sign(secret: bytes, header: Any) -> bytes:
    """A request's signature frame: HMAC-SHA256 of the header frame's bytes keyed with the
    daemon's secret, as 64 lowercase hex digits (ASCII)."""
    return hmac.new(secret, memoryview(header), hashlib.sha256).hexdigest().encode("ascii")


def signature_matches(secret: bytes, signature: Any, header: Any) -> bool:
    view = memoryview(signature)
    if view.nbytes != 64:  # no copy, no hashing for anything that cannot be a signature
        return False
    return hmac.compare_digest(view.tobytes(), sign(secret, header))


def pack(header: Mapping[str, Any]) -> bytes:
    return msgpack.packb(dict(header), use_bin_type=True)


def unpack_header(data: Any, max_bytes: int = Limits.max_header_bytes) -> dict[str, Any]:
    """Decodes a header frame with msgpack's size limits; anything odd is a ProtocolError."""
    view = memoryview(data)  # msgpack wants a plain buffer, not a zmq.Frame
    if view.nbytes > max_bytes:
        raise ProtocolError(TOO_LARGE, f"header is {view.nbytes} bytes; the limit is {max_bytes}")
    try:
        header = msgpack.unpackb(
            view, raw=False, strict_map_key=True, max_str_len=max_bytes,
            max_bin_len=max_bytes, max_array_len=4096, max_map_len=1024, max_ext_len=0)
    except Exception as error:  # msgpack raises several unrelated types on garbage
        raise ProtocolError(BAD_MESSAGE, f"header is not valid msgpack ({type(error).__name__})") from None
    if not isinstance(header, dict):
        raise ProtocolError(BAD_MESSAGE, "header must be a msgpack map")
    return header


def request_id(header: Mapping[str, Any]) -> Any:
    """The request id to echo back: an int or a short string, else None."""
    value = header.get("id")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    if isinstance(value, str) and len(value) > 128:
        return None
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        return None
    return value


def leading_request_id(data: Any, max_bytes: int) -> Any:
    """The id of a header too large to decode, read from its first ``max_bytes`` only (the
    work is bounded by the limit, not by the header's size); None when it is not there."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, max_buffer_size=max_bytes, max_str_len=max_bytes,
                                max_bin_len=max_bytes, max_array_len=4096, max_map_len=1024, max_ext_len=0)
    unpacker.feed(memoryview(data)[:max_bytes])
    try:
        for _ in range(unpacker.read_map_header()):
            if unpacker.unpack() == "id":
                return request_id({"id": unpacker.unpack()})
            unpacker.skip()
    except Exception:  # out of data, or not a map: msgpack raises several types
        pass
    return None


def check_version(header: Mapping[str, Any]) -> None:
    version = header.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:  # 1.0 or True is not version 1
        raise ProtocolError(BAD_VERSION, f"protocol version {version!r} is not supported; "
                                         f"this daemon speaks version {PROTOCOL_VERSION}")


def field(header: Mapping[str, Any], name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    """A typed header field; missing (without default) or wrongly typed is a ProtocolError."""
    if name not in header:
        if default is ...:
            raise ProtocolError(BAD_MESSAGE, f"field {name!r} is missing")
        return default
    value = header[name]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ProtocolError(BAD_MESSAGE, f"field {name!r} has the wrong type (bool)")
    if not isinstance(value, kind):
        raise ProtocolError(BAD_MESSAGE, f"field {name!r} has the wrong type ({type(value).__name__})")
    return value


def describe_images(images: Sequence[RawImage], first_frame: int = 1) -> list[dict[str, int]]:
    return [image.descriptor(first_frame + i) for i, image in enumerate(images)]


def check_descriptor(descriptor: Any, max_pixels: int | None = None, what: str = "image") -> tuple[int, int, int, int]:
    """(width, height, channels, frame) of an image descriptor, its size checked against
    ``max_pixels``; a ProtocolError if it is malformed or too large."""
    if not isinstance(descriptor, dict):
        raise ProtocolError(BAD_MESSAGE, f"{what} must be described by a map")
    width = field(descriptor, "width", int)
    height = field(descriptor, "height", int)
    channels = field(descriptor, "channels", int)
    frame = field(descriptor, "frame", int)
    if width < 1 or height < 1:
        raise ProtocolError(BAD_MESSAGE, f"{what} size {width}x{height} is empty")
    if channels not in CHANNELS:
        raise ProtocolError(BAD_MESSAGE, f"{what} has {channels} channels; 1, 3 or 4 are supported")
    if max_pixels is not None and width * height > max_pixels:
        raise ProtocolError(TOO_LARGE, f"{what} is {width}x{height} = {width * height} pixels; "
                                       f"the limit is {max_pixels}")
    return width, height, channels, frame


def image_from_frames(descriptor: Any, frames: Sequence[Any], max_pixels: int | None = None,
                      what: str = "image") -> RawImage:
    """The RawImage that ``descriptor`` (a map with width, height, channels, frame) points at
    in ``frames`` (the whole multipart message, header = frame 0). Sizes are checked against
    ``max_pixels`` before the pixel frame is touched."""
    width, height, channels, frame = check_descriptor(descriptor, max_pixels, what)
    if not 1 <= frame < len(frames):
        raise ProtocolError(BAD_MESSAGE, f"{what} points at frame {frame}; the message has "
                                         f"frames 1..{len(frames) - 1}")
    try:
        return RawImage(width, height, channels, frames[frame])
    except ValueError as error:
        raise ProtocolError(BAD_MESSAGE, f"{what}: {error}") from None


def finite_or_none(value: float | None) -> float | None:
    """msgpack carries NaN fine, but other languages' clients may choke on it: send nil."""
    return value if value is not None and math.isfinite(value) else None
