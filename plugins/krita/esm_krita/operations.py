"""The plug-in's two operations as daemon jobs: what to send for the active document, and
how the result becomes a layer.

- Tileable texture: the selection's bounding box (or, without a selection, the active
  layer) is the exemplar; the result, ``tiles_x`` x ``tiles_y`` copies of a tileable
  texture of the chosen size, becomes a new layer at the exemplar's top-left corner.
- Fill: the selection is the hole; the active layer around it (a margin as wide as the
  hole's longer side, at least 16 pixels, clipped to the canvas) is what the daemon sees
  and where the style comes from (the fill mode's ``context``); the result is a new layer
  that covers the hole and is transparent elsewhere.
Both new layers go directly above the active layer; nothing else in the document changes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from esm_contract.jobs import parse_job
from esm_client.plugin import DEFAULT_PRESET, PluginError, fill_margin, preset_fields
from esm_client.protocol import RawImage
from esm_contract.errors import ParamError
from esm_contract.params import SynthesisParams

from . import document, pixels
from .document import Region

_TEXTURE = SynthesisParams()
TEXTURE = "texture"
FILL = "fill"


@dataclass(frozen=True)
class Options:
    """The docker's settings (persisted in kritarc by settings.py)."""

    width: int = 256
    height: int = 256
    tiles_x: int = 1
    tiles_y: int = 1
    seed: int = 0
    preset: str = DEFAULT_PRESET
    variety: float = _TEXTURE.variety  # the engine's defaults (esm_contract.params)
    style_weight: float = _TEXTURE.style_weight

    def synthesis_fields(self) -> dict[str, Any]:
        """What fills and textures share. Variety is the texture's alone: fills keep the fill
        mode's own, measured default (esm_contract.params.FillParams; docs/krita.md)."""
        return {"seed": self.seed, **preset_fields(self.preset), "style_weight": float(self.style_weight)}

    def texture_fields(self) -> dict[str, Any]:
        return {**self.synthesis_fields(), "variety": float(self.variety)}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Request:
    """A job ready to submit, plus where its result goes."""

    mode: str
    params: dict[str, Any]
    images: dict[str, RawImage]
    doc: Any
    above: Any  # the layer the result goes above
    region: Region  # where the result layer's pixels go
    space: tuple[str, str, str]  # colour space of the pixels sent (8-bit RGBA)
    layer_name: str
    tiles: tuple[int, int] = (1, 1)

    @property
    def tileable(self) -> bool:
        return self.mode == TEXTURE


def _validated(mode: str, params: dict[str, Any], images: dict[str, RawImage]) -> dict[str, Any]:
    """Refuses bad parameters here, with the same messages the daemon would send."""
    try:
        parse_job(mode, params, images)
    except ParamError as error:
        raise PluginError(f"Invalid setting: {error}.") from None
    return params


def _wire_image(bgra: bytes, region: Region) -> RawImage:
    """RGB when every pixel is opaque (the engine then keeps the result opaque), else RGBA."""
    rgba = pixels.swap_red_blue(bgra)
    if pixels.is_opaque(bgra):
        return RawImage(region.width, region.height, 3, bytes(pixels.rgba_to_rgb(rgba)))
    return RawImage(region.width, region.height, 4, bytes(rgba))


def prepare_texture(doc: Any, node: Any, options: Options) -> Request:
    source = document.selection_region(doc) or document.layer_region(doc, node)
    exemplar = _wire_image(document.read_bgra(node, source), source)
    params = {"width": options.width, "height": options.height, "tileable": True, **options.texture_fields()}
    images = {"exemplar": exemplar}
    tiles = (options.tiles_x, options.tiles_y)
    if min(tiles) < 1:
        raise PluginError("Tiles in X and Y must be at least 1.")
    target = Region(source.x, source.y, options.width * tiles[0], options.height * tiles[1])
    name = f"ESM texture {options.width}x{options.height} seed {options.seed}"
    return Request(TEXTURE, _validated(TEXTURE, params, images), images, doc, node, target,
                   document.working_space(node), name, tiles)


def fill_region(doc: Any, hole: Region) -> Region:
    """The hole's bounding box grown by ``fill_margin`` (esm_client.plugin), clipped to the
    canvas."""
    margin = fill_margin(hole.width, hole.height)
    x0, y0 = max(hole.x - margin, 0), max(hole.y - margin, 0)
    x1 = min(hole.x + hole.width + margin, doc.width())
    y1 = min(hole.y + hole.height + margin, doc.height())
    return Region(x0, y0, x1 - x0, y1 - y0)


def prepare_fill(doc: Any, node: Any, options: Options) -> Request:
    hole = document.selection_region(doc)
    if hole is None:
        raise PluginError("Select the area to fill first.")
    area = fill_region(doc, hole)
    mask = document.selection_mask(doc, area)
    if mask.count(0) == 0:
        raise PluginError("The selection covers everything around it; leave some unselected "
                          "pixels for the fill to learn from.")
    images = {"image": _wire_image(document.read_bgra(node, area), area),
              "mask": RawImage(area.width, area.height, 1, mask)}
    params = {**options.synthesis_fields(), "context": fill_margin(hole.width, hole.height), "output": "layer"}
    name = f"ESM fill seed {options.seed}"
    return Request(FILL, _validated(FILL, params, images), images, doc, node, area,
                   document.working_space(node), name)


def apply_result(request: Request, image: RawImage) -> Any:
    """Adds the job's result as a new layer; returns the node."""
    if not _is_open(request.doc):
        raise PluginError("The document was closed before the result arrived.")
    if request.mode == TEXTURE:
        expected = (request.region.width // request.tiles[0], request.region.height // request.tiles[1])
    else:
        expected = (request.region.width, request.region.height)
    if (image.width, image.height) != expected:
        raise PluginError(f"The daemon returned {image.width}x{image.height} pixels, "
                          f"expected {expected[0]}x{expected[1]}.")
    bgra = pixels.to_bgra(image.data, image.channels)
    if request.tiles != (1, 1):
        bgra = pixels.repeat(bgra, image.width, image.height, 4, *request.tiles)
    above = request.above if request.above.parentNode() is not None else _top_layer(request.doc)
    return document.add_layer(request.doc, above, request.layer_name, bgra, request.region, request.space)


def _is_open(doc: Any) -> bool:
    from krita import Krita

    return any(open_doc == doc for open_doc in Krita.instance().documents())


def _top_layer(doc: Any) -> Any:
    """When the original layer was deleted meanwhile: the top of the layer stack."""
    children = doc.rootNode().childNodes()
    if not children:
        raise PluginError("The document has no layers left.")
    return children[-1]
