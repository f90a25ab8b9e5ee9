"""The parameter schema: every job parameter once, with its kind, range, help and group.

Validation (esm_contract.params), the CLI's flags (esm_cli.options), the plug-ins' argument
ranges (esm_client.plugin.ranges) and the docs' parameter tables (checked by
tests/test_schema.py) all come from here. A parameter's default is its dataclass field's
(esm_contract.params), so each mode keeps its own. Shared groups (OUTPUT, SCHEDULE, STYLE)
mean the same in every mode; a mode's own group lists its own parameters.
Standard library only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import ParamError

# Layer names follow the reference table: "<block>_<index>", e.g. "3_1" is conv3_1.
LAYER_NAMES = ("1_1", "1_2", "2_1", "2_2", "3_1", "3_2", "3_3", "4_1", "4_2", "4_3")
MAX_SIDE = 8192  # a hard sanity bound; the daemon enforces its own (smaller) pixel limits
MAX_SEED = 2**32 - 1
# The style losses (esm_core.losses.STYLE_LOSSES builds them) and the feature positions per side
# one style sample spans (3x3 patches; one position), which set the smallest image: the CLI
# checks sizes with these before torch loads (tests/test_architecture.py holds them to the engine's).
STYLE_SAMPLES = {"patches": 3, "gram": 1}


def require(ok: bool, message: str) -> None:
    if not ok:
        raise ParamError(message)


@dataclass(frozen=True)
class Param:
    """One parameter. ``kind``: "int", "float", "bool", "choice", "layers" (a tuple of layer
    names), "layer" (one name) or "size" (an int or None: the input's). ``low``/``high``
    bound numbers (None: unbounded); ``ui_high`` is the plug-ins' slider or spin-box maximum
    where ``high`` is None; ``label`` names it in messages (default: the name, spaced)."""

    name: str
    kind: str
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    ui_high: float | None = None
    label: str = ""
    min_count: int = 0  # "layers": how many names at least

    @property
    def text(self) -> str:
        return self.label or self.name.replace("_", " ")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def check(self, value: Any) -> None:
        """Raises ParamError naming the parameter when ``value`` is not allowed."""
        name = self.text
        if self.kind == "size":
            if value is not None:
                Param(self.name, "int", "", 1, MAX_SIDE).check(value)
        elif self.kind == "int":
            require(isinstance(value, int) and not isinstance(value, bool), f"{name} must be an integer, got {value!r}")
            require(self.low <= value <= self.high, f"{name} must be between {self.low} and {self.high}, got {value}")
        elif self.kind == "float":
            require(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
                    f"{name} must be a finite number, got {value!r}")
            require(self.low is None or value >= self.low, f"{name} must be >= {self.low}, got {value}")
            require(self.high is None or value <= self.high, f"{name} must be <= {self.high}, got {value}")
        elif self.kind == "bool":
            require(isinstance(value, bool), f"{name} must be true or false")
        elif self.kind in ("choice", "layer"):
            choices = self.choices or LAYER_NAMES
            require(value in choices, f"{name} must be one of {', '.join(choices)}; got {value!r}")
        elif self.kind == "layers":
            require(isinstance(value, tuple), f"{name} must be a list of layers")
            require(len(value) >= self.min_count, f"{name} must name at least one layer")
            for layer in value:
                require(layer in LAYER_NAMES, f"layer must be one of {', '.join(LAYER_NAMES)}; got {layer!r}")
        else:
            raise AssertionError(f"unknown kind {self.kind!r}")


def _group(*params: Param) -> dict[str, Param]:
    return {param.name: param for param in params}


# -- shared groups: the same meaning in every mode
OUTPUT = _group(
    Param("width", "size", "output width in pixels; none: the input's"),
    Param("height", "size", "output height in pixels; none: the input's"),
    Param("tileable", "bool", "make the output tile seamlessly"),
    Param("seed", "int", "seed of the random start: same seed and settings, same result", 0, MAX_SEED),
)
SCHEDULE = _group(
    Param("phases", "int", "scales, coarse to fine, at most: a scale whose image or exemplar would be smaller "
                           "than the layers need is skipped", 1, 8),
    Param("iterations", "int", "L-BFGS loss evaluations per phase", 1, 10_000),
)
STYLE = _group(
    Param("style_weight", "float", "weight of the style loss", 0, ui_high=1e6),
    Param("smoothness", "float", "total-variation weight (less noise)", 0, ui_high=100.0),
)
NETWORK = _group(
    Param("activation", "choice", "activation after every convolution", choices=("elu", "relu", "lrelu")),
    Param("downsample", "choice", "down-sampling between blocks", choices=("strided", "avg", "max")),
    Param("units", "float", "unit-count multiplier", 1 / 48, 16),
    Param("depth", "int", "repeats of each 3x3 layer", 1, 3),
    Param("init", "choice", "weight initialisation", choices=("glorot", "orthogonal")),
    Param("seed", "int", "seed of the weights, independent of the synthesis seed", 0, MAX_SEED,
          label="network seed"),
)

# -- each mode's own parameters
TEXTURE = _group(
    Param("variety", "float", "penalty on reusing the same style patches", 0, ui_high=100.0),
    Param("layers", "layers", "style layers", min_count=1),
    Param("loss", "choice", "style loss: patches (Neural Patches) or gram (Gram matrices)",
          choices=tuple(STYLE_SAMPLES)),
    Param("matching", "choice", "patch nearest-neighbour search: exact = brute force (the reference), fast = "
                                "approximate PatchMatch search, as good with variety and 6.5x faster at 512x512 on a "
                                "2-core Xeon (5.5x on a 2-core EPYC: it depends on the machine); with variety 0 "
                                "prefer exact (docs/performance.md)", choices=("exact", "fast")),
    Param("swd_weight", "float", "weight of the sliced Wasserstein term that gives the swd layers the "
                                 "exemplar's feature distribution: sharp, even detail; 0 = off", 0),
    Param("swd_layers", "layers", "layers of the sliced Wasserstein term"),
    Param("layout_phases", "int", "first phases that match feature distributions only, which invents a new "
                                  "layout instead of rebuilding the exemplar's; the last phase never does", 0, 8),
    Param("layout_below_scale", "float", "layout phases run only for outputs whose area is under this value "
                                         "squared times the exemplar's (2: under twice its side); larger "
                                         "outputs start with the structure loss, which keeps more of the exemplar's "
                                         "shapes, and the copy penalty keeps them from copying", 0, ui_high=16.0),
    Param("copy_penalty", "float", "how strongly patches are kept from matching the exemplar at one offset over "
                                   "large regions, which would copy it verbatim, in every phase that matches "
                                   "patches but the last (docs/engine.md); 0 = off. The value applies near the "
                                   "exemplar's size and falls to two fifths of it at twice the exemplar's side "
                                   "and beyond", 0),
    Param("grain", "float", "after the optimisation, how far the fine detail (up to the finest three octaves) is "
                            "moved to the exemplar's distribution of values along its principal colour axes: sharp "
                            "grain and shading where the optimisation left them soft, clean where it left speckle "
                            "(docs/engine.md); 0 = off, 1 = fully", 0, 1),
    Param("start", "choice", "the first phase's start image: spot = noise with the exemplar's colours and "
                             "spectrum (random-phase noise), noise = uniform noise (the reference's), copy = a "
                             "copy of the context around the hole (fills only, and always)",
          choices=("spot", "noise", "copy")),
)
FILL = _group(
    Param("context", "int", "width in pixels of the band around the hole whose patches are the style", 1, MAX_SIDE),
    Param("output", "choice", "composite: the whole image, filled; layer: RGBA, the hole only",
          choices=("composite", "layer")),
)
VARIANTS = _group(
    Param("mode", "choice", "variant: eigenvector elements times random factors; fantasy: random "
                            "eigenvectors; none: the style's own Gram matrix", choices=("variant", "fantasy", "none")),
    Param("count", "int", "images per mode", 1, 64),
    Param("low", "float", "variant: the random factors' lower bound", 0),
    Param("high", "float", "variant: the random factors' upper bound (>= low)", 0),
    Param("layers", "layers", "randomised Gram layer(s)", min_count=1),
    Param("base_layers", "layers", "Gram layers kept as the style's"),
    Param("original", "bool", "also return the unrandomised style's synthesis, first"),
    Param("levels", "choice", "per-channel percentile stretch; auto = fantasy only", choices=("auto", "on", "off")),
    Param("level_clip", "float", "percent of each channel clipped at either end by levels", 0, 49),
    Param("content_weight", "float", "content loss weight: higher keeps more of the content", 0),
    Param("content_layer", "layer", "layer of the content loss"),
    Param("init", "choice", "style transfer starts from the content image or from noise",
          choices=("content", "noise")),
    Param("batch", "int", "images optimised together through one network pass", 1, 64),
)

# The schema of each params class, by class name (esm_contract.params uses these).
SCHEMAS: dict[str, dict[str, Param]] = {
    "NetworkParams": NETWORK,
    "SynthesisParams": {**OUTPUT, **SCHEDULE, **STYLE, **TEXTURE},
    "FillParams": {**OUTPUT, **SCHEDULE, **STYLE, **TEXTURE, **FILL},
    "VariantParams": {**OUTPUT, **SCHEDULE, **STYLE, **VARIANTS},
}
