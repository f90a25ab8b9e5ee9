"""The GIMP plug-in inside the real GIMP 3.0 (batch mode), against a real daemon on the host.

Each test builds an image in GIMP (gimp_driver.py), calls one procedure with non-interactive
arguments, and checks here what GIMP recorded. Images are tiny and the settings draft-level:
these tests check the plumbing (pixels in and out, placement, errors, cancellation); the
engine's own tests check quality.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from esm_client.client import Client
from esm_core.evaluate import evaluate

pytestmark = pytest.mark.gimp

DATA = Path(__file__).resolve().parents[2] / "esm_core" / "data"
SIZE = 64
FAST = {"quality": "draft", "phases": 2, "iterations": 8, "seed": 3}
FLAT_MAX = 0.9  # a blurred or flat layer scores 1.0; a 40x32 layer has only 12 windows (docs/evaluation.md)


@pytest.fixture(scope="module")
def input_png(gimp_workdir: Path) -> Path:
    """A colourful 64x64 PNG made from the bundled grey exemplars."""
    brick = np.asarray(Image.open(DATA / "brick.png").convert("L"))[:SIZE, :SIZE]
    grass = np.asarray(Image.open(DATA / "grass.png").convert("L"))[:SIZE, :SIZE]
    path = gimp_workdir / "input.png"
    Image.fromarray(np.dstack([brick, grass, 255 - brick])).save(path)
    return path


def raw(result: dict, name: str, box: dict | None = None) -> np.ndarray:
    """An R'G'B'A u8 dump of the driver as (H, W, 4)."""
    box = box or result["base"]
    data = (result["out"] / name).read_bytes()
    return np.frombuffer(data, np.uint8).reshape(box["height"], box["width"], 4)


def selection(result: dict) -> np.ndarray:
    width, height = result["image_size"]
    return np.frombuffer((result["out"] / "selection.raw").read_bytes(), np.uint8).reshape(height, width)


def free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def noise_like(image: np.ndarray) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, image.shape, dtype=np.uint8)


def assert_plausible_texture(exemplar: np.ndarray, output: np.ndarray) -> None:
    """Closer to the exemplar's patch and colour statistics than uniform noise of the same size
    (esm_core.evaluate, as `esm eval` reports them), with the exemplar's fine detail: a blurred
    or flat layer has ``flat`` near 1."""
    ours = evaluate(exemplar, output)
    noise = evaluate(exemplar, noise_like(output))
    assert ours["flat"] < FLAT_MAX, ours
    assert ours["patch_swd"] < 0.5 * noise["patch_swd"], (ours, noise)
    assert ours["patch_swd"] < 3 * ours["patch_swd_reference"], ours
    assert ours["colour_distance"] < 0.5 * noise["colour_distance"], (ours, noise)


def assert_one_new_layer_on_top(result: dict, name: str) -> dict:
    assert result["status"] == "success", result.get("message")
    layer = result["new_layer"]
    assert layer["name"] == name
    assert [entry["name"] for entry in result["layers"]] == [name, "base"]  # right above the base layer
    assert result["selected"] == [name]
    # The original layer is untouched.
    assert np.array_equal(raw(result, "base_before.raw"), raw(result, "base_after.raw"))
    return layer


def test_texture_from_rect_selection(gimp, input_png: Path) -> None:
    result = gimp.run({"image": str(input_png), "select": [8, 8, 48, 48], "procedure": "esm-texture-from-selection",
                       "args": {**FAST, "width": 40, "height": 32, "tileable": False}})
    layer = assert_one_new_layer_on_top(result, "ESM texture (seed 3)")
    assert (layer["x"], layer["y"], layer["width"], layer["height"]) == (0, 0, 40, 32)
    pixels = raw(result, "new.raw", layer)
    assert (pixels[..., 3] == 255).all()
    exemplar = raw(result, "base_before.raw")[8:56, 8:56, :3]
    assert_plausible_texture(exemplar, pixels[..., :3])


