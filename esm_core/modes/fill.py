"""Filling a hole in an image with texture that continues its surroundings (docs/fill.md).

Only the hole's pixels are optimised; every other pixel is held at its known value, and the
result is composed from the input's own bytes outside the hole. The style patches come from
a band of ``context`` pixels around the hole (leaving out every patch that reads a hole
pixel) or from a separate source image; only patches of the image being filled that read a
hole pixel are matched and penalised. The hole starts as a copy of well-matching known
texture, its border blended into the known pixels (``fillstart``); an anchor (``anchor``)
holds its inside there while the patch loss and the smoothness term remove what is left of
the seam, and the copy's pixel-level grain is given back where it is held
(``restore_grain``). Coarse-to-fine as in texture synthesis: at each phase the known pixels
are the image downsampled, and the hole grows to every pixel that the downsampling mixed
with hole content.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from esm_contract.params import FillParams

from ..features.exemplar import image_digest, to_tensor, to_uint8
from ..features.holes import feature_cells, grow, patch_centres, patches_touching, read_mask, shrink
from ..features.networks import layer_scale, normalise_pixels, receptive_radius
from ..features.patches import PATCH
from ..features.resample import finest_octave, resize
from ..images import ImageError, check_image, split_alpha
from ..losses.anchor import AnchorLoss, held_share
from ..losses.objectives import PatchLoss, StyleLayer
from ..optimisation.multiscale import Phase, SizeError, plan_phases
from ..optimisation.phases import run_phases
from ..progress import CancelToken, ProgressCallback, map_previews
from .fillstart import seam_distance, start_image
from .synthesis import Resources, image_loss, min_side_for, style_objective

_LUMA = np.array([0.299, 0.587, 0.114])
ANCHOR_WEIGHT = 10.0  # times the style weight (docs/fill.md: measured on real textures)
ANCHOR_RAMP = 16  # pixels (of each phase) over which the anchor rises from the hole's border


@dataclass
class _Geometry:
    """One phase of a fill: which pixels are free, which current patches are penalised, and
    (context style only) which style patches each usable layer keeps."""

    free: np.ndarray  # (h, w) bool
    select: dict[str, np.ndarray]  # layer -> bool per current patch
    keep: dict[str, np.ndarray]  # layer -> bool per style patch; empty with a source image
    band: int  # width of the context band at this phase, in its pixels

    def layers(self, from_source: bool) -> list[str]:
        return list(self.select) if from_source else [name for name, keep in self.keep.items() if keep.any()]


def footprint(params: FillParams) -> int:
    """Pixels that one 3x3 feature patch of the deepest layer spans, receptive field included."""
    return max(PATCH * layer_scale(n) + 2 * receptive_radius(n, params.network) for n in params.layers)


def work_area(hole: np.ndarray, params: FillParams, min_side: int) -> tuple[slice, slice]:
    """The part of the image that the fill reads: the hole's bounding box grown by the
    context band and one patch footprint (the whole image when tileable)."""
    height, width = hole.shape
    if params.tileable:
        return slice(0, height), slice(0, width)
    margin = params.context + footprint(params)
    rows, cols = np.nonzero(hole.any(axis=1))[0], np.nonzero(hole.any(axis=0))[0]

    def span(first: int, last: int, limit: int) -> slice:
        start, stop = max(0, first - margin), min(limit, last + 1 + margin)
        missing = max(0, min(min_side, limit) - (stop - start))  # keep at least min_side when possible
        start = max(0, start - missing)
        return slice(start, min(limit, max(stop, start + min(min_side, limit))))

    return span(rows[0], rows[-1], height), span(cols[0], cols[-1], width)


def match_channels(source: np.ndarray, channels: int) -> np.ndarray:
    """The source's colour (alpha dropped) with the image's channel count: grey is
    replicated, colour becomes luma (ITU-R BT.601)."""
    colour, _ = split_alpha(source)
    if colour.shape[2] == channels:
        return colour
    if channels == 3:
        return np.repeat(colour, 3, axis=2)
    return np.clip(np.round(colour @ _LUMA), 0, 255).astype(np.uint8)[..., None]


def _geometry(hole: np.ndarray, phase: Phase, params: FillParams, from_source: bool) -> _Geometry:
    circular = params.tileable
    free = shrink(hole, phase.size, circular)
    band = max(round(params.context * phase.factor), footprint(params))
    ring = grow(free, band, circular) & ~free
    select: dict[str, np.ndarray] = {}
    keep: dict[str, np.ndarray] = {}
    for name in params.layers:
        scale, radius = layer_scale(name), receptive_radius(name, params.network)
        select[name] = patches_touching(feature_cells(free, scale, radius, circular), circular)
        if not from_source:  # style features are taken without wrapping, like an exemplar's
            reads_hole = patches_touching(feature_cells(free, scale, radius, False), False)
            keep[name] = ~reads_hole & patch_centres(feature_cells(ring, scale, 0, False))
    return _Geometry(free, select, keep, band)


def _context_style(
    resources: Resources, known: torch.Tensor, geometry: _Geometry, params: FillParams, key: tuple,
) -> dict[str, StyleLayer]:
    """The style patches of the band around the hole, per usable layer (cached)."""
    layers = geometry.layers(from_source=False)
    net = resources.network(params.network)

    def create() -> dict[str, StyleLayer]:
        with torch.no_grad():
            features = net(normalise_pixels(known), tuple(layers))
        return {name: StyleLayer.from_features(features[name], torch.from_numpy(geometry.keep[name]).to(known.device))
                for name in layers}

    return resources.cached(key, create)


def fill_hole(
    resources: Resources,
    image: np.ndarray,
    mask: np.ndarray,
    params: FillParams,
    source: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """``image`` (uint8 HxWxC) with the pixels where ``mask`` >= 128 replaced by new texture;
    as the whole image (``params.output`` "composite") or as an RGBA layer holding only the
    hole ("layer"). See docs/fill.md."""
    image = check_image(image, "image")
    hole = read_mask(mask, image.shape[:2])
    colour, _ = split_alpha(image)
    exemplar = None if source is None else match_channels(check_image(source, "source"), colour.shape[2])
    if exemplar is None and hole.all():
        raise ImageError("the mask covers the whole image: there is no surrounding texture to continue "
                         "(give a source image)")
    min_side = min_side_for(params)
    if min(image.shape[:2]) < min_side:
        raise SizeError(f"image {image.shape[1]}x{image.shape[0]} is too small for these layers: "
                        f"at least {min_side}x{min_side}")
    rows, cols = work_area(hole, params, min_side)
    area, area_hole = colour[rows, cols], hole[rows, cols]
    size = (area.shape[1], area.shape[0])
    # tileable: strided layers wrap exactly only at multiples of the deepest stride
    stride = max(layer_scale(name) for name in params.layers)
    align = stride if params.tileable and size[0] % stride == 0 and size[1] % stride == 0 else 1
    style_size = size if exemplar is None else (exemplar.shape[1], exemplar.shape[0])
    plan = plan_phases(size, style_size, params.phases, min_side, align)
    geometries = {p.index: _geometry(area_hole, p, params, exemplar is not None) for p in plan}
    usable = [p for p in plan if geometries[p.index].layers(exemplar is not None)]
    if not usable or usable[-1] != plan[-1]:
        raise ImageError("not enough known pixels around the hole for these layers: "
                         "give a larger context or a source image")
    geometries = {i: geometries[p.index] for i, p in enumerate(usable)}
    plan = [dataclasses.replace(p, index=i) for i, p in enumerate(usable)]

    device = resources.device
    area_pixels = to_tensor(area, device)
    digest = (image_digest(area), image_digest(area_hole.astype(np.uint8)))
    start_pixels, pieces = start_image(area, area_hole, exemplar, footprint(params), params.tileable, params.seed)
    start = to_tensor(start_pixels, device)
    seams = seam_distance(pieces, params.tileable).astype(np.float32)
    depth = torch.from_numpy(seams)[None, None]
    net = resources.network(params.network)

    def known_pixels(phase: Phase) -> torch.Tensor:
        return resize(area_pixels, *phase.size, circular=params.tileable).clamp(0, 255)

    def known(phase: Phase) -> tuple[torch.Tensor, torch.Tensor]:
        free = torch.from_numpy(geometries[phase.index].free).to(device)[None, None]
        return known_pixels(phase), free

    def initial(phase: Phase) -> torch.Tensor:
        return resize(start, *phase.size, circular=params.tileable).clamp(0, 255)

    def make_loss(phase: Phase) -> Callable[[torch.Tensor], torch.Tensor]:
        geometry = geometries[phase.index]
        layers = geometry.layers(exemplar is not None)
        select = {name: torch.from_numpy(geometry.select[name]).to(device) for name in layers}
        if exemplar is None:
            key = ("fill-context", *digest, params.network, params.layers, phase.size, geometry.band,
                   params.tileable)
            style: Callable[[dict[str, torch.Tensor]], torch.Tensor] = PatchLoss(
                _context_style(resources, known_pixels(phase), geometry, params, key), params.style_weight,
                params.variety, circular=params.tileable, select=select,
                matcher=resources.matcher(params.matching))
        else:
            style = style_objective(resources, exemplar, phase, params, select=select)
        with torch.no_grad():
            held = net(normalise_pixels(initial(phase)), params.layers, circular=params.tileable)
        # seam distances in this phase's pixels (area average, so a shrunken seam stays near 0)
        phase_depth = torch.nn.functional.adaptive_avg_pool2d(depth, phase.size[::-1])[0, 0].numpy() * phase.factor
        anchor = AnchorLoss(held, phase_depth, geometry.free,
                            {n: (layer_scale(n), receptive_radius(n, params.network)) for n in params.layers},
                            ANCHOR_RAMP, ANCHOR_WEIGHT * params.style_weight, params.tileable)
        # Smoothness as a mean over the hole, not the whole image: the same balance against
        # the style loss (a mean over the hole's patches) as in texture synthesis.
        spread = geometry.free.size / max(1, int(geometry.free.sum()))
        return image_loss(resources, lambda features: style(features) + anchor(features),
                          dataclasses.replace(params, smoothness=params.smoothness * spread))

    def finish(filled: np.ndarray) -> np.ndarray:
        return _compose(image, hole, rows, cols, filled, params.output)

    def full_size(preview: np.ndarray) -> np.ndarray:
        return finish(to_uint8(resize(to_tensor(preview, device), *size, circular=params.tileable)))

    pixels = run_phases(resources, plan, colour.shape[2], params.seed, make_loss, params.iterations,
                        params.tileable, map_previews(progress, full_size), cancel, known, initial)
    share = torch.from_numpy(held_share(seams, ANCHOR_RAMP))[None, None].to(device)
    return finish(to_uint8(restore_grain(pixels, initial(plan[-1]), share, params.tileable)))


def restore_grain(result: torch.Tensor, start: torch.Tensor, held: torch.Tensor, circular: bool) -> torch.Tensor:
    """``result`` with the finest octave it lost from ``start`` given back in proportion to
    ``held`` (the anchor's weight, 0 at the seams, 1 inside the copy): the anchor holds the
    copy's features but not its pixel-level grain, which the optimisation lets fade (measured,
    docs/fill.md: the hole's fine-detail RMS 0.95 of the photo's at the start, 0.81 after)."""
    return result + held * finest_octave(start - result, circular)


def _compose(image: np.ndarray, hole: np.ndarray, rows: slice, cols: slice, filled: np.ndarray,
             output: str) -> np.ndarray:
    """The result from the input's own bytes and the filled work area's hole pixels."""
    channels = filled.shape[2]
    colour = image[..., :channels].copy()
    area = colour[rows, cols]
    area_hole = hole[rows, cols]
    area[area_hole] = filled[area_hole]
    if output == "layer":
        layer = np.zeros(image.shape[:2] + (4,), np.uint8)
        layer[hole, :3] = colour[hole]  # grey broadcasts to the three colour channels
        layer[hole, 3] = 255
        return layer
    result = image.copy()
    result[..., :channels] = colour
    if image.shape[2] in (2, 4):
        result[hole, -1] = 255  # alpha is not synthesised: the filled hole is opaque
    return result
