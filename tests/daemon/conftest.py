"""Helpers for the daemon tests: tiny jobs, raw sockets. (The daemon fixtures are in tests/conftest.py.)"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import msgpack
import numpy as np
import pytest
import zmq
from PIL import Image

from esm_client.protocol import RawImage, sign
from esm_client.runtime import read_secret

BRICK = Path(__file__).resolve().parents[2] / "esm_core" / "data" / "brick.png"


def crop(channels: int = 1, side: int = 32) -> np.ndarray:
    grey = np.asarray(Image.open(BRICK).convert("L"))[:side, :side, None]
    if channels == 1:
        return np.ascontiguousarray(grey)
    layers = [grey, 255 - grey, grey // 2, np.full_like(grey, 200)][:channels]
    return np.ascontiguousarray(np.concatenate(layers, axis=2))


def raw(array: np.ndarray) -> RawImage:
    return RawImage(array.shape[1], array.shape[0], array.shape[2], array.tobytes())


@pytest.fixture(scope="session")
def make_exemplar() -> Callable[..., RawImage]:
    """``make_exemplar(channels=1, side=32)``: a crop of the brick texture as a RawImage."""
    return lambda channels=1, side=32: raw(crop(channels, side))


@pytest.fixture(scope="session")
def exemplar() -> RawImage:
    """A 32x32 grey crop of the bundled brick texture."""
    return raw(crop())


@pytest.fixture(scope="session")
def tiny() -> dict[str, Any]:
    """Parameters of a job that takes a fraction of a second."""
    return {"width": 32, "height": 32, "phases": 1, "iterations": 2}


@pytest.fixture(scope="session")
def endless() -> dict[str, Any]:
    """Parameters of a job that runs until cancelled (minutes here, far past a heartbeat
    timeout): a budget of 10,000 evaluations at 192x192 with the Gram loss. L-BFGS-B stops
    by itself once its line search fails; the piecewise Neural Patches loss gets there within
    about 80 evaluations (5-10 s here, too close to a heartbeat timeout), the smooth Gram loss
    within about 860 (about 2 minutes here). Use it with a textured exemplar: on a flat one
    L-BFGS converges at once and the job ends by itself."""
    return {"width": 192, "height": 192, "phases": 1, "iterations": 10_000, "loss": "gram"}


class RawSocket:
    """A bare DEALER socket for messages the client library would never send. ``send`` signs
    the first frame as the header, with the daemon's secret; ``send_unsigned`` sends as is."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.socket = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)

    def send(self, header: bytes, *frames: bytes) -> None:
        secret = read_secret(self.endpoint)
        assert secret, f"no secret for {self.endpoint}"
        self.send_unsigned(sign(secret, header), header, *frames)

    def send_unsigned(self, *frames: bytes) -> None:
        self.socket.send_multipart(list(frames))

    def send_header(self, header: Any, *frames: bytes) -> None:
        self.send(msgpack.packb(header), *frames)

    def receive(self, timeout_s: float = 30.0) -> tuple[dict[str, Any], list[bytes]] | None:
        if not self.socket.poll(timeout_s * 1000):
            return None
        header, *frames = self.socket.recv_multipart()
        return msgpack.unpackb(header), frames

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def raw_socket(daemon_endpoint: str) -> Iterator[RawSocket]:
    sock = RawSocket(daemon_endpoint)
    yield sock
    sock.close()


@pytest.fixture(scope="session")
def make_raw_socket() -> Callable[[str], RawSocket]:
    return RawSocket
