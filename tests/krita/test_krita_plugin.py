"""The Krita plug-in inside the real Krita 5.2 (tools/hostapps root), installed with
``esm install-plugin krita``, against real daemons on the host.

kritarunner runs the plug-in's core (document access, colour conversion, the Runner that
talks to the daemon from Qt's event loop, the new layer) on real documents; the GUI test
starts Krita under Xvfb, where the plug-in is loaded from the installer's output (pykrita
folder on XDG_DATA_DIRS, enabled in kritarc by the installer) and drives the menu action and
the docker. Sizes are tiny and the preset is "draft": these tests check the plumbing; the
engine's own tests check quality.
"""
from __future__ import annotations

import json
import signal
import subprocess
import time

import numpy as np
import pytest
from PIL import Image

import krita_harness
from esm_client.autostart import ensure_daemon, ping
from esm_core.evaluate import flat_fraction, seam_score

pytestmark = pytest.mark.krita

SIDE = "64"
# A tileable result: its wrap-around seam is like any other step. Measured on these 64 px draft
# tiles from the 48 px crop (seeds 1-8, variety 0.5 and 1.0, grey and colour, in-process): 0.5-2.2
# tileable, 2.6-7.2 for the same jobs not tileable, 9.4 for the crop itself.
TILE_SEAM_MAX = 2.5
CROP_SEAM_MIN = 3.0  # the exemplar's crop, which does not tile: the measure tells them apart
FLAT_MAX = 0.5  # a blurred or flat tile scores about 1: the seam alone passes on an empty image


def free_endpoint() -> str:
    return f"tcp://127.0.0.1:{krita_harness.free_port()}"


def layer_rgba(result: dict) -> np.ndarray:
    """The new layer as saved by in_krita.save_layer: 8-bit BGRA -> RGBA (H, W, 4)."""
    layer = result["layer"]
    data = np.frombuffer((result["out"] / "layer.bgra").read_bytes(), np.uint8)
    return data.reshape(layer["height"], layer["width"], 4)[..., [2, 1, 0, 3]]


def assert_only_one_layer_added(result: dict) -> None:
    assert all(result["unchanged"].values()), result["unchanged"]
    assert result["layer_count"][1] == result["layer_count"][0] + 1


def test_installer_output(krita: krita_harness.KritaInstall) -> None:
    installed = krita.pykrita / "esm_krita"
    assert (krita.pykrita / "esm_krita.desktop").read_text().count("X-KDE-Library=esm_krita") == 1
    assert "[python]\nenable_esm_krita=true" in (krita.config / "kritarc").read_text()
    assert json.loads((installed / "esm-plugin.json").read_text())["start_command"]
    # The root has no python3-zmq: Krita's Python imports the vendored wheels.
    vendor = installed / "vendor"
    code = f"import sys; sys.path.insert(0, {str(vendor)!r}); import zmq, msgpack, esm_client.client; print(zmq.__file__)"
    done = subprocess.run(krita_harness.chroot_command("python3", "-c", code, timeout_s=60), cwd=krita_harness.ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(vendor))


def test_texture_becomes_a_tiling_layer_above_the_active_one(krita, exemplar) -> None:  # noqa: ANN001
    path, rgba = exemplar
    result = krita.kritarunner("texture", str(path), SIDE, SIDE).finish()
    assert result["error"] is None, result["error"]
    assert result["sent"] == {"exemplar": [48, 48, 3]}  # the selection, opaque -> RGB
    layer = result["layer"]
    assert (layer["x"], layer["y"], layer["width"], layer["height"]) == (8, 8, 128, 64)  # 2 x 1 tiles of 64
    assert result["above_active"] and result["stack"][-1] == "top"
    assert_only_one_layer_added(result)
    assert result["progress"] > 0 and result["previews"] > 0
    pixels = layer_rgba(result)
    tile = pixels[:, :64]
    assert np.array_equal(tile, pixels[:, 64:])
    assert (tile[..., 3] == 255).all()
    red, green, blue = tile[..., :3].reshape(-1, 3).mean(axis=0)
    assert red > green > blue  # like the exemplar: Krita's BGRA order was handled both ways
    assert seam_score(tile) < TILE_SEAM_MAX
    assert seam_score(rgba[8:56, 8:56]) > CROP_SEAM_MIN
    assert flat_fraction(rgba[8:56, 8:56], tile) < FLAT_MAX


@pytest.mark.parametrize("space", [("GRAYA", "U16"), ("CMYKA", "U8")])
def test_other_colour_spaces_are_converted(krita, exemplar, space) -> None:  # noqa: ANN001
    path, _ = exemplar
    result = krita.kritarunner("texture_converted", str(path), SIDE, SIDE, *space).finish()
    assert result["error"] is None, result["error"]
    assert result["document_space"] == list(space)
    assert [result["layer"]["color_model"], result["layer"]["color_depth"]] == list(space)
    assert_only_one_layer_added(result)
    tile = layer_rgba(result)
    assert tile.shape == (64, 64, 4)
    assert tile[..., :3].std() > 5  # texture, not a flat colour
    assert seam_score(tile) < TILE_SEAM_MAX


