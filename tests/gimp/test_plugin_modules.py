"""The GIMP plug-in's GIMP-free modules on the host: selection thresholding and region maths
(esm_gimp_pixels), and the daemon side (esm_gimp_daemon) against real daemons, including the
autostart that cannot run inside the test root (its start command is the host's esm)."""
from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from esm_client.autostart import ping
from esm_client.client import Client

FOLDER = Path(__file__).resolve().parents[2] / "plugins" / "gimp" / "esm-gimp"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, FOLDER / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pixels = load("esm_gimp_pixels")


def test_threshold_is_half_selected() -> None:
    assert pixels.threshold(bytes([0, 1, 127, 128, 200, 255])) == bytes([0, 0, 0, 255, 255, 255])


def test_mask_bounds() -> None:
    mask = bytearray(6 * 4)
    assert pixels.mask_bounds(bytes(mask), 6, 4) is None
    mask[1 * 6 + 2] = mask[2 * 6 + 4] = 255
    assert pixels.mask_bounds(bytes(mask), 6, 4) == (2, 1, 3, 2)


def test_grow_and_intersect_clip_to_bounds() -> None:
    assert pixels.grow((10, 10, 5, 5), 8, (0, 0, 20, 16)) == (2, 2, 18, 14)
    assert pixels.intersect((0, 0, 4, 4), (4, 0, 4, 4)) is None


def test_crop_interleaved() -> None:
    image = bytes(range(4 * 3 * 2))  # 4 wide, 3 high, 2 channels
    assert pixels.crop(image, 4, 2, (1, 1, 2, 2)) == bytes([10, 11, 12, 13, 18, 19, 20, 21])


def test_channels_for_gimp_types() -> None:
    assert [pixels.channels_for(g, a) for g, a in ((True, False), (False, False), (True, True), (False, True))] \
        == [1, 3, 1, 4]
    assert set(pixels.FORMATS) == {1, 3, 4}


@pytest.fixture
def plugin_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """esm_gimp_daemon as installed: its settings file names the host's `esm daemon start`."""
    module = load("esm_gimp_daemon")
    config = tmp_path / "esm-plugin.json"
    config.write_text(json.dumps({"endpoint": "tcp://127.0.0.1:1",
                                  "start_command": [sys.executable, "-m", "esm_cli.main", "daemon", "start"]}))
    monkeypatch.setattr(module, "CONFIG", config)
    return module


def free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def test_autostart_starts_the_recorded_daemon_and_runs_the_job(plugin_daemon: ModuleType, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XDG_STATE_HOME", "XDG_CONFIG_HOME"):  # the daemon's files go here (its runtime files: the run's)
        (tmp_path / name).mkdir(mode=0o700)
        monkeypatch.setenv(name, str(tmp_path / name))
    endpoint = free_endpoint()
    statuses: list[str] = []
    events: list = []
    try:
        [image] = plugin_daemon.run_job(
            "texture", {"width": 40, "height": 32, "phases": 1, "iterations": 3, "seed": 1},
            {"exemplar": (32, 32, 1, bytes(range(256)) * 4)}, endpoint, True, events.append, statuses.append)
        assert (image.width, image.height, image.channels) == (40, 32, 1)
        assert statuses[0] == f"Starting the ESM daemon at {endpoint}..."
        assert events and events[-1].fraction == pytest.approx(1.0)
        assert ping(endpoint) is not None, "the started daemon outlives the plug-in's request"
    finally:
        subprocess.run([sys.executable, "-m", "esm_cli.main", "daemon", "stop", "--endpoint", endpoint],
                       capture_output=True, timeout=60)


def test_without_settings_autostart_says_how_to_install(plugin_daemon: ModuleType, tmp_path: Path) -> None:
    plugin_daemon.CONFIG = tmp_path / "missing.json"
    endpoint = free_endpoint()
    with pytest.raises(plugin_daemon.PluginError, match="install it with: esm install-plugin gimp"):
        plugin_daemon.run_job("texture", {}, {"exemplar": (1, 1, 1, b"\0")}, endpoint, True, print, print)


def test_daemon_errors_become_one_line(plugin_daemon: ModuleType, esm_daemon) -> None:  # noqa: ANN001
    with pytest.raises(plugin_daemon.PluginError) as caught:
        plugin_daemon.run_job("texture", {"phases": 0}, {"exemplar": (8, 8, 1, bytes(64))},
                              esm_daemon.endpoint, False, print, print)
    assert str(caught.value).startswith("The ESM daemon refused the job: ")
    assert "phases" in str(caught.value) and "\n" not in str(caught.value)
    with Client(esm_daemon.endpoint) as client:
        assert client.ping()


def test_empty_endpoint_means_esm_endpoint_when_set(plugin_daemon: ModuleType,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESM_ENDPOINT", "tcp://127.0.0.1:2")
    with pytest.raises(plugin_daemon.PluginError, match=r"no ESM daemon answers at tcp://127\.0\.0\.1:2, and "
                                                        r"starting one is switched off"):
        plugin_daemon.run_job("texture", {}, {"exemplar": (1, 1, 1, b"\0")}, "", False, print, print)


def test_empty_endpoint_means_the_installed_one(plugin_daemon: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ESM_ENDPOINT", raising=False)
    with pytest.raises(plugin_daemon.PluginError, match=r"no ESM daemon answers at tcp://127\.0\.0\.1:1, and "
                                                        r"starting one is switched off"):
        plugin_daemon.run_job("texture", {}, {"exemplar": (1, 1, 1, b"\0")}, "", False, print, print)
