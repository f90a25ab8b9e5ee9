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


def save_layer(node: Any, out_dir: str, name: str) -> dict[str, Any]:
    """The node's pixels within its bounds as raw BGRA (name.bgra) and its geometry."""
    bounds = node.bounds()
    data = bytes(node.pixelData(bounds.x(), bounds.y(), bounds.width(), bounds.height()))
    with open(os.path.join(out_dir, name + ".bgra"), "wb") as file:
        file.write(data)
    return {"name": node.name(), "x": bounds.x(), "y": bounds.y(), "width": bounds.width(),
            "height": bounds.height(), "color_model": node.colorModel(), "color_depth": node.colorDepth()}


def write_result(out_dir: str, result: dict[str, Any]) -> None:
    with open(os.path.join(out_dir, "result.json"), "w") as file:
        json.dump(result, file, indent=1)
