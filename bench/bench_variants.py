"""esm variants settings side by side (docs/variants.md, "Measured"): for each setting and
exemplar, the mean patch SWD (esm_core.evaluate, lower = closer) of two seeds' images to the
exemplar per mode, and the fantasies' border ratio (mean |grey - median| in the 4-pixel border
strip over the same in the interior; about 1 = no border blobs).

    .venv/bin/python bench/bench_variants.py --size 96 \\
        --setting 'default={}' --setting 'base123={"base_layers": ["1_1", "2_1", "3_1"]}'

A setting is NAME=JSON of VariantParams fields ("network" a map of NetworkParams fields).
Exemplars: 128x128 crops of the bundled brick and grass and of /work/shared/textures files.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from esm_contract.params import NetworkParams, VariantParams
from esm_core import Engine, load_image
from esm_core.evaluate import patch_swd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "textures"
EXEMPLARS = ("brick", "grass", "etr_pave02_bricks", "sh3d_pebbles", "gimp_pink_marble")
MODES = ("none", "variant", "fantasy")
CROP, BORDER = 128, 4


def exemplar(name: str) -> np.ndarray:
    bundled = ROOT / "esm_core" / "data" / f"{name}.png"
    return load_image(bundled if bundled.exists() else SHARED / f"{name}.png")[:CROP, :CROP]


def border_ratio(image: np.ndarray) -> float:
    grey = image.astype(np.float64).mean(axis=2)
    deviation = np.abs(grey - np.median(grey))
    inner = deviation[BORDER:-BORDER, BORDER:-BORDER]
    edge = (deviation.sum() - inner.sum()) / (deviation.size - inner.size)
    return float(edge / max(inner.mean(), 1e-6))


def setting(text: str) -> tuple[str, VariantParams]:
    name, _, spec = text.partition("=")
    fields = json.loads(spec or "{}")
    if "network" in fields:
        fields["network"] = replace(VariantParams().network, **fields["network"])
    for key in ("layers", "base_layers"):
        if key in fields:
            fields[key] = tuple(fields[key])
    return name, VariantParams(**fields)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setting", action="append", type=setting, required=True, metavar="NAME=JSON")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--phases", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--exemplars", default=",".join(EXEMPLARS))
    args = parser.parse_args()
    engine = Engine("cpu")
    images = {name: exemplar(name) for name in args.exemplars.split(",")}
    print(f"{args.size} px, {args.phases} phases x {args.iterations} evaluations, seeds 0-1, levels default")
    for name, base in args.setting:
        distances: dict[str, list[float]] = {mode: [] for mode in MODES}
        borders: list[float] = []
        for style in images.values():
            for mode in MODES:
                params = replace(base, mode=mode, count=2, seed=0, width=args.size, height=args.size,
                                 phases=args.phases, iterations=args.iterations)
                results = engine.variants(style, params)
                distances[mode].append(float(np.mean([patch_swd(style, image) for image in results])))
                if mode == "fantasy":
                    borders += [border_ratio(image) for image in results]
        per_exemplar = " ".join(f"{e}={d:.3f}" for e, d in zip(images, distances["none"]))
        means = " ".join(f"{mode}={np.mean(distances[mode]):.3f}" for mode in MODES)
        print(f"{name}: mean SWD {means}; fantasy border ratio {np.mean(borders):.2f}; none per exemplar: {per_exemplar}",
              flush=True)


if __name__ == "__main__":
    main()
