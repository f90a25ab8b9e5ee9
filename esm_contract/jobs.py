"""Job modes and the typed job: which parameters and which input images each mode takes.

A job is (mode, params object, named images). It is parsed and validated once where it
enters (``parse_job``: the daemon's socket, a plug-in; the CLI builds its params from its
flags and makes a ``Job``), then passed typed: a ``Job`` cannot hold an unknown mode, params
of another mode's class, or a wrong set of images, and a params object cannot be invalid
(esm_contract.params). The engine runs jobs (``esm_core.Engine.run``); its mode registry
must name exactly the modes here (tests/test_architecture.py). Standard library only.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Generic, Iterable, Mapping, TypeVar, Union

from .errors import ParamError
from .params import FillParams, SynthesisParams, VariantParams, from_dict


@dataclass(frozen=True)
class ModeSpec:
    params: type  # the esm_contract.params dataclass of this mode
    required_images: tuple[str, ...]
    optional_images: tuple[str, ...] = ()


# Each mode returns a list of images (one for most modes, N for variants).
MODES: dict[str, ModeSpec] = {
    "texture": ModeSpec(SynthesisParams, ("exemplar",)),
    "fill": ModeSpec(FillParams, ("image", "mask"), ("source",)),
    "variants": ModeSpec(VariantParams, ("style",), ("content",)),
}

def mode_spec(mode: str) -> ModeSpec:
    if mode not in MODES:
        raise ParamError(f"unknown mode {mode!r}; known modes: {', '.join(sorted(MODES))}")
    return MODES[mode]


ModeParams = Union[SynthesisParams, FillParams, VariantParams]
Image = TypeVar("Image")  # esm_contract.images.RawImage on the wire, a numpy array in the engine


@dataclass(frozen=True)
class Job(Generic[Image]):
    """A valid job: its mode, that mode's params object and its named input images."""

    mode: str
    params: ModeParams
    images: Mapping[str, Image]

    def __post_init__(self) -> None:
        spec = mode_spec(self.mode)
        if type(self.params) is not spec.params:
            raise ParamError(f"mode {self.mode} takes {spec.params.__name__}, not {type(self.params).__name__}")
        missing = [name for name in spec.required_images if name not in self.images]
        if missing:
            raise ParamError(f"mode {self.mode} needs image(s): {', '.join(missing)}")
        unknown = sorted(set(self.images) - set(spec.required_images) - set(spec.optional_images))
        if unknown:
            raise ParamError(f"mode {self.mode} takes no image(s) named {', '.join(unknown)}")

    def with_images(self, images: Mapping[str, Any]) -> Job[Any]:
        """The same job with its images in another form (e.g. wire images as arrays)."""
        return replace(self, images=images)

    @property
    def result_count(self) -> int:
        """How many images the job returns."""
        params = self.params
        if isinstance(params, VariantParams):
            return params.count + (1 if params.original and params.mode != "none" else 0)
        return 1


def parse_job(mode: str, params: Mapping[str, Any] | None, images: Mapping[str, Image]) -> Job[Image]:
    """The Job that (mode, params map, named images) describe, as a map comes off the wire;
    anything invalid is a ParamError naming it."""
    return Job(mode, from_dict(mode_spec(mode).params, params), images)


def output_size(params: ModeParams, input_sizes: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """(width, height) of a job's output: the params' width and height where set, else the
    largest input's (``input_sizes`` as (width, height) pairs)."""
    sizes = list(input_sizes)
    width = getattr(params, "width", None) or max((w for w, _ in sizes), default=0)
    height = getattr(params, "height", None) or max((h for _, h in sizes), default=0)
    return width, height
