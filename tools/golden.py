"""Golden outputs: SHA-256 of small, deterministic CPU runs of texture, fill and variants.

``python tools/golden.py`` prints the hashes that tests/test_golden.py holds. Each case's
parameters are the mode's defaults (esm_contract.params) with the explicit overrides below, so a
change of defaults changes the hashes, as it should. Re-record (paste the printed dict into
tests/test_golden.py) only in a commit that changes pixels and says so.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "esm_core" / "data"

# Overrides of each mode's defaults: tiny sizes and few steps, so all three run in seconds.
TEXTURE = {"width": 40, "height": 32, "seed": 3, "phases": 2, "iterations": 4}
FILL = {"seed": 5, "phases": 2, "iterations": 4, "context": 16}
VARIANTS = {"count": 2, "seed": 7, "phases": 1, "iterations": 4, "original": True}
SIDE = 48  # exemplars are the data images' top-left SIDE x SIDE pixels


def _cases() -> dict[str, Callable[[Any], list[Any]]]:
    import numpy as np

    from esm_contract.params import FillParams, SynthesisParams, VariantParams, from_dict
    from esm_core import load_image

    grass = load_image(DATA / "grass.png")[:SIDE, :SIDE]
    brick = load_image(DATA / "brick.png")[:SIDE, :SIDE]
    mask = np.zeros((SIDE, SIDE, 1), np.uint8)
    mask[18:30, 14:32] = 255
    return {
        "texture": lambda engine: [engine.synthesize(grass, from_dict(SynthesisParams, TEXTURE))],
        "fill": lambda engine: [engine.fill(brick, mask, from_dict(FillParams, FILL))],
        "variants": lambda engine: engine.variants(brick, from_dict(VariantParams, VARIANTS), grass),
    }


def golden_hashes() -> dict[str, str]:
    """{case: sha256 of its output images' shapes and bytes}, computed on one CPU thread (a
    thread count changes the order of float sums, and so the last bits)."""
    import torch

    from esm_core import Engine

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        engine = Engine("cpu")
        hashes = {}
        for name, run in _cases().items():
            digest = hashlib.sha256()
            for image in run(engine):
                digest.update(repr(image.shape).encode())
                digest.update(image.tobytes())
            hashes[name] = digest.hexdigest()
        return hashes
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    json.dump(golden_hashes(), sys.stdout, indent=4)
    print()
