"""Job parameters: the one description of a synthesis job that the CLI, the engine,
the daemon and the plug-ins share.

Standard library only: the plug-ins vendor this package into GIMP's and Krita's
bundled Pythons, which have no numpy or torch.  Every field is validated on construction
by its entry in the schema (esm_contract.schema: kind, range, help), so bad input is
refused with one clear message before any work starts, wherever the job came from, and
an invalid params object cannot exist.  ``to_dict``/``from_dict`` give the wire form
(msgpack-friendly).  The fields every mode shares are declared once, in ``JobParams``;
a mode's class adds its own and overrides the defaults that differ.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Mapping, TypeVar

from .errors import ParamError  # noqa: F401  (raised by this module; callers import it from here too)
from .schema import FILL, LAYER_NAMES, MAX_SIDE, NETWORK, SCHEMAS, TEXTURE, VARIANTS  # noqa: F401  (P.MAX_SIDE)
from .schema import require as _require

ACTIVATIONS = NETWORK["activation"].choices
DOWNSAMPLES = NETWORK["downsample"].choices
INITS = NETWORK["init"].choices
LOSSES = TEXTURE["loss"].choices
MATCHINGS = TEXTURE["matching"].choices
DEVICES = ("auto", "cpu", "cuda", "mps")

# Quality presets offered by the plug-ins: (phases, iterations). "balanced" is the blog's setting.
PRESETS: dict[str, tuple[int, int]] = {"draft": (3, 6), "balanced": (4, 10), "best": (4, 25)}


def _check_fields(params: Any) -> None:
    """Every field of ``params`` by its class's schema (esm_contract.schema.SCHEMAS)."""
    schema = SCHEMAS[type(params).__name__]
    for f in fields(params):
        value = getattr(params, f.name)
        if f.name == "network":
            _require(isinstance(value, NetworkParams), "network must be a map of network parameters")
        else:
            schema[f.name].check(value)


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    _require(value in choices, f"{name} must be one of {', '.join(choices)}; got {value!r}")


def parse_layers(text: str) -> tuple[str, ...]:
    """'3_1,4_1' -> ('3_1', '4_1'); also accepts 'conv3_1'."""
    names = tuple(part.strip().removeprefix("conv") for part in text.split(",") if part.strip())
    _require(bool(names), "layers must name at least one layer, e.g. 3_1,4_1")
    for name in names:
        _choice("layer", name, LAYER_NAMES)
    return names


def parse_size(text: str) -> tuple[int, int]:
    """'512x256' -> (512, 256); '512' -> (512, 512)."""
    parts = text.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ParamError(f"size must look like WIDTHxHEIGHT (e.g. 512x512), got {text!r}") from None
    _require(len(values) in (1, 2), f"size must look like WIDTHxHEIGHT (e.g. 512x512), got {text!r}")
    width, height = (values * 2)[:2]
    return width, height


@dataclass(frozen=True)
class NetworkParams:
    """The random feature extractor (see docs/engine.md for the layer table)."""

    activation: str = "elu"
    downsample: str = "strided"
    units: float = 1.0  # multiplies every layer's unit count (0.25 = quarter units)
    depth: int = 1  # each 3x3 layer repeated this many times
    init: str = "glorot"
    seed: int = 0  # seeds the weights; independent of the synthesis seed

    def __post_init__(self) -> None:
        self.validate()  # an invalid params object cannot exist: every construction checks

    def validate(self) -> None:
        _check_fields(self)


@dataclass(frozen=True)
class JobParams:
    """What every mode shares (esm_contract.schema's OUTPUT, SCHEDULE and STYLE groups, and
    the network). The defaults are texture synthesis's; a mode's class overrides those that
    differ."""

    width: int | None = None  # None: the exemplar's width
    height: int | None = None
    tileable: bool = False
    seed: int = 0
    phases: int = 4
    iterations: int = 10
    style_weight: float = 100.0
    smoothness: float = 0.0  # the reference's 0.1 blurred the fine detail away (docs/quality.md)
    network: NetworkParams = field(default_factory=NetworkParams)

    def __post_init__(self) -> None:
        self.validate()  # an invalid params object cannot exist: every construction checks

    def validate(self) -> None:
        _check_fields(self)


