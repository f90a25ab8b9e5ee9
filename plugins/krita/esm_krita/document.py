"""Reading pixels from and writing layers into a Krita document.

Everything the daemon sees is 8-bit RGBA in Krita's B, G, R, A byte order (see pixels.py).
Layers in other colour models or depths (grey, CMYK, Lab, 16-bit, float, ...) are converted
through a temporary document, which Krita converts with its own colour management; the new
layer is converted back into its document's colour space the same way. A model Krita
cannot convert is refused with a message naming it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from krita import Krita

from esm_client.plugin import PluginError

WORKING_SPACE = ("RGBA", "U8", "sRGB-elle-V2-srgbtrc.icc")
PIXEL_LAYERS = ("paintlayer", "grouplayer", "filelayer", "clonelayer", "vectorlayer", "filllayer")


@dataclass(frozen=True)
class Region:
    x: int
    y: int
    width: int
    height: int


def active_target() -> tuple[Any, Any]:
    """(document, active layer) of the active window, or a PluginError saying what is missing."""
    app = Krita.instance()
    doc = app.activeDocument()
    if doc is None:
        raise PluginError("Open a document first.")
    node = doc.activeNode()
    if node is None:
        raise PluginError("Select a layer first.")
    if node.type() not in PIXEL_LAYERS:
        raise PluginError(f"The active node is a {node.type()}; select a pixel layer instead.")
    return doc, node


def space_of(node: Any) -> tuple[str, str, str]:
    return node.colorModel(), node.colorDepth(), node.colorProfile()


def working_space(node: Any) -> tuple[str, str, str]:
    """8-bit RGBA in the layer's own profile when it already is 8-bit RGBA, else sRGB."""
    space = space_of(node)
    return space if space[:2] == WORKING_SPACE[:2] else WORKING_SPACE


def selection_region(doc: Any) -> Region | None:
    """The selection's bounding box clipped to the canvas; None without a selection."""
    selection = doc.selection()
    if selection is None or selection.width() <= 0 or selection.height() <= 0:
        return None
    x0, y0 = max(selection.x(), 0), max(selection.y(), 0)
    x1 = min(selection.x() + selection.width(), doc.width())
    y1 = min(selection.y() + selection.height(), doc.height())
    if x1 <= x0 or y1 <= y0:
        raise PluginError("The selection lies outside the canvas.")
    return Region(x0, y0, x1 - x0, y1 - y0)


def layer_region(doc: Any, node: Any) -> Region:
    """The layer's painted area clipped to the canvas."""
    bounds = node.bounds()
    x0, y0 = max(bounds.x(), 0), max(bounds.y(), 0)
    x1 = min(bounds.x() + bounds.width(), doc.width())
    y1 = min(bounds.y() + bounds.height(), doc.height())
    if x1 <= x0 or y1 <= y0:
        raise PluginError(f"The layer \"{node.name()}\" is empty; paint on it or select another one.")
    return Region(x0, y0, x1 - x0, y1 - y0)


def selection_mask(doc: Any, region: Region) -> bytes:
    """One byte per pixel of ``region``: 0 outside the selection, up to 255 inside."""
    return bytes(doc.selection().pixelData(region.x, region.y, region.width, region.height))


def convert(data: bytes, width: int, height: int, source: tuple[str, str, str],
            target: tuple[str, str, str]) -> bytes:
    """Pixels from colour space ``source`` to ``target`` ((model, depth, profile) each)."""
    if source == target:
        return data
    app = Krita.instance()
    temp = app.createDocument(width, height, "esm-convert", *source, 72.0)
    if temp is None:
        raise PluginError(f"Krita cannot hold {source[0]}/{source[1]} pixels for conversion.")
    try:
        temp.setBatchmode(True)
        layer = temp.rootNode().childNodes()[0]
        layer.setPixelData(data, 0, 0, width, height)
        if not temp.setColorSpace(*target):
            raise PluginError(f"Krita cannot convert {source[0]}/{source[1]} to {target[0]}/{target[1]}; "
                              f"convert the image to 8-bit RGBA (Image > Convert Image Color Space).")
        temp.waitForDone()
        return bytes(layer.pixelData(0, 0, width, height))
    finally:
        temp.close()


def read_bgra(node: Any, region: Region) -> bytes:
    """The layer's pixels in ``region`` as 8-bit BGRA in ``working_space(node)``."""
    args = (region.x, region.y, region.width, region.height)
    data = bytes(node.pixelData(*args) if node.type() == "paintlayer" else node.projectionPixelData(*args))
    return convert(data, region.width, region.height, space_of(node), working_space(node))


def add_layer(doc: Any, above: Any, name: str, bgra: bytes, region: Region,
              space: tuple[str, str, str]) -> Any:
    """A new paint layer directly above ``above`` holding ``bgra`` (8-bit, colour space
    ``space``) at ``region``; returns the node."""
    layer = doc.createNode(name, "paintlayer")
    above.parentNode().addChildNode(layer, above)
    data = convert(bgra, region.width, region.height, space, space_of(layer))
    layer.setPixelData(data, region.x, region.y, region.width, region.height)
    doc.refreshProjection()
    return layer
