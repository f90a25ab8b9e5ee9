"""Texture synthesis with the blog's settings (4 phases x 10 iterations, style weight 100,
variety 0.1, smoothness 0.1; exact matching unless --matching says otherwise) at 256x256 and 512x512 output: wall time, peak
memory and the `esm eval` scores, one table.

Exemplars: the central 256x256 crop of a few files from /work/shared/textures (the bundled
brick and grass when that folder is absent), so only the output size changes between rows.
Every synthesis runs in a fresh process: its peak resident memory (getrusage ru_maxrss) is
its own, and "base" is the same process's resident memory just before synthesising (torch
loaded, exemplar read), so peak - base is what the synthesis added. On CUDA the torch peak
allocation is reported too. On a shared machine absolute times are inflated: compare rows
of one run, not runs on different days.

    .venv/bin/python bench/bench_synth.py
    .venv/bin/python bench/bench_synth.py --sizes 256 --exemplars lo_fence.png --seeds 0 1
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from esm_contract.params import MATCHINGS

ROOT = Path(__file__).resolve().parents[1]
TEXTURES = Path("/work/shared/textures")
DEFAULT_EXEMPLARS = ("lo_fence.png", "lo_coffee_beans.png", "skimage_grass.png")
BUNDLED = (ROOT / "esm_core" / "data" / "brick.png", ROOT / "esm_core" / "data" / "grass.png")
CROP = 256


def central_crop(image: Any, side: int) -> Any:
    height, width = image.shape[:2]
    top, left = max(0, (height - side) // 2), max(0, (width - side) // 2)
    return image[top:top + side, left:left + side]


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """One synthesis in this process; returns its figures."""
    import resource

    import torch

    from esm_core import Engine, SynthesisParams, evaluate, load_image

    exemplar = central_crop(load_image(spec["exemplar"]), CROP)
    engine = Engine(spec["device"])
    params = SynthesisParams(width=spec["size"], height=spec["size"], seed=spec["seed"], tileable=spec["tileable"],
                             matching=spec["matching"])
    cuda = engine.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    base_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    result = engine.synthesize(exemplar, params)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "device": str(engine.device),
        "threads": torch.get_num_threads(),
        "seconds": seconds,
        "rss_base_mib": base_kib / 1024,
        "rss_peak_mib": peak_kib / 1024,
        "cuda_peak_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "scores": evaluate(exemplar, result, tile=spec["tileable"]),
    }


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    process = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                             text=True, cwd=ROOT)
    if process.returncode != 0:
        raise SystemExit(f"run {spec} failed:\n{process.stderr}")
    return json.loads(process.stdout.strip().splitlines()[-1])


def exemplar_paths(names: list[str] | None) -> list[Path]:
    if names:
        return [Path(n) if Path(n).is_file() else TEXTURES / n for n in names]
    if all((TEXTURES / n).is_file() for n in DEFAULT_EXEMPLARS):
        return [TEXTURES / n for n in DEFAULT_EXEMPLARS]
    return list(BUNDLED)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--exemplars", nargs="+", help=f"files, or names in {TEXTURES}")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--matching", default="exact", choices=MATCHINGS)
    parser.add_argument("--tileable", action="store_true", help="tileable output; adds the seam score")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    print(f"# bench_synth: blog settings (4 phases x 10 iterations, {args.matching} matching), exemplars = central "
          f"{CROP}x{CROP} crops; {platform.node()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at start")
    header = (f"{'exemplar':24s} {'size':>4s} {'seed':>4s} {'device':>6s} {'thr':>3s} {'time s':>8s} "
              f"{'rss base':>8s} {'rss peak':>8s} {'gpu peak':>8s} {'patch_swd':>9s} {'reference':>9s} "
              f"{'ratio':>6s} {'colour':>7s}" + (f" {'seam':>6s}" if args.tileable else ""))
    print(header)
    rows: list[tuple[int, dict[str, Any]]] = []
    for size in args.sizes:
        for path in exemplar_paths(args.exemplars):
            for seed in args.seeds:
                spec = {"exemplar": str(path), "size": size, "seed": seed, "device": args.device,
                        "tileable": args.tileable, "matching": args.matching}
                figures = run_child(spec)
                rows.append((size, figures))
                s = figures["scores"]
                gpu = f"{figures['cuda_peak_mib']:8.0f}" if figures["cuda_peak_mib"] is not None else f"{'-':>8s}"
                print(f"{path.name[:24]:24s} {size:4d} {seed:4d} {figures['device'][:6]:>6s} {figures['threads']:3d} "
                      f"{figures['seconds']:8.1f} {figures['rss_base_mib']:8.0f} {figures['rss_peak_mib']:8.0f} {gpu} "
                      f"{s['patch_swd']:9.3f} {s['patch_swd_reference']:9.3f} "
                      f"{s['patch_swd'] / s['patch_swd_reference']:6.2f} {s['colour_distance']:7.2f}"
                      + (f" {s['seam_score']:6.2f}" if args.tileable else ""), flush=True)
    print(f"# medians per size (load {os.getloadavg()[0]:.1f} at end); memory in MiB; ratio = patch_swd / "
          "reference (the exemplar's halves against each other; about 1 = as close as the exemplar is to itself)")
    for size in args.sizes:
        figures = [f for s, f in rows if s == size]
        print(f"  {size}x{size}: time {statistics.median(f['seconds'] for f in figures):.1f} s, "
              f"rss peak {statistics.median(f['rss_peak_mib'] for f in figures):.0f}, "
              f"added {statistics.median(f['rss_peak_mib'] - f['rss_base_mib'] for f in figures):.0f}, "
              f"patch_swd {statistics.median(f['scores']['patch_swd'] for f in figures):.3f}, "
              f"ratio {statistics.median(f['scores']['patch_swd'] / f['scores']['patch_swd_reference'] for f in figures):.2f}")


if __name__ == "__main__":
    main()
