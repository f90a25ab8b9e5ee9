"""Speed of the Krita plug-in's pure-Python byte layouts (plugins/krita/esm_krita/pixels.py)
on a 4096 x 4096 layer: Krita's Python has no numpy, so these run per layer per job.

    python3 bench/bench_krita_pixels.py [SIDE]

Prints the median of 5 runs per function, in seconds."""
from __future__ import annotations

import importlib.util
import statistics
import sys
import time
from pathlib import Path

PIXELS = Path(__file__).resolve().parents[1] / "plugins" / "krita" / "esm_krita" / "pixels.py"


def main() -> None:
    side = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
    spec = importlib.util.spec_from_file_location("esm_krita_pixels", PIXELS)
    pixels = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pixels)  # the package itself imports Krita's PyQt5
    rgba = bytes(range(256)) * (side * side * 4 // 256)
    cases = {
        "swap_red_blue (BGRA <-> RGBA)": lambda: pixels.swap_red_blue(rgba),
        "is_opaque": lambda: pixels.is_opaque(rgba),
        "rgba_to_rgb": lambda: pixels.rgba_to_rgb(rgba),
        "to_bgra from RGB": lambda: pixels.to_bgra(rgba[: side * side * 3], 3),
        "repeat 2 x 2": lambda: pixels.repeat(rgba, side, side, 4, 2, 2),
    }
    print(f"{side} x {side} RGBA, Python {sys.version.split()[0]}, median of 5")
    for name, run in cases.items():
        times = []
        for _ in range(5):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        print(f"  {name:32s} {statistics.median(times):.3f} s")


if __name__ == "__main__":
    main()
