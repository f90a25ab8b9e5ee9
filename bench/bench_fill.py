"""Hole filling against the truth: ESM fill versus OpenCV's Telea inpainting.

Holes of several sizes and shapes are cut out of real texture photos (shared/textures beside
the repository, or $ESM_TEXTURES: bench/paths.py; central 192x192 crops), so what belongs in
them is known. Each hole is filled by ``esm fill`` (the engine, default settings: 4 phases x 10 iterations, context 64) and by
``cv2.inpaint`` (Telea, radius 5); the copy that ESM starts from (esm_core.modes.fillstart, no
optimisation) is scored as well, to show what the optimisation changes. Scores
(esm_core.evaluate):

- swd: patch sliced Wasserstein distance between the filled hole and the truth's hole
  (multi-scale 7x7 patches centred in the hole; 0 = same patch statistics; lower is better);
- seam: boundary seam score of the filled image (gradient energy across the hole's border
  over the energy elsewhere; the truth's own score is the target, far above it = a visible
  seam, far below = a smeared border);
- colour: colour sliced Wasserstein distance between hole and truth, in 8-bit levels;
- time: wall seconds for the fill (ESM on the CPU unless --device says otherwise).

Absolute times are inflated on a shared machine: compare columns of one run.

    .venv/bin/pip install opencv-python-headless   # bench only (or the extra: pip install -e '.[bench]')
    .venv/bin/python bench/bench_fill.py
    .venv/bin/python bench/bench_fill.py --textures etr_grass03.png --holes square32
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np

from paths import TEXTURES  # bench/paths.py (this folder is sys.path[0])

DEFAULT_TEXTURES = ("etr_grass03.png", "sh3d_roughcast.png", "sh3d_pebbles.png", "lo_coffee_beans.png",
                    "oa_diamond_plate.png", "lo_fence.png")
CROP = 192
HOLES = ("square16", "square32", "square64", "stroke")
TELEA_RADIUS = 5


def central_crop(image: np.ndarray, side: int) -> np.ndarray:
    height, width = image.shape[:2]
    top, left = max(0, (height - side) // 2), max(0, (width - side) // 2)
    return image[top:top + side, left:left + side]


def make_hole(kind: str, side: int) -> np.ndarray:
    """Boolean hole, off-centre so that the copy search cannot simply mirror it."""
    hole = np.zeros((side, side), bool)
    if kind.startswith("square"):
        size = int(kind.removeprefix("square"))
        top, left = side // 2 - size // 2 + 7, side // 2 - size // 2 - 5
        hole[top:top + size, left:left + size] = True
    elif kind == "stroke":  # a 7 px wide diagonal scratch
        rows, cols = np.mgrid[:side, :side]
        hole = (np.abs(rows - cols * 0.6 - side * 0.2) < 3.5) & (cols > side * 0.15) & (cols < side * 0.85)
    else:
        raise SystemExit(f"unknown hole {kind!r}; known: {', '.join(HOLES)}")
    return hole


def telea(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    import cv2

    result = cv2.inpaint(np.ascontiguousarray(image), hole.astype(np.uint8) * 255, TELEA_RADIUS, cv2.INPAINT_TELEA)
    return result.reshape(image.shape)


def timed(fill: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    result = fill()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--textures", nargs="+", default=DEFAULT_TEXTURES)
    parser.add_argument("--holes", nargs="+", default=HOLES, choices=HOLES)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        import cv2  # noqa: F401
    except ImportError:
        raise SystemExit("bench_fill needs OpenCV: .venv/bin/pip install opencv-python-headless") from None

    from esm_core import Engine, FillParams, load_image
    from esm_core.evaluate import boundary_seam_score, colour_distance, patch_swd
    from esm_core.modes.fill import footprint
    from esm_core.modes.fillstart import start_image

    engine = Engine(args.device)
    params = FillParams(seed=args.seed)
    rows: list[dict[str, float | str]] = []
    header = (f"{'texture':22} {'hole':9} | {'swd esm':>7} {'telea':>6} {'copy':>6} | {'seam esm':>8} {'telea':>6} "
              f"{'copy':>6} {'truth':>6} | {'col esm':>7} {'telea':>6} | {'t esm':>6} {'telea':>6}")
    print(header)
    print("-" * len(header))
    for name in args.textures:
        truth = central_crop(load_image(TEXTURES / name), CROP)
        for kind in args.holes:
            hole = make_hole(kind, truth.shape[0])
            holed = truth.copy()
            holed[hole] = 0  # the hole's content must not matter
            mask = hole.astype(np.uint8)[..., None] * 255
            esm, esm_time = timed(lambda: engine.fill(holed, mask, params))
            cv, cv_time = timed(lambda: telea(holed, hole))
            copy, _ = start_image(holed, hole, None, footprint(params), False, params.seed)

            def swd(image: np.ndarray) -> float:
                return patch_swd(image, truth, mask_a=hole, mask_b=hole, seed=args.seed)

            row = {"texture": name, "hole": kind,
                   "swd_esm": swd(esm), "swd_telea": swd(cv), "swd_copy": swd(copy),
                   "seam_esm": boundary_seam_score(esm, hole), "seam_telea": boundary_seam_score(cv, hole),
                   "seam_copy": boundary_seam_score(copy, hole), "seam_truth": boundary_seam_score(truth, hole),
                   "col_esm": colour_distance(esm, truth, hole, hole), "col_telea": colour_distance(cv, truth, hole, hole),
                   "t_esm": esm_time, "t_telea": cv_time}
            rows.append(row)
            print(f"{name:22} {kind:9} | {row['swd_esm']:7.3f} {row['swd_telea']:6.3f} {row['swd_copy']:6.3f} | "
                  f"{row['seam_esm']:8.2f} {row['seam_telea']:6.2f} {row['seam_copy']:6.2f} {row['seam_truth']:6.2f} | "
                  f"{row['col_esm']:7.2f} {row['col_telea']:6.2f} | {row['t_esm']:6.1f} {row['t_telea']:6.3f}",
                  flush=True)
    print("-" * len(header))

    def median(key: str) -> float:
        return statistics.median(float(r[key]) for r in rows)

    def seam_error(key: str) -> float:  # distance from the truth's own score, in log2 units
        return statistics.median(abs(np.log2(float(r[key]) / float(r["seam_truth"]))) for r in rows)

    wins = sum(float(r["swd_esm"]) < float(r["swd_telea"]) for r in rows)
    print(f"median swd: esm {median('swd_esm'):.3f}, telea {median('swd_telea'):.3f}, copy {median('swd_copy'):.3f}; "
          f"esm lower than telea in {wins}/{len(rows)}")
    print(f"median |log2(seam / truth seam)|: esm {seam_error('seam_esm'):.2f}, telea {seam_error('seam_telea'):.2f}, "
          f"copy {seam_error('seam_copy'):.2f}")
    print(f"median colour distance: esm {median('col_esm'):.2f}, telea {median('col_telea'):.2f}")
    print(f"median time (s): esm {median('t_esm'):.1f}, telea {median('t_telea'):.3f} (device {engine.device})")


if __name__ == "__main__":
    main()