@dataclass(frozen=True)
class SynthesisParams(JobParams):
    """Texture synthesis. The defaults are the best measured configuration (docs/quality.md):
    the blog's Neural Patches settings plus a sliced Wasserstein term on the fine layers and
    one layout phase; ``SYNTHESIS_PRESETS["reference"]`` turns those off (the blog's pipeline)."""

    variety: float = 1.0
    layers: tuple[str, ...] = ("3_1", "4_1")
    loss: str = "patches"
    matching: str = "fast"  # within 5 % of exact's scores, 5x faster at 512x512 (docs/performance.md)
    # the sliced Wasserstein term: fine detail as strong and as frequent as the exemplar's
    swd_weight: float = 100.0
    swd_layers: tuple[str, ...] = ("1_1", "2_1")
    # the first phases match feature distributions only (swd_layers and layers): a new layout;
    # the last phase that runs always has the structure loss, whatever this says
    layout_phases: int = 1
    # ... for outputs smaller than this many times the exemplar's side only: from twice its side the
    # structure loss, kept from copying by the copy penalty, invents the better layout (docs/quality.md)
    layout_below_scale: float = 2.0
    # keeps patches from matching the exemplar at one offset over large regions: no verbatim copies
    copy_penalty: float = 5.0  # near the exemplar's size; esm_core.losses.copies fades it for larger outputs
    # after the optimisation: the fine octaves' values given the exemplar's distribution (sharp grain)
    grain: float = 1.0
    # the first phase's start: "spot", noise with the exemplar's colours and spectrum; "noise", uniform
    # noise (the reference's), which leaves colour speckle and soft blotches (docs/quality.md, eighth round)
    start: str = "spot"
    starts: ClassVar[tuple[str, ...]] = ("spot", "noise")  # the starts this mode can use

    def validate(self) -> None:
        super().validate()
        _require(self.swd_weight == 0 or len(self.swd_layers) > 0, "a swd weight needs at least one swd layer")
        _require(self.layout_phases == 0 or self.swd_weight > 0,
                 "layout phases match feature distributions: they need a swd weight above 0")
        _require(self.start in self.starts, f"start must be {' or '.join(self.starts)}"
                 + (" (copy is a fill's start: a copy of the context around the hole)" if self.start == "copy" else ""))


# Named sets of SynthesisParams values (esm synth --preset). "reference" is the Extreme Style
# Machines blog's pipeline and settings: Neural Patches alone, no distribution term.
SYNTHESIS_PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "reference": {"phases": 4, "iterations": 10, "style_weight": 100.0, "variety": 0.1, "smoothness": 0.1,
                  "swd_weight": 0.0, "layout_phases": 0, "copy_penalty": 0.0, "grain": 0.0, "start": "noise"},
}


P = TypeVar("P")


def to_dict(params: Any) -> dict[str, Any]:
    """Wire form: nested dataclasses become maps, tuples become lists."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return value

    return plain(params)


def from_dict(cls: type[P], data: Mapping[str, Any] | None, base: P | None = None) -> P:
    """Builds and validates ``cls`` from a map; unknown keys are an error, missing keys
    take their values in ``base`` (default: the class defaults). A nested map is merged onto
    the field's default the same way, so ``{"network": {"activation": "relu"}}`` keeps the
    rest of that mode's default network."""
    data = dict(data or {})
    _require(isinstance(data, dict), f"{cls.__name__} must be a map")
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(known))
    _require(not unknown, f"unknown parameter(s): {', '.join(map(str, unknown))}")
    defaults = base if base is not None else cls()
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        default = getattr(defaults, name)
        if dataclasses.is_dataclass(default):
            _require(isinstance(value, Mapping), f"{name} must be a map")
            value = from_dict(type(default), value, default)
        elif isinstance(default, tuple) and isinstance(value, (list, tuple)):
            value = tuple(value)
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        kwargs[name] = value
    return dataclasses.replace(defaults, **kwargs)  # validates (__post_init__)


