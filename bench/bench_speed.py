"""Exact against fast patch matching, side by side: the same exemplars, seeds and settings
(the blog's: 4 phases x 10 iterations, style weight 100, variety 0.1, smoothness 0.1) at
several output sizes. Prints one table: wall time, peak memory, the share of time spent in
matching, `esm eval` scores (patch SWD, colour distance), the speed-up and the quality
ratio (fast score / exact score, so above 1 is worse).

Every synthesis runs in a fresh process (so peak memory is its own); exact and fast
alternate which goes first. On a shared machine absolute times are inflated: read the
ratios and medians.

    .venv/bin/python bench/bench_speed.py                 # 256, 512, 1024
    .venv/bin/python bench/bench_speed.py --sizes 256 512 --seeds 0 1
    .venv/bin/python bench/bench_speed.py --sizes 1024 --exact-up-to 512   # fast only at 1024
    .venv/bin/python bench/bench_speed.py --table a.json b.json   # one table from earlier --json files
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from paths import TEXTURES  # bench/paths.py (this folder is sys.path[0])

DEFAULT_EXEMPLARS = ("lo_fence.png", "lo_coffee_beans.png", "krita_crackle.png", "skimage_grass.png")
MATCHINGS = ("exact", "fast")
BLOG = {"phases": 4, "iterations": 10, "style_weight": 100.0, "variety": 0.1, "smoothness": 0.1}


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """One synthesis in this process: times, peak memory and scores."""
    from esm_core.memory import prepare_for_job, tune_allocator

    tune_allocator()  # first thing, as `esm synth` does, and prepare_for_job below
    import torch

    from esm_core import Engine, SynthesisParams, load_image
    from esm_core.evaluate import evaluate

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    engine = Engine(spec["device"])
    device = engine.device
    spent = [0.0]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    class Timed:
        """Wraps a matcher and adds up the time spent in it."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner
            if hasattr(inner, "match_features"):
                self.match_features = self._timed(inner.match_features)

        def _timed(self, call: Any) -> Any:
            def run(*args: Any, **kwargs: Any) -> Any:
                sync()
                start = time.perf_counter()
                result = call(*args, **kwargs)
                sync()
                spent[0] += time.perf_counter() - start
                return result
            return run

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return self._timed(self.inner)(*args, **kwargs)

    plain = engine.matcher
    engine.matcher = lambda name: Timed(plain(name))  # type: ignore[method-assign]
    exemplar = load_image(spec["exemplar"])
    params = SynthesisParams(width=spec["size"], height=spec["size"], seed=spec["seed"], matching=spec["matching"],
                             **BLOG)
    prepare_for_job(spec["size"] ** 2)
    if device.type == "cuda" and spec["warmup"]:
        engine.synthesize(exemplar, params)
        spent[0] = 0.0
        torch.cuda.reset_peak_memory_stats()
    sync()
    start = time.perf_counter()
    output = engine.synthesize(exemplar, params)
    sync()
    wall = time.perf_counter() - start
    scores = evaluate(exemplar, output, seed=0)
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"wall": wall, "match_s": spent[0], "peak": peak, "swd": scores["patch_swd"],
            "colour": scores["colour_distance"], "device": str(device)}


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"synthesis failed ({spec}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {os.cpu_count()} cores, {gpu}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), load average {os.getloadavg()[0]:.1f} at start")


