"""kritarunner driver: the plug-in's core (reading the document, the daemon job through the
plug-in's Runner, the new layer) on a real Krita document, without the GUI.

    kritarunner -s krita_core -f main SCENARIO OUT_DIR [ARG...]

Scenarios: texture (RGBA/U8 document from a raw exemplar), texture_converted (an image
file Krita opens in another colour model/depth, converted both ways), fill, cancel,
down (no daemon). The plug-in comes from the installer's output on PYTHONPATH; the
endpoint from $ESM_ENDPOINT (as the plug-in reads it)."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from in_krita import fail_on_exception, paint_layers, read_raw, rgba_to_bgra, save_layer, write_result

OPTIONS = {"width": 64, "height": 64, "seed": 3, "preset": "draft"}


def _run(runner: Any, request: Any, cancel_on_progress: bool = False) -> dict[str, Any]:
    """Runs the job in a local Qt event loop, the way Krita's main loop drives the plug-in;
    also counts how often the loop turned (it must keep turning while the job runs)."""
    from PyQt5.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    outcome: dict[str, Any] = {"progress": 0, "previews": 0, "ticks": 0, "messages": []}

    def on_progress(_: Any, event: Any) -> None:
        outcome["progress"] += 1
        outcome["previews"] += event.preview is not None
        if cancel_on_progress and outcome["progress"] == 1:
            runner.cancel()

    def on_finished(_: Any, images: Any) -> None:
        outcome["images"] = images
        loop.quit()

    def on_failed(_: Any, text: str) -> None:
        outcome["error"] = text
        loop.quit()

    def tick() -> None:
        outcome["ticks"] += 1

    runner.progress.connect(on_progress)
    runner.finished.connect(on_finished)
    runner.failed.connect(on_failed)
    runner.message.connect(outcome["messages"].append)
    heartbeat = QTimer()
    heartbeat.timeout.connect(tick)
    heartbeat.start(100)
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


def _document(args: list[str]) -> Any:
    """An RGBA/U8 document: a white background layer and a layer holding the exemplar."""
    from krita import Krita

    exemplar_path, width, height = args[0], int(args[1]), int(args[2])
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
    doc.setActiveNode(photo)
    doc.waitForDone()
    return doc, photo


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
    from esm_krita.config import DaemonConfig
    from esm_krita.runner import Runner

    config = DaemonConfig.load(Path(esm_krita.__file__).parent)
    if scenario == "down" and rest and rest[0] == "no-autostart":
        config = DaemonConfig(config.endpoint)
    runner = Runner(config)
    options = operations.Options(**OPTIONS)
    result: dict[str, Any] = {"scenario": scenario, "endpoint": config.endpoint,
                              "start_command": config.start_command}

    if scenario == "texture_converted":
        from krita import Krita

        doc = Krita.instance().openDocument(rest[0])
        doc.setBatchmode(True)
        node = paint_layers(doc)[0]
        doc.setActiveNode(node)
        result["document_space"] = [doc.colorModel(), doc.colorDepth()]
    else:
        doc, node = _document(rest)
    before = _layer_bytes(doc)
    if scenario == "fill":
        _select(doc, 24, 20, 16, 12)
        request = operations.prepare_fill(doc, node, options)
    else:
        _select(doc, 8, 8, 48, 48)
        request = operations.prepare_texture(doc, node, options.with_(tiles_x=2) if scenario == "texture" else options)
    result["sent"] = {name: [image.width, image.height, image.channels] for name, image in request.images.items()}
    outcome = _run(runner, request, cancel_on_progress=scenario == "cancel")
    result.update({k: outcome[k] for k in ("progress", "previews", "ticks", "seconds", "messages")})
    result["error"] = outcome.get("error")
    if "images" in outcome:
        layer = operations.apply_result(request, outcome["images"][0])
        doc.waitForDone()
        result["layer"] = save_layer(layer, out_dir, "layer")
        names = [n.name() for n in paint_layers(doc)]
        result["stack"] = names
        result["above_active"] = names.index(layer.name()) == names.index(node.name()) + 1
    result["unchanged"] = {name: digest == _layer_bytes(doc).get(name) for name, digest in before.items()}
    result["layer_count"] = [len(before), len(paint_layers(doc))]
    write_result(out_dir, result)
    os._exit(0)  # skip Krita's teardown of unsaved documents