def test_fill_covers_the_hole_only(krita, exemplar) -> None:  # noqa: ANN001
    path, _ = exemplar
    result = krita.kritarunner("fill", str(path), SIDE, SIDE).finish()
    assert result["error"] is None, result["error"]
    # The hole (16x12 at 24,20) with up to 16 px of context around it, clipped to the canvas.
    assert result["sent"] == {"image": [48, 44, 3], "mask": [48, 44, 1]}
    layer = result["layer"]
    assert (layer["x"], layer["y"], layer["width"], layer["height"]) == (24, 20, 16, 12)
    assert result["above_active"]
    assert_only_one_layer_added(result)
    filled = layer_rgba(result)
    assert (filled[..., 3] == 255).all()
    red, green, blue = filled[..., :3].reshape(-1, 3).mean(axis=0)
    assert red > green > blue


def test_cancel_mid_job_adds_nothing(krita, exemplar) -> None:  # noqa: ANN001
    path, _ = exemplar
    result = krita.kritarunner("cancel", str(path), SIDE, SIDE).finish()
    assert result["error"] == "Cancelled."
    assert "Cancelling..." in result["messages"]
    assert result["layer_count"][0] == result["layer_count"][1]
    assert all(result["unchanged"].values())


def test_daemon_down_without_autostart(krita, exemplar) -> None:  # noqa: ANN001
    path, _ = exemplar
    endpoint = free_endpoint()
    result = krita.kritarunner("down", str(path), SIDE, SIDE, "no-autostart", endpoint=endpoint).finish()
    assert result["error"] == f"No ESM daemon answers at {endpoint}; start one with: esm daemon start."
    assert result["layer_count"][0] == result["layer_count"][1]


def test_daemon_down_and_autostart_impossible(krita, exemplar) -> None:  # noqa: ANN001
    """The recorded start command is the host's Python, which does not exist inside the root:
    the message names the command and the reason."""
    path, _ = exemplar
    endpoint = free_endpoint()
    result = krita.kritarunner("down", str(path), SIDE, SIDE, endpoint=endpoint).finish()
    command = result["start_command"]
    assert command[-2:] == ["--endpoint", endpoint]
    assert result["error"] == f"Cannot run {command[0]!r} to start the ESM daemon: No such file or directory."
    assert result["layer_count"][0] == result["layer_count"][1]


def test_recorded_start_command_starts_a_daemon(krita, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """What the plug-in runs when no daemon answers (the recorded command plus --endpoint),
    run here on the host, where that Python exists."""
    for name in ("XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        folder = tmp_path / name
        folder.mkdir(mode=0o700)
        monkeypatch.setenv(name, str(folder))
    recorded = json.loads((krita.pykrita / "esm_krita" / "esm-plugin.json").read_text())
    endpoint = free_endpoint()
    ensure_daemon(endpoint, [*recorded["start_command"], "--endpoint", endpoint], timeout_s=180)
    try:
        pong = ping(endpoint, timeout_s=5)
        assert pong is not None
    finally:
        subprocess.run([*recorded["start_command"][:-1], "stop", "--endpoint", endpoint], timeout=60, check=True)
    assert ping(endpoint) is None


def test_survives_a_daemon_restart(krita, exemplar, daemon_factory) -> None:  # noqa: ANN001
    """The daemon is killed while a job runs and a new one starts on the same endpoint: the
    job ends with a message, and the next job from the same Krita works."""
    path, _ = exemplar
    first = daemon_factory()
    run = krita.kritarunner("restart", str(path), SIDE, SIDE, endpoint=first.endpoint)
    deadline = time.monotonic() + krita_harness.KRITA_TIMEOUT_S
    while not (run.out / "running").exists():
        assert run.process.poll() is None, run.process.communicate()[0]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.stop(signal.SIGKILL)
    daemon_factory(endpoint=first.endpoint)
    (run.out / "restarted").touch()
    result = run.finish()
    assert not result["first"]["finished"]
    assert "daemon" in result["first"]["error"], result["first"]
    assert result["error"] is None, result["error"]
    assert_only_one_layer_added(result)


def test_gui_action_docker_tiling_and_cancel(krita, exemplar) -> None:  # noqa: ANN001
    path, _ = exemplar
    result = krita.gui("gui_texture.py", ESM_TEST_EXEMPLAR=str(path), ESM_TEST_SIZE=SIDE).finish()
    assert result["actions"] == [True, True]  # Tools > Scripts entries exist
    assert result["dockers"] == 1
    assert result["reroll_changed_seed"]
    assert result["options"]["preset"] == "draft" and result["options"]["width"] == 64
    # The menu action ran the job from the docker's settings.
    assert result["cancel_enabled_while_busy"]
    assert result["progress"] > 0 and result["previews"] > 0 and result["bar_max"] > 0
    layer = result["layer"]
    assert (layer["width"], layer["height"]) == (64, 64)
    assert result["stack"] == ["Background", "photo", layer["name"], "top"]
    assert all(result["unchanged"].values())
    assert seam_score(layer_rgba(result)) < TILE_SEAM_MAX
    assert flat_fraction(exemplar[1], layer_rgba(result)) < FLAT_MAX
    assert result["message"].startswith(f"Added layer \"{layer['name']}\"")
    # After a tileable result: "Show tiling" opens the tile in wrap-around mode.
    assert result["tiling_enabled"] and result["wrap_around"]
    assert Image.open(result["out"] / "docker.png").size[0] > 100
    assert Image.open(result["out"] / "window.png").size[0] > 500
    # The docker's Cancel button stops a running job; nothing is added.
    assert result["cancel_clicked_busy"]
    assert result["cancel_message"] == "Cancelled."
    assert result["layers_after_cancel"][0] == result["layers_after_cancel"][1]
    # With no daemon: the message is in the docker, the daemon status says so.
    assert result["down_message"].startswith("No ESM daemon answers at")
    assert result["down_status"].startswith("No daemon at")
