"""Limits are enforced before any work, with an error reply; the daemon keeps serving."""
from __future__ import annotations

from typing import Any, Callable

import msgpack
import pytest

from esm_client import protocol as P
from esm_client.client import Client, DaemonError, JobCancelled
from esm_client.protocol import RawImage


@pytest.fixture
def small(daemon_factory: Callable[..., Any]) -> Any:
    return daemon_factory("--max-pixels", "2000", "--max-output-pixels", "40000", "--max-queue", "1")


def refused(client: Client, code: str, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(DaemonError) as caught:
        client.submit(*args, **kwargs)
    assert caught.value.code == code, caught.value
    return caught.value.message


def test_limits_are_enforced_before_work(small: Any, make_exemplar: Any, tiny: dict, endless: dict,
                                         make_raw_socket: Any) -> None:
    exemplar = make_exemplar()
    with Client(small.endpoint, timeout_s=30) as client:
        limits = client.info()["limits"]
        assert (limits["max_pixels"], limits["max_output_pixels"], limits["max_queue"]) == (2000, 40000, 1)
        assert "limit is 2000" in refused(client, P.TOO_LARGE, "texture", tiny, {"exemplar": make_exemplar(1, 64)})
        assert "limit is 40000" in refused(client, P.TOO_LARGE, "texture", {**tiny, "width": 256, "height": 256},
                                          {"exemplar": exemplar})
        many = {f"i{n}": exemplar for n in range(P.Limits().max_images + 1)}
        refused(client, P.TOO_LARGE, "texture", tiny, many)
        assert "header" in refused(client, P.TOO_LARGE, "texture", {"seed": "x" * 70_000}, {"exemplar": exemplar})
        assert client.info()["jobs"]["completed"] == 0  # nothing ran

        running = client.submit("texture", endless, {"exemplar": exemplar})
        assert running.poll(timeout_ms=60_000)
        waiting = client.submit("texture", tiny, {"exemplar": exemplar})
        refused(client, P.BUSY, "texture", tiny, {"exemplar": exemplar})
        for job in (waiting, running):
            job.cancel()
            with pytest.raises(JobCancelled):
                job.wait()

    sock = make_raw_socket(small.endpoint)
    try:
        header = {"v": P.PROTOCOL_VERSION, "id": 9, "op": "submit", "mode": "texture", "params": tiny,
                  "images": {"exemplar": {"width": 32, "height": 32, "channels": 1, "frame": 1}}}
        for frames, code in [([bytes(32 * 31)], P.BAD_MESSAGE),  # pixel frame shorter than described
                             ([bytes(1024), bytes(1)], P.BAD_MESSAGE),  # a frame nobody describes
                             ([], P.BAD_MESSAGE)]:
            sock.send(msgpack.packb(header), *frames)
            reply, _ = sock.receive()
            assert (reply["type"], reply["code"], reply["id"]) == ("error", code, 9)
        version = P.PROTOCOL_VERSION
        for bad, code in [({"v": version + 1, "op": "ping"}, P.BAD_VERSION),
                          ({"v": version, "op": "dance"}, P.UNKNOWN_OP),
                          ({"v": version}, P.BAD_MESSAGE), ([1, 2], P.BAD_MESSAGE)]:
            sock.send_header(bad)
            reply, _ = sock.receive()
            assert reply["code"] == code
        # A frame over ZMQ_MAXMSGSIZE: ZeroMQ drops that connection, nobody else notices.
        sock.send(msgpack.packb({"v": P.PROTOCOL_VERSION, "op": "ping"}), bytes(limits["max_frame_bytes"] * 2))
        assert sock.receive(timeout_s=2) is None
    finally:
        sock.close()
    with Client(small.endpoint) as client:
        assert client.ping()["type"] == "pong"
        [image] = client.run("texture", tiny, {"exemplar": exemplar})
        assert image.width == 32
