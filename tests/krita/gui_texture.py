"""Runs inside the real Krita GUI (under Xvfb), through the plug-in's test hook, with the
plug-in loaded from the installer's output. Environment: ESM_TEST_OUT (results),
ESM_TEST_EXEMPLAR (raw RGBA, ESM_TEST_SIZE pixels square); ESM_TEST_TILE, ESM_TEST_PRESET
and ESM_TEST_SCREENSHOT_ONLY for make_screenshot.py.

Steps: a document with three layers and a selection -> the docker's settings -> the menu
action "Tileable texture from selection" -> new layer; screenshots of the docker and of the
tile in wrap-around mode ("Show tiling"); a second job cancelled from the docker's Cancel
button after its first progress event; a third job with no daemon at the endpoint."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

from in_krita import paint_layers, read_raw, rgba_to_bgra, run_steps, save_layer, write_result  # noqa: E402
from krita import Krita, Selection  # noqa: E402
from PyQt5.QtCore import QTimer  # noqa: E402
from PyQt5.QtWidgets import QApplication  # noqa: E402

from esm_krita import controller as controller_module  # noqa: E402
from esm_client.plugin import PluginConfig  # noqa: E402
from esm_krita.docker import EsmDocker  # noqa: E402

OUT = os.environ["ESM_TEST_OUT"]
SIDE = int(os.environ["ESM_TEST_SIZE"])
TILE = int(os.environ.get("ESM_TEST_TILE", "64"))
PRESET = os.environ.get("ESM_TEST_PRESET", "draft")
SCREENSHOT_ONLY = os.environ.get("ESM_TEST_SCREENSHOT_ONLY") == "1"  # make_screenshot.py


def free_endpoint():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def layer_digests(doc):
    import hashlib

    return {n.name(): hashlib.sha256(bytes(n.pixelData(0, 0, doc.width(), doc.height()))).hexdigest()
            for n in paint_layers(doc)}


def steps():
    app = Krita.instance()
    window = app.activeWindow()
    window.qwindow().setGeometry(QApplication.primaryScreen().availableGeometry())  # no window manager
    controller = controller_module.instance()
    result = {"actions": [a is not None for a in (app.action("esm_tileable_texture"),
                                                   app.action("esm_fill_selection"))]}

    doc = app.createDocument(SIDE, SIDE, "esm-gui-test", "RGBA", "U8", "", 72.0)
    window.addView(doc)
    yield lambda: doc.activeNode() is not None
    background = paint_layers(doc)[0]
    background.setPixelData(b"\xff" * (SIDE * SIDE * 4), 0, 0, SIDE, SIDE)
    photo = doc.createNode("photo", "paintlayer")
    doc.rootNode().addChildNode(photo, background)
    photo.setPixelData(rgba_to_bgra(read_raw(os.environ["ESM_TEST_EXEMPLAR"])), 0, 0, SIDE, SIDE)
    top = doc.createNode("top", "paintlayer")
    doc.rootNode().addChildNode(top, photo)
    top.setPixelData(b"\x00\x00\xff\x80" * 16, 0, 0, 4, 4)
    selection = Selection()
    selection.select(SIDE // 8, SIDE // 8, SIDE * 3 // 4, SIDE * 3 // 4, 255)
    doc.setSelection(selection)
    # Krita activates each added layer once control is back in its event loop: wait for
    # that before choosing the active layer, or the choice is overridden.
    yield lambda: doc.selection() is not None and doc.activeNode().name() == "top"
    doc.setActiveNode(photo)
    yield lambda: doc.activeNode().name() == "photo"
    before = layer_digests(doc)

    dockers = [d for d in window.dockers() if isinstance(d, EsmDocker)]
    result["dockers"] = len(dockers)
    docker = dockers[0]
    docker.show()
    docker.raise_()
    docker.width_box.setValue(TILE)
    docker.height_box.setValue(TILE)
    docker.seed_box.setValue(5)
    docker.preset_box.setCurrentIndex(docker.preset_box.findData(PRESET))
    seed = docker.seed_box.value()
    docker.reroll_button.click()
    result["reroll_changed_seed"] = docker.seed_box.value() != seed
    docker.seed_box.setValue(5)
    result["options"] = controller.options.to_dict()

    seen = {"progress": 0, "previews": 0, "max_gap_ms": 0.0, "bar_max": 0}
    last_tick = [time.monotonic()]
    controller.progress.connect(lambda event: seen.__setitem__("progress", seen["progress"] + 1))
    controller.preview.connect(lambda image: seen.__setitem__("previews", seen["previews"] + 1))
    controller.progress.connect(lambda event: seen.__setitem__(
        "bar_max", max(seen["bar_max"], docker.progress_bar.value())))
    ticker = QTimer()
    ticker.timeout.connect(lambda: tick(seen, last_tick))
    ticker.start(20)

    started = time.monotonic()
    app.action("esm_tileable_texture").trigger()
    yield lambda: controller.busy
    result["cancel_enabled_while_busy"] = docker.cancel_button.isEnabled()
    yield lambda: not controller.busy
    result["texture_seconds"] = time.monotonic() - started
    result["message"] = controller.last_message
    result.update(seen)
    layer = controller.last_layer
    assert layer is not None, controller.last_message
    doc.waitForDone()
    result["layer"] = save_layer(doc, layer, OUT, "layer")
    names = [n.name() for n in paint_layers(doc)]
    result["stack"] = names
    result["unchanged"] = {name: layer_digests(doc).get(name) == digest for name, digest in before.items()}
    result["tiling_enabled"] = docker.tiling_button.isEnabled()
    docker.grab().save(os.path.join(OUT, "docker.png"))

    documents = len(app.documents())
    docker.tiling_button.click()
    yield lambda: len(app.documents()) == documents + 1 and window.activeView().document() == app.documents()[-1]
    view = window.activeView()
    result["wrap_around"] = view.canvas().wrapAroundMode()
    view.canvas().setZoomLevel(2.0 * 64 / TILE)
    yield from pause(1.5)
    window.qwindow().grab().save(os.path.join(OUT, "window.png"))
    if SCREENSHOT_ONLY:
        write_result(OUT, result)
        os._exit(0)

    # Cancel a longer job from the docker once it reports progress.
    next(v for v in window.views() if v.document() == doc).setVisible()
    yield lambda: window.activeView().document() == doc
    docker.width_box.setValue(TILE * 2)
    docker.height_box.setValue(TILE * 2)
    docker.preset_box.setCurrentIndex(docker.preset_box.findData("best"))
    layers_before_cancel = len(paint_layers(doc))
    seen["progress"] = 0
    app.action("esm_tileable_texture").trigger()
    yield lambda: seen["progress"] > 0 or not controller.busy
    result["cancel_clicked_busy"] = controller.busy
    docker.cancel_button.click()
    cancel_started = time.monotonic()
    yield lambda: not controller.busy
    result["cancel_seconds"] = time.monotonic() - cancel_started
    result["cancel_message"] = controller.last_message
    result["layers_after_cancel"] = [layers_before_cancel, len(paint_layers(doc))]
    result["bar_format_after_cancel"] = docker.progress_bar.format()

    # No daemon at all: the job fails at once with a message; the status line says so.
    controller.runner.config = PluginConfig(free_endpoint())
    app.action("esm_tileable_texture").trigger()
    yield lambda: not controller.busy
    result["down_message"] = docker.message_label.text()
    result["down_status"] = docker.daemon_label.text()
    result["layers_after_down"] = len(paint_layers(doc))
    write_result(OUT, result)
    os._exit(0)


def tick(seen, last_tick):
    """The longest pause of a 20 ms timer: how long the UI was unresponsive (reported only)."""
    now = time.monotonic()
    seen["max_gap_ms"] = max(seen["max_gap_ms"], (now - last_tick[0]) * 1000)
    last_tick[0] = now


def pause(seconds):
    until = time.monotonic() + seconds
    yield lambda: time.monotonic() > until


run_steps(steps(), timeout_s=150)