def default_exemplars(count: int) -> list[Path]:
    if TEXTURES.is_dir():
        return [TEXTURES / name for name in DEFAULT_EXEMPLARS[:count]]
    data = Path(__file__).resolve().parent.parent / "esm_core" / "data"
    return [data / "brick.png", data / "grass.png"][:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024], help="output sides")
    parser.add_argument("--exemplars", type=Path, nargs="+", help="exemplar images (default: 3 development "
                        "textures of 512x512, or the bundled ones)")
    parser.add_argument("--count", type=int, default=3, help="how many default exemplars (default %(default)s)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--large", type=int, default=1,
                        help="runs (exemplar x seed pairs) at sizes above 512, to bound the exact runs' time "
                             "(default %(default)s)")
    parser.add_argument("--exact-up-to", type=int, default=None, metavar="SIDE",
                        help="run exact matching only at sizes up to SIDE (default: at every size)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    parser.add_argument("--table", type=Path, nargs="+", metavar="JSON",
                        help="only print the table of runs saved earlier with --json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    if args.table:
        print_table([run for path in args.table for run in json.loads(path.read_text())])
        return

    exemplars = args.exemplars or default_exemplars(args.count)
    print(f"machine: {machine()}", flush=True)
    runs: list[dict[str, Any]] = []
    for size in args.sizes:
        pairs = [(e, s) for e in exemplars for s in args.seeds]
        if size > 512:
            pairs = pairs[:args.large]
        for number, (exemplar, seed) in enumerate(pairs):
            order = MATCHINGS if number % 2 == 0 else MATCHINGS[::-1]
            if args.exact_up_to is not None and size > args.exact_up_to:
                order = ("fast",)
            for matching in order:
                spec = {"exemplar": str(exemplar), "size": size, "seed": seed, "matching": matching,
                        "device": args.device, "threads": args.threads, "warmup": True}
                result = run_child(spec) | {"exemplar": exemplar.name, "size": size, "seed": seed,
                                            "matching": matching}
                runs.append(result)
                print(f"  {size:>5} {exemplar.name:<22} seed {seed} {matching:<5} {result['wall']:7.1f} s "
                      f"matching {result['match_s']:6.1f} s  peak {result['peak'] / 2**30:5.2f} GiB  "
                      f"swd {result['swd']:.4f} colour {result['colour']:.2f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    print_table(runs)


def print_table(runs: list[dict[str, Any]]) -> None:
    def pick(size: int, matching: str) -> list[dict[str, Any]]:
        return [r for r in runs if r["size"] == size and r["matching"] == matching]

    header = ("size", "runs", "exact s", "fast s", "speed-up", "exact GiB", "fast GiB", "match% ex/fa",
              "swd ex/fa", "colour ex/fa", "swd ratio", "colour ratio")
    rows = []
    for size in sorted({r["size"] for r in runs}):
        exact, fast = pick(size, "exact"), pick(size, "fast")
        median = lambda rs, key: f"{statistics.median(r[key] for r in rs):.1f}" if rs else "-"  # noqa: E731
        mean = lambda rs, key, digits: f"{statistics.fmean(r[key] for r in rs):.{digits}f}" if rs else "-"  # noqa: E731
        peak = lambda rs: f"{max(r['peak'] for r in rs) / 2**30:.2f}" if rs else "-"  # noqa: E731
        share = lambda rs: f"{100 * sum(r['match_s'] for r in rs) / sum(r['wall'] for r in rs):.0f}" if rs else "-"  # noqa: E731
        paired = list(zip(exact, fast))
        ratio = lambda key: f"{statistics.fmean(f[key] / e[key] for e, f in paired):.3f}" if paired else "-"  # noqa: E731
        speed = f"{statistics.median(e['wall'] / f['wall'] for e, f in paired):.1f}x" if paired else "-"
        rows.append((str(size), str(max(len(exact), len(fast))), median(exact, "wall"), median(fast, "wall"), speed,
                     peak(exact), peak(fast), f"{share(exact)}/{share(fast)}",
                     f"{mean(exact, 'swd', 4)}/{mean(fast, 'swd', 4)}",
                     f"{mean(exact, 'colour', 2)}/{mean(fast, 'colour', 2)}", ratio("swd"), ratio("colour")))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = lambda cells: " | ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    print()
    print(line(header))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(line(row))
    print("times: medians; speed-up: median of exact/fast per run; GiB: peak resident memory (CPU) or peak "
          "allocated (CUDA); ratios: mean of fast/exact per run, lower scores are better")


if __name__ == "__main__":
    main()
