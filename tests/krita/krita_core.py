"""kritarunner driver: the plug-in's core (reading the document, the daemon job through the
plug-in's Runner, the new layer) on a real Krita document, without the GUI.

    kritarunner -s krita_core -f main SCENARIO OUT_DIR EXEMPLAR WIDTH HEIGHT [MODEL DEPTH]

Scenarios on a document with three layers (white background, "photo" = the raw RGBA
EXEMPLAR, "top"), converted to MODEL/DEPTH when given: texture (two tiles in X), fill,
cancel (cancelled after the first progress event), down (no daemon; "no-autostart" as
MODEL drops the recorded start command), restart (a long job; at its first progress
event OUT_DIR/running appears and the host kills the daemon, starts a new one on the same
endpoint and creates OUT_DIR/restarted; then the texture job runs again). The plug-in
comes from the installer's output on PYTHONPATH, the endpoint from $ESM_ENDPOINT (as the
plug-in reads it)."""
from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from in_krita import fail_on_exception, paint_layers, read_raw, rgba_to_bgra, save_layer, write_result

OPTIONS = {"width": 64, "height": 64, "seed": 3, "preset": "draft"}


def _run(runner: Any, request: Any, on_first_progress: Callable[[], None] | None = None) -> dict[str, Any]:
    """Runs the job in a local Qt event loop, the way Krita's main loop drives the plug-in.
    Records the longest pause of a 20 ms timer meanwhile (how long the UI would have been
    unresponsive; reported, not asserted: it depends on the machine's load)."""
    from PyQt5.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    outcome: dict[str, Any] = {"progress": 0, "previews": 0, "max_gap_ms": 0.0, "messages": []}
    last_tick = [time.monotonic()]

    def on_progress(_: Any, event: Any) -> None:
        outcome["progress"] += 1
        outcome["previews"] += event.preview is not None
        if on_first_progress is not None and outcome["progress"] == 1:
            on_first_progress()

    def on_finished(_: Any, images: Any) -> None:
        outcome["images"] = images
        loop.quit()

    def on_failed(_: Any, text: str) -> None:
        outcome["error"] = text
        loop.quit()

    def tick() -> None:
        now = time.monotonic()
        outcome["max_gap_ms"] = max(outcome["max_gap_ms"], (now - last_tick[0]) * 1000)
        last_tick[0] = now

    runner.progress.connect(on_progress)
    runner.finished.connect(on_finished)
    runner.failed.connect(on_failed)
    runner.message.connect(outcome["messages"].append)
    heartbeat = QTimer()
    heartbeat.timeout.connect(tick)
    heartbeat.start(20)
    started = time.monotonic()
    runner.start(request)
    loop.exec_()
    heartbeat.stop()
    outcome["seconds"] = time.monotonic() - started
    return outcome


def _layer_bytes(doc: Any) -> dict[str, str]:
    """A fingerprint of every paint layer's pixels (to show that none changed)."""
    import hashlib

    result = {}
    for node in paint_layers(doc):
        data = bytes(node.pixelData(0, 0, doc.width(), doc.height()))
        result[node.name()] = hashlib.sha256(data).hexdigest()
    return result


def _document(exemplar_path: str, width: int, height: int, space: list[str]) -> Any:
    """A white background layer, a layer holding the exemplar and a small top layer; in
    colour model and depth ``space`` when given (Krita converts every layer)."""
    from krita import Krita

    doc = Krita.instance().createDocument(width, height, "esm-test", "RGBA", "U8", "", 72.0)
    doc.setBatchmode(True)
    background = paint_layers(doc)[0]
    background.setPixelData(b"\xff" * (width * height * 4), 0, 0, width, height)
    photo = doc.createNode("photo", "paintlayer")
    doc.rootNode().addChildNode(photo, background)
    photo.setPixelData(rgba_to_bgra(read_raw(exemplar_path)), 0, 0, width, height)
    top = doc.createNode("top", "paintlayer")
    doc.rootNode().addChildNode(top, photo)
    top.setPixelData(b"\x00\x00\xff\x80" * 16, 0, 0, 4, 4)  # something to keep unchanged
    if space:
        model, depth = space
        assert doc.setColorSpace(model, depth, Krita.instance().profiles(model, depth)[0])
    doc.setActiveNode(photo)
    doc.waitForDone()
    return doc, photo


def _wait_for_file(path: str, timeout_s: float) -> None:
    """Lets the event loop run until ``path`` exists (the host test writes it)."""
    from PyQt5.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    deadline = time.monotonic() + timeout_s
    timer = QTimer()
    timer.timeout.connect(lambda: (os.path.exists(path) or time.monotonic() > deadline) and loop.quit())
    timer.start(50)
    loop.exec_()
    timer.stop()
    assert os.path.exists(path), f"{path} did not appear within {timeout_s} s"


def _touch(path: str) -> None:
    open(path, "w").close()


def _select(doc: Any, x: int, y: int, width: int, height: int) -> None:
    from krita import Selection

    selection = Selection()
    selection.select(x, y, width, height, 255)
    doc.setSelection(selection)


@fail_on_exception
def main(args: list[str]) -> None:
    scenario, out_dir, rest = args[0], args[1], args[2:]
    import esm_krita
    from esm_krita import operations
    from esm_client.plugin import CONFIG_NAME, PluginConfig
    from esm_krita.runner import Runner

    config = PluginConfig.load(Path(esm_krita.__file__).parent / CONFIG_NAME, "krita")
    exemplar, width, height, space = rest[0], int(rest[1]), int(rest[2]), rest[3:]
    if space == ["no-autostart"]:
        config, space = PluginConfig(config.endpoint), []
    runner = Runner(config)
    options = operations.Options(**OPTIONS)
    result: dict[str, Any] = {"scenario": scenario, "endpoint": config.endpoint,
                              "start_command": config.start_command}

    doc, node = _document(exemplar, width, height, space)
    result["document_space"] = [doc.colorModel(), doc.colorDepth()]
    before = _layer_bytes(doc)
    if scenario == "fill":
        _select(doc, 24, 20, 16, 12)
        request = operations.prepare_fill(doc, node, options)
    else:
        _select(doc, 8, 8, 48, 48)
        tiles = 2 if scenario == "texture" else 1
        request = operations.prepare_texture(doc, node, replace(options, tiles_x=tiles))
    result["sent"] = {name: [image.width, image.height, image.channels] for name, image in request.images.items()}
    if scenario == "restart":
        long_job = operations.prepare_texture(doc, node, replace(options, width=256, height=256, preset="best"))
        first = _run(runner, long_job, lambda: _touch(os.path.join(out_dir, "running")))
        result["first"] = {"error": first.get("error"), "finished": "images" in first}
        _wait_for_file(os.path.join(out_dir, "restarted"), 240)
    outcome = _run(runner, request, runner.cancel if scenario == "cancel" else None)
    result.update({k: outcome[k] for k in ("progress", "previews", "max_gap_ms", "seconds", "messages")})
    result["error"] = outcome.get("error")
    if "images" in outcome:
        layer = operations.apply_result(request, outcome["images"][0])
        doc.waitForDone()
        result["layer"] = save_layer(doc, layer, out_dir, "layer")
        names = [n.name() for n in paint_layers(doc)]
        result["stack"] = names
        result["above_active"] = names.index(layer.name()) == names.index(node.name()) + 1
    result["unchanged"] = {name: digest == _layer_bytes(doc).get(name) for name, digest in before.items()}
    result["layer_count"] = [len(before), len(paint_layers(doc))]
    write_result(out_dir, result)
    os._exit(0)  # skip Krita's teardown of unsaved documents
