"""Malformed messages (property-based): each gets a reply, none crashes or stalls the daemon."""
from __future__ import annotations

from typing import Any

import msgpack
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from esm_client import protocol as P
from esm_client.client import Client

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])
TERMINAL = ("result", "error", "cancelled")

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=True),
                    st.text(max_size=20), st.binary(max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)
BASES: list[dict[str, Any]] = [
    {"v": P.PROTOCOL_VERSION, "op": "ping", "id": 1},
    {"v": P.PROTOCOL_VERSION, "op": "info", "id": 2},
    {"v": P.PROTOCOL_VERSION, "op": "cancel", "id": 3, "job": "x"},
    {"v": P.PROTOCOL_VERSION, "op": "heartbeat", "id": 4, "jobs": ["x"]},
    {"v": P.PROTOCOL_VERSION, "op": "submit", "id": 5, "mode": "texture",
     "params": {"width": 32, "height": 32, "phases": 1, "iterations": 2},
     "images": {"exemplar": {"width": 32, "height": 32, "channels": 1, "frame": 1}}},
]


def mutated() -> st.SearchStrategy[tuple[dict[str, Any], list[bytes]]]:
    """A valid request with one field replaced, removed or added, or its pixel frame changed."""
    keys = st.sampled_from(["v", "op", "id", "job", "jobs", "mode", "params", "images", "preview_every_s", "zz"])

    @st.composite
    def build(draw: Any) -> tuple[dict[str, Any], list[bytes]]:
        header = dict(draw(st.sampled_from(BASES)))
        frames = [bytes(32 * 32)] if header["op"] == "submit" else []
        action = draw(st.sampled_from(["set", "delete", "nested", "frames"]))
        if action == "set":
            header[draw(keys)] = draw(values)
        elif action == "delete":
            header.pop(draw(st.sampled_from(sorted(header))), None)
        elif action == "nested" and header["op"] == "submit":
            target = draw(st.sampled_from(["params", "image"]))
            inner = dict(header["params"]) if target == "params" else dict(header["images"]["exemplar"])
            inner[draw(st.sampled_from(sorted(inner) + ["seed", "network", "tileable"]))] = draw(values)
            if target == "params":
                header["params"] = inner
            else:
                header["images"] = {"exemplar": inner}
        else:
            frames = draw(st.lists(st.binary(max_size=2048), max_size=3))
        return header, frames

    return build()


def exchange(raw_socket: Any, frames: list[bytes]) -> list[dict[str, Any]]:
    """Sends one message; returns the reply (and, for an accepted job, its events to the end)."""
    raw_socket.send(*frames)
    received = raw_socket.receive(timeout_s=60)
    assert received is not None, "no reply"
    replies = [received[0]]
    if replies[0].get("type") == "accepted":
        while replies[-1].get("type") not in TERMINAL:
            event = raw_socket.receive(timeout_s=60)
            assert event is not None, "an accepted job never ended"
            replies.append(event[0])
    return replies


def check(replies: list[dict[str, Any]]) -> None:
    first = replies[0]
    assert isinstance(first, dict) and first.get("v") == P.PROTOCOL_VERSION
    assert first.get("type") in P.REPLY_TYPES
    if first["type"] == "error":
        assert first["code"] in (P.BAD_MESSAGE, P.BAD_VERSION, P.UNKNOWN_OP, P.TOO_LARGE, P.BAD_PARAMS,
                                 P.UNKNOWN_JOB)
        assert isinstance(first["message"], str) and first["message"]


@FUZZ
@given(frames=st.lists(st.binary(max_size=512), min_size=1, max_size=4))
def test_random_frames_get_a_reply(raw_socket: Any, frames: list[bytes]) -> None:
    check(exchange(raw_socket, frames))


@FUZZ
@given(header=values, extra=st.lists(st.binary(max_size=64), max_size=2))
def test_random_msgpack_gets_a_reply(raw_socket: Any, header: Any, extra: list[bytes]) -> None:
    assume(not (isinstance(header, dict) and header.get("op") == "shutdown"))
    check(exchange(raw_socket, [msgpack.packb(header), *extra]))


@FUZZ
@given(message=mutated())
def test_mutated_requests_get_a_reply(raw_socket: Any, message: tuple[dict[str, Any], list[bytes]]) -> None:
    header, frames = message
    assume(header.get("op") != "shutdown")
    check(exchange(raw_socket, [msgpack.packb(header), *frames]))


def test_daemon_still_serves_after_fuzzing(daemon: Any, daemon_endpoint: str, exemplar: Any, tiny: dict) -> None:
    with Client(daemon_endpoint) as client:
        assert client.ping()["pid"] == daemon.process.pid
        [image] = client.run("texture", tiny, {"exemplar": exemplar})
        assert (image.width, image.height) == (32, 32)
        assert client.info()["jobs"]["running"] == 0
    assert daemon.process.poll() is None
