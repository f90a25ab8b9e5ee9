"""The coarse-to-fine schedule shared by every synthesis mode.

Phase i of N works at 1/2^(N-1-i) of the output size, with the exemplar rescaled by the same
factor (the reference's ``--phases``). Phases whose image or exemplar would be too small for
the chosen layers are skipped; for tileable output every phase's size is a multiple of the
deepest layer's stride, so strided convolutions wrap around without a seam.
"""
from __future__ import annotations

from dataclasses import dataclass

from esm_contract.errors import ParamError


class SizeError(ParamError):
    """The output or exemplar is too small (or too large) for the network."""


@dataclass(frozen=True)
class Phase:
    index: int  # position in the run, 0-based, after skipping
    factor: float  # scale relative to the final output
    size: tuple[int, int]  # (width, height) of the image optimised in this phase
    style_size: tuple[int, int]  # (width, height) of the exemplar in this phase


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def plan_phases(
    size: tuple[int, int],
    style_size: tuple[int, int],
    phases: int,
    min_side: int,
    align: int = 1,
) -> list[Phase]:
    """``align`` > 1 rounds every phase's image size to a multiple of ``align`` (tileable)."""
    width, height = size
    if min(width, height) < min_side:
        raise SizeError(f"output {width}x{height} is too small for these layers: at least {min_side}x{min_side}")
    if min(style_size) < min_side:
        raise SizeError(f"exemplar {style_size[0]}x{style_size[1]} is too small for these layers: "
                        f"at least {min_side}x{min_side}")
    plan: list[Phase] = []
    for i in range(phases):
        factor = 0.5 ** (phases - 1 - i)
        w, h = (_round_to(width * factor, align), _round_to(height * factor, align))
        sw, sh = (max(1, round(style_size[0] * factor)), max(1, round(style_size[1] * factor)))
        if min(w, h, sw, sh) >= min_side:
            plan.append(Phase(len(plan), factor, (w, h), (sw, sh)))
    return plan