FILL_OUTPUTS = FILL["output"].choices


@dataclass(frozen=True)
class FillParams(SynthesisParams):
    """Filling a hole (``esm fill``, mode "fill"; docs/fill.md): every SynthesisParams field
    except width/height (the result has the input image's size), plus the context band and
    the form of the result."""

    # exact: fast searches every patch of the canvas however small the hole, and was not measured on fills
    matching: str = "exact"
    variety: float = 0.1  # measured on fills; the texture default (1.0) was not
    smoothness: float = 0.1  # fills keep the reference's smoothness: it hides the hole's border
    swd_weight: float = 0.0  # fills do not use the distribution term (docs/fill.md)
    layout_phases: int = 0
    copy_penalty: float = 0.0  # a hole is small: its matches are kept coherent with the context
    grain: float = 0.0  # a fill gives its hole the grain of the copy it starts from (docs/fill.md)
    start: str = "copy"  # a fill starts from a copy of the context around the hole (docs/fill.md)
    starts: ClassVar[tuple[str, ...]] = ("copy",)
    context: int = 64  # px around the hole whose patches are the style (when no source image)
    output: str = "composite"  # "composite": the whole image, filled; "layer": RGBA, hole only

    def validate(self) -> None:
        _require(self.width is None and self.height is None,
                 "fill takes no width/height: the result has the input image's size")
        super().validate()
        _require(self.loss == "patches", "fill needs loss=patches: the Gram loss cannot be limited to the hole")
        _require(self.swd_weight == 0 and self.layout_phases == 0,
                 "fill does not use the distribution term: swd weight and layout phases must be 0")
        _require(self.copy_penalty == 0, "fill does not use the copy penalty: copy penalty must be 0")
        _require(self.grain == 0, "fill takes its grain from the copy it starts from: grain must be 0")


VARIANT_MODES = VARIANTS["mode"].choices
LEVELS = VARIANTS["levels"].choices
VARIANT_INITS = VARIANTS["init"].choices
MAX_VARIANTS = int(VARIANTS["count"].high)


@dataclass(frozen=True)
class VariantParams(JobParams):
    """Style variants, fantasy styles and style transfer from randomised Gram matrices
    (``esm variants``, mode "variants"; docs/variants.md). Image i of ``count`` has the seed
    ``seed + i``, which draws its randomised Gram targets and its starting noise."""

    mode: str = "variant"
    count: int = 4
    low: float = 0.1  # variant: each eigenvector element times a factor from U[low, high]
    high: float = 1.9
    layers: tuple[str, ...] = ("3_2",)  # the randomised Gram layer(s); one conv3_x layer worked best
    base_layers: tuple[str, ...] = ("1_1",)  # Gram layers kept as the style's (colour, fine grain)
    original: bool = False  # also return the unrandomised style's synthesis, first
    levels: str = "auto"  # per-channel percentile stretch; auto = on for fantasy only
    level_clip: float = 0.5  # percent of each channel clipped at either end
    # JobParams' fields, with the variants' defaults: width/height None = the content's size, else the style's
    phases: int = 3
    iterations: int = 30
    style_weight: float = 1e6
    smoothness: float = 0.1
    # Brick style on a grass photo: edges of content and result correlate 0.58 at 256 px (4_2 and 10,
    # the earlier defaults: -0.02, the grass lost); style clearly applied (docs/variants.md).
    content_weight: float = 1000.0
    content_layer: str = "3_1"
    init: str = "content"  # style transfer starts from the content image or from noise
    batch: int = 8  # images optimised together (one network pass per step); lower it to save memory
    # max pooling: a Gram loss on the strided network gives streaky noise (measured, docs/variants.md)
    network: NetworkParams = field(default_factory=lambda: NetworkParams(downsample="max"))

    def validate(self) -> None:
        super().validate()
        _require(self.seed <= 2**32 - self.count, f"seed must be between 0 and {2**32 - self.count}, got {self.seed}")
        _require(self.high >= self.low, f"high must be >= {self.low}, got {self.high}")
        _require(not set(self.layers) & set(self.base_layers), "a layer cannot be both randomised and a base layer")
