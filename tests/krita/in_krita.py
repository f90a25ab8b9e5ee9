"""Helpers for the scripts that run inside Krita (kritarunner and the GUI): no pytest, no
numpy (Krita's Python has neither). Results go to OUT_DIR as JSON plus raw pixel files
that the host-side tests read back."""
from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any, Callable


def fail_on_exception(function: Callable[..., Any]) -> Callable[..., Any]:
    """kritarunner exits 0 even when the function raises: print the traceback, exit 1."""

    def wrapper(*args: Any) -> Any:
        try:
            return function(*args)
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(1)

    return wrapper


def read_raw(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def rgba_to_bgra(data: bytes) -> bytes:
    out = bytearray(data)
    out[0::4] = data[2::4]
    out[2::4] = data[0::4]
    return bytes(out)


def paint_layers(doc: Any) -> list[Any]:
    """Paint layers bottom to top (a selection adds a "Selection Mask" node: skip it)."""
    return [n for n in doc.rootNode().childNodes() if n.type() == "paintlayer"]


def save_layer(doc: Any, node: Any, out_dir: str, name: str) -> dict[str, Any]:
    """The node's pixels within its bounds as raw 8-bit sRGB BGRA (name.bgra) and its
    geometry. Other colour spaces are converted by Krita on a clone of the document (not
    the plug-in's own conversion code)."""
    bounds = node.bounds()
    info = {"name": node.name(), "x": bounds.x(), "y": bounds.y(), "width": bounds.width(),
            "height": bounds.height(), "color_model": node.colorModel(), "color_depth": node.colorDepth()}
    clone = None
    if (node.colorModel(), node.colorDepth()) != ("RGBA", "U8"):
        clone = doc.clone()
        assert clone.setColorSpace("RGBA", "U8", "sRGB-elle-V2-srgbtrc.icc")
        clone.waitForDone()
        node = clone.nodeByUniqueID(node.uniqueId())
    data = bytes(node.pixelData(bounds.x(), bounds.y(), bounds.width(), bounds.height()))
    if clone is not None:
        clone.close()
    with open(os.path.join(out_dir, name + ".bgra"), "wb") as file:
        file.write(data)
    return info


def write_result(out_dir: str, result: dict[str, Any]) -> None:
    with open(os.path.join(out_dir, "result.json"), "w") as file:
        json.dump(result, file, indent=1)


def run_steps(steps: Any, timeout_s: float = 120.0) -> None:
    """Drives a generator from Krita's event loop: each ``yield condition`` returns to the
    loop (the GUI only updates then) and resumes once ``condition()`` is true. A condition
    that stays false for ``timeout_s`` raises (the test hook turns that into exit 2)."""
    import time

    from PyQt5.QtCore import QTimer

    def advance() -> None:
        try:
            condition = next(steps)
        except StopIteration:
            return
        wait(condition, time.monotonic())

    def wait(condition: Callable[[], bool], since: float) -> None:
        if condition():
            advance()
        elif time.monotonic() - since > timeout_s:
            code = condition.__code__
            raise TimeoutError(f"condition at {code.co_filename}:{code.co_firstlineno} not met within {timeout_s} s")
        else:
            QTimer.singleShot(50, lambda: wait(condition, since))

    advance()