def test_texture_whole_layer_grey_16bit_alpha_default_size(gimp, input_png: Path) -> None:
    """No selection: the whole layer is the exemplar; size 0 = the image's size; grey,
    16-bit, with alpha: GEGL's u8 formats carry it both ways."""
    result = gimp.run({"image": str(input_png), "gray": True, "precision": "U16_NON_LINEAR", "alpha": True,
                       "procedure": "esm-texture-from-selection",
                       "args": {**FAST, "width": 0, "height": 0, "tileable": True}})
    assert (result["base_type"], result["precision"]) == ("gray", "u16-non-linear")
    layer = assert_one_new_layer_on_top(result, "ESM texture (seed 3)")
    assert (layer["x"], layer["y"], layer["width"], layer["height"]) == (0, 0, SIZE, SIZE)
    pixels = raw(result, "new.raw", layer)
    assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
    assert_plausible_texture(raw(result, "base_before.raw")[..., :1], pixels[..., :1])


def check_fill(result: dict, layer_rect: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The new layer covers exactly the bounding box of the hole (selection >= 50% within the
    base layer), is opaque on the hole and transparent elsewhere. Returns (hole in image
    coordinates, new layer pixels)."""
    layer = assert_one_new_layer_on_top(result, "ESM fill (seed 3)")
    x, y, w, h = layer_rect
    hole = np.zeros(selection(result).shape, bool)
    hole[y:y + h, x:x + w] = selection(result)[y:y + h, x:x + w] >= 128
    rows, cols = np.nonzero(hole)
    expected = (cols.min(), rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1)
    assert (layer["x"], layer["y"], layer["width"], layer["height"]) == expected
    pixels = raw(result, "new.raw", layer)
    inside = hole[layer["y"]:layer["y"] + layer["height"], layer["x"]:layer["x"] + layer["width"]]
    assert (pixels[..., 3][inside] == 255).all()
    assert (pixels[..., 3][~inside] == 0).all()
    return hole, pixels


def test_fill_rect_selection_rgb(gimp, input_png: Path) -> None:
    result = gimp.run({"image": str(input_png), "select": [20, 24, 16, 12], "procedure": "esm-fill-selection",
                       "args": {**FAST, "context": 16}})
    hole, pixels = check_fill(result, (0, 0, SIZE, SIZE))
    # GIMP's own composite (the exported PNG) equals the original outside the hole.
    composite = np.asarray(Image.open(result["out"] / "composite.png").convert("RGBA"))
    original = raw(result, "base_before.raw")
    assert np.array_equal(composite[~hole], original[~hole])
    # The fill takes its colours from the surroundings: mean within the context band's range.
    band = original[4:48, 4:52, :3].reshape(-1, 3)
    filled = pixels[..., :3].reshape(-1, 3)
    assert (np.abs(filled.mean(0) - band.mean(0)) < 2 * band.std(0)).all()


def test_fill_feathered_ellipse_on_offset_grey_float_layer(gimp, input_png: Path) -> None:
    """Feathered selection (thresholded at 50%), partly outside the layer and the image, on a
    smaller, offset layer of a grey 32-bit float image with alpha."""
    layer_rect = (4, 2, 56, 60)
    result = gimp.run({"image": str(input_png), "gray": True, "precision": "FLOAT_LINEAR", "alpha": True,
                       "layer_rect": list(layer_rect), "select": [36, 20, 40, 24], "ellipse": True, "feather": 8,
                       "procedure": "esm-fill-selection", "args": {**FAST, "context": 12}})
    assert (result["base_type"], result["precision"]) == ("gray", "float-linear")
    assert (result["base"]["x"], result["base"]["y"]) == layer_rect[:2]
    soft = selection(result)
    assert ((soft > 0) & (soft < 255)).any(), "the selection is feathered"
    hole, _ = check_fill(result, layer_rect)
    assert hole[:, 60:].sum() == 0 and (soft[:, 60:] >= 128).any(), "the hole stops at the layer's edge"


def test_daemon_down_without_autostart_is_a_clear_error(gimp, input_png: Path) -> None:
    endpoint = free_endpoint()
    result = gimp.run({"image": str(input_png), "select": [8, 8, 20, 20], "procedure": "esm-fill-selection",
                       "args": {**FAST, "endpoint": endpoint, "autostart": False}})
    assert result["status"] == "execution-error"
    assert result["message"] == (f"ESM Fill Selection: no ESM daemon answers at {endpoint}, and starting one is "
                                 f"switched off (autostart). Start one with: esm daemon start --endpoint {endpoint}")
    assert [entry["name"] for entry in result["layers"]] == ["base"]


def test_failed_autostart_is_a_clear_error(gimp, input_png: Path) -> None:
    """Autostart runs the installer's start command: here the host's Python, which does not
    exist inside the root, so starting fails; the user gets one line saying so."""
    endpoint = free_endpoint()
    result = gimp.run({"image": str(input_png), "procedure": "esm-texture-from-selection",
                       "args": {**FAST, "endpoint": endpoint, "autostart": True}})
    assert result["status"] == "execution-error"
    assert result["message"].startswith("ESM Texture from Selection: Cannot run ")
    assert "to start the ESM daemon" in result["message"] and "Traceback" not in result["message"]


def test_daemon_refusal_is_a_gimp_error(gimp, input_png: Path) -> None:
    result = gimp.run({"image": str(input_png), "procedure": "esm-texture-from-selection",
                       "args": {**FAST, "width": 8192, "height": 8192}})
    assert result["status"] == "execution-error"
    assert result["message"].startswith("ESM Texture from Selection: The ESM daemon refused the job: ")
    assert "Traceback" not in result["message"]
    assert [entry["name"] for entry in result["layers"]] == ["base"]


def test_dialog_ok_runs_with_the_dialogs_values(gimp, input_png: Path) -> None:
    """Interactive run in the GIMP GUI (Xvfb): the ProcedureDialog opens with the values it was
    given, and OK (Return) runs the procedure with them: the layer's name carries the seed, its
    size is the image's (width/height 0)."""
    process, out = gimp.start_gui({"image": str(input_png), "select": [8, 8, 40, 40],
                                   "args": {**FAST, "seed": 5}, "esm-fill-selection": {"context": 16}})
    try:
        wait_for(lambda: (out / "ready").exists() or process.poll() is not None, 120, "the GUI")
        assert process.poll() is None, process.communicate()[0]
        display = (out / "ready").read_text()

        def press_until_done() -> bool:
            # A key pressed while GTK is still mapping the dialog is lost: press again until the
            # run has ended (once the dialog has closed, there is no window left to press in,
            # and once the run has ended, GIMP and its display may be gone).
            if not (out / "done.json").exists():
                assert process.poll() is None, f"GIMP ended before the run did:\n{process.communicate()[0]}"
                gimp.press(display, "ESM Texture from Selection", "Return")
            return (out / "done.json").exists()

        wait_for(press_until_done, 120, "OK to run the procedure")
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    layers = json.loads((out / "done.json").read_text())
    assert [name for name, _, _ in layers] == ["ESM fill (seed 5)", "ESM texture (seed 5)", "Background"]
    assert layers[1][1:] == [SIZE, SIZE]


def plugin_pids(profile: Path) -> list[int]:
    """Host pids of this profile's running esm-gimp plug-in processes."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if entry.name.isdigit() and b"esm-gimp.py" in command and str(profile).encode() in command:
            pids.append(int(entry.name))
    return pids


def wait_for(condition, timeout_s: float, what: str):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def test_killed_plugin_loses_its_job(gimp, gimp_profile: Path, esm_daemon, input_png: Path) -> None:  # noqa: ANN001
    """Cancelling in GIMP kills the plug-in process; the daemon must notice (no heartbeats)
    and drop the job instead of computing it for nobody."""
    with Client(esm_daemon.endpoint) as client:
        before = client.info()["jobs"]
        assert before["running"] == 0
        # Big and long enough to be still running when the plug-in dies.
        process, out = gimp.start({"image": str(input_png), "procedure": "esm-texture-from-selection",
                                   "args": {**FAST, "width": 512, "height": 512, "phases": 1,
                                            "iterations": 10000}})

        def running() -> bool:
            assert process.poll() is None, f"GIMP ended early:\n{process.communicate()[0]}"
            return client.info()["jobs"]["running"] == 1

        try:
            wait_for(running, 120, "the job to run")
            pids = plugin_pids(gimp_profile)
            assert len(pids) == 1, pids
            os.kill(pids[0], signal.SIGKILL)
            result = gimp.finish(process, out)
        finally:
            if process.poll() is None:
                process.kill()
        assert result["status"] == "calling-error"  # GIMP's word for a plug-in that died
        after = wait_for(lambda: (jobs := client.info()["jobs"])["running"] == 0 and jobs, 60, "the job to end")
        assert after["cancelled"] == before["cancelled"] + 1
        assert after["completed"] == before["completed"]
