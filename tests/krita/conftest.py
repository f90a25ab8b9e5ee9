"""Fixtures for the tests inside the real Krita 5.2 (see krita_harness.py): the plug-in
installed once per session with ``esm install-plugin krita``, pointed at the session's
daemon (tests/conftest.py), and a reddish exemplar made from the bundled brick photo."""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))  # krita_harness (pytest runs in importlib mode)

import krita_harness  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "esm_core" / "data"
SIDE = 64


@pytest.fixture(scope="session")
def krita_work() -> Iterator[Path]:
    if not krita_harness.root_ready():
        pytest.skip(f"no Krita root at {krita_harness.ROOTFS}: build it with tools/hostapps/setup.sh .hostapps/trixie")
    folder = Path(tempfile.mkdtemp(prefix="esm-krita-", dir="/tmp"))  # /tmp: visible inside the root
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def krita(krita_work: Path, esm_daemon) -> krita_harness.KritaInstall:  # noqa: ANN001
    install = krita_harness.KritaInstall(krita_work)
    done = install.install(esm_daemon.endpoint)
    assert done.returncode == 0, done.stderr
    return install


@pytest.fixture(scope="session")
def exemplar(krita_work: Path) -> tuple[Path, np.ndarray]:
    """64x64 raw RGBA: the brick photo in red > green > blue, so a B/R swap shows."""
    grey = np.asarray(Image.open(DATA / "brick.png").convert("L"))[:SIDE, :SIDE].astype(np.float64)
    rgba = np.dstack([grey, grey * 0.6, grey * 0.3, np.full_like(grey, 255)]).astype(np.uint8)
    path = krita_work / "exemplar.rgba"
    path.write_bytes(rgba.tobytes())
    return path, rgba
