"""Job modes: which parameters and which input images each mode takes.

A job is (mode, params map, named images). The CLI, the daemon and the plug-ins build jobs
from this table; the engine runs them (``esm_core.Engine.run``). Standard library only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .params import FillParams, ParamError, SynthesisParams, VariantParams, from_dict


@dataclass(frozen=True)
class ModeSpec:
    params: type  # the esm_api.params dataclass of this mode
    required_images: tuple[str, ...]
    optional_images: tuple[str, ...] = ()


# Each mode returns a list of images (one for most modes, N for variants).
MODES: dict[str, ModeSpec] = {
    "texture": ModeSpec(SynthesisParams, ("exemplar",)),
    "fill": ModeSpec(FillParams, ("image", "mask"), ("source",)),
    "variants": ModeSpec(VariantParams, ("style",), ("content",)),
}


def parse_job(mode: str, params: Mapping[str, Any] | None, image_names: set[str] | frozenset[str]) -> Any:
    """Validates a job's mode, parameters and set of image names; returns the params object."""
    if mode not in MODES:
        raise ParamError(f"unknown mode {mode!r}; known modes: {', '.join(sorted(MODES))}")
    spec = MODES[mode]
    missing = [name for name in spec.required_images if name not in image_names]
    if missing:
        raise ParamError(f"mode {mode} needs image(s): {', '.join(missing)}")
    unknown = sorted(set(image_names) - set(spec.required_images) - set(spec.optional_images))
    if unknown:
        raise ParamError(f"mode {mode} takes no image(s) named {', '.join(unknown)}")
    return from_dict(spec.params, params)


def output_size(parsed: Any, input_sizes: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """(width, height) of a job's output: the params' width and height where set, else the
    largest input's (``input_sizes`` as (width, height) pairs)."""
    sizes = list(input_sizes)
    width = getattr(parsed, "width", None) or max((w for w, _ in sizes), default=0)
    height = getattr(parsed, "height", None) or max((h for _, h in sizes), default=0)
    return width, height
