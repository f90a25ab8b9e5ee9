"""What the commands check before the engine (and torch) loads: output paths, input images,
sizes, and whether an in-process job fits this machine. Each failure is a UserError."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from esm_cli.errors import UserError, user_errors

if TYPE_CHECKING:
    import numpy as np

# The network's block b spans 2**(b-1) pixels (esm_core.features.networks.layer_scale); a style
# sample spans esm_contract.schema.STYLE_SAMPLES feature positions. tests/test_cli_checks.py holds
# these to the engine's own values, which cannot be imported here without torch.

# Peak resident memory and CPU time of an in-process job, from docs/performance.md's benchmark
# (texture, fast matching, 2-core Xeon, torch 2.13 CPU): 0.93 / 1.15 / 2.40 / 5.50 GiB and
# 2.6 / 6.8 / 19.9 / 129 s at 256 / 512 / 1024 / 2048 px square, with 4 phases x 10 evaluations.
BASE_BYTES = 0.8 * 2**30  # torch, the network, the exemplar's features
BYTES_PER_PIXEL = 1600  # per output pixel of one image, rounded up over those sizes
EXACT_EXTRA_BYTES = 0.5 * 2**30  # exact matching's score slices (1.63 against 1.15 GiB at 512)
SECONDS_PER_PIXEL_EVALUATION = 2.3e-6  # per output pixel and full-size loss evaluation (2048: 129 s)
EXACT_SLOWDOWN = 6.5  # exact matching against fast at 512x512 (grows with the exemplar)


def layer_scale(name: str) -> int:
    return 2 ** (int(name.split("_")[0]) - 1)


def min_side(layers: Iterable[str], sample: int) -> int:
    """The smallest image side the engine accepts for ``layers`` and style samples of
    ``sample`` feature positions (esm_core.modes.synthesis.min_side_for)."""
    return max(layer_scale(name) for name in layers) * sample


def check_size(what: str, size: tuple[int, int], layers: Iterable[str], sample: int) -> None:
    """Refuses an image or output smaller than the layers need, naming it and the minimum."""
    layers = tuple(layers)
    least = min_side(layers, sample)
    if min(size) < least:
        raise UserError(f"{what} {size[0]}x{size[1]} is too small for layers {','.join(layers)}: "
                        f"at least {least}x{least}")


def check_output_file(path: Path) -> None:
    """Refuses an output path that cannot be written, before any work."""
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give a file name, e.g. {path / 'out.png'}")
    if not path.parent.is_dir():
        raise UserError(f"{path.parent}: output folder does not exist")
    if not os.access(path.parent, os.W_OK):
        raise UserError(f"{path.parent}: cannot write into this folder")


def read_image(path: Path) -> np.ndarray:
    """An input image as the engine's uint8 HxWxC (esm_core.images, which needs no torch)."""
    with user_errors():
        from esm_core.images import load_image

        return load_image(path)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def available_memory() -> int | None:
    """Bytes this machine can still give a process (Linux: MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            fields = dict(line.split(":", 1) for line in meminfo)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return None


def check_fits(command: str, pixels: int, evaluations: float, exact: bool, runs: int = 1,
               at_once: int = 1, force: bool = False) -> None:
    """Estimates an in-process job's peak memory and CPU time: ``pixels`` per output image,
    ``at_once`` images in memory together, ``evaluations`` full-size loss evaluations per image,
    ``runs`` images one after another. Refuses one that needs more memory than this machine has
    free (unless ``force``); announces one that will take over a minute."""
    peak = BASE_BYTES + BYTES_PER_PIXEL * pixels * at_once + (EXACT_EXTRA_BYTES if exact else 0)
    seconds = SECONDS_PER_PIXEL_EVALUATION * pixels * evaluations * runs * (EXACT_SLOWDOWN if exact else 1)
    estimate = f"about {peak / 2**30:.1f} GiB of memory and {_duration(seconds)} on a 2-core CPU"
    free = available_memory()
    if not force and free is not None and peak > free:
        raise UserError(f"this job needs {estimate}, but this machine has {free / 2**30:.1f} GiB free: use a smaller "
                        f"size, a daemon on a larger machine (--endpoint), or --force to try anyway")
    if seconds > 60:
        print(f"esm {command}: note: this job needs {estimate}", file=sys.stderr, flush=True)


def evaluations(phases: int, iterations: int) -> float:
    """Full-size loss evaluations of a multi-scale run: phase k from the end has 1/4**k of the pixels."""
    return iterations * sum(0.25 ** k for k in range(phases))
