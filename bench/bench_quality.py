"""Quality side by side: ESM against Resynthesizer (the GIMP plug-in, run headless by
../shared/peers/resynth.sh; see ../shared/peers/README.md).

Exemplars: the centred 256x256 crop (``--crop``; smaller images: the largest centred square) of
every PNG in the textures folder, RGB. Cases (their sizes stay fixed when ``--crop`` changes, so
``--crop 128`` makes texture512 four times and tile256 twice the exemplar's side: the size of a
small selection in GIMP or Krita):

- texture512: a 512x512 texture; tile256: a tileable 256x256 one (seam score added);
- own: a texture at the exemplar's own size (Resynthesizer copies most of it verbatim here:
  read ``copy`` next to ``swd``);
- fill: an 80x80 hole centred in the crop; hole swd = patch SWD of the hole's patches against
  the whole crop, border = mean squared colour step across the hole's outline in the output
  over the same pixel pairs' in the untouched crop (1 = as in the photo, above = a seam).

Figures come from esm_core.evaluate (swd = multi-scale patch SWD, fine = its finest level,
shape = its contrast-blind form, patch_swd_shape; flat / copy fractions, flat2 = flat one pyramid
level down; lower is better for all). ESM
seconds = the engine call alone (its networks are built before timing; the allocator set up as
the CLI and the daemon set it, esm_core.memory); Resynthesizer
seconds = its plug-in call alone (``resynth_seconds``). Resynthesizer is not seedable: it
runs once per case and texture and its outputs are cached under --peer-cache
(``<case>/<texture>.png`` + ``.log``), so reruns only run ESM. Absolute times are inflated on
a shared machine.

    .venv/bin/python bench/bench_quality.py                         # all textures, cases, seeds 1 2
    .venv/bin/python bench/bench_quality.py --only skimage_brick.png --cases own fill --seeds 1 --no-peer
    .venv/bin/python bench/bench_quality.py --cases texture512 --params '{"layout_phases": 0}'  # a candidate
    .venv/bin/python bench/bench_quality.py --crop 128 --cases tile256 --out out/quality-128  # small selections
    .venv/bin/python bench/bench_quality.py --table out/quality/results.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from paths import TEXTURES  # bench/paths.py (this folder is sys.path[0])
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
RESYNTH = ROOT.parent / "shared" / "peers" / "resynth.sh"
CASES = ("texture512", "tile256", "own", "fill")
ENGINES = ("esm", "resynth")
CROP = 256  # the exemplar's side, --crop
HOLE = 80
Row = dict[str, Any]


def centre_crop(path: Path, crop: int = CROP) -> np.ndarray:
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"))
    height, width = rgb.shape[:2]
    side = min(crop, width, height)
    top, left = (height - side) // 2, (width - side) // 2
    return np.ascontiguousarray(rgb[top:top + side, left:left + side])


def centre_hole(side: int) -> np.ndarray:
    hole = np.zeros((side, side), bool)
    start = (side - HOLE) // 2
    hole[start:start + HOLE, start:start + HOLE] = True
    return hole


def border_ratio(output: np.ndarray, crop: np.ndarray, hole: np.ndarray) -> float:
    """Mean squared colour step across the hole's outline in the output over the same pixel
    pairs' in the untouched crop."""
    from esm_core.evaluate import border_steps

    return border_steps(output, hole) / max(border_steps(crop, hole), 1e-9)


def peer_arguments(case: str, crop: Path, mask: Path, out: Path, side: int) -> list[str]:
    if case == "fill":
        return ["fill", str(crop), str(mask), str(out)]
    size = {"texture512": 512, "tile256": 256, "own": side}[case]
    return ["texture", str(crop), str(out), str(size), str(size)] + (["--tile"] if case == "tile256" else [])


def resynth(case: str, crop: Path, mask: Path, side: int, png: Path) -> tuple[np.ndarray | None, float | None]:
    """The cached Resynthesizer output at ``png`` (run now when missing): image and seconds."""
    log = png.with_suffix(".log")
    # total_seconds is printed after the PNG is copied out: a log without it is a run in progress
    if not (png.is_file() and "total_seconds=" in (log.read_text() if log.is_file() else "")):
        png.parent.mkdir(parents=True, exist_ok=True)
        partial = png.with_name(f".{png.stem}.partial.png")  # never leave a half-written cache entry
        arguments = peer_arguments(case, crop, mask, partial, side)
        print(f"  resynth {' '.join(arguments)}", flush=True)
        process = subprocess.run(["bash", str(RESYNTH), *arguments], capture_output=True, text=True)
        if process.returncode != 0 or not partial.is_file():
            print(f"  resynth failed ({process.returncode}): {process.stderr.strip()[-2000:]}", flush=True)
            return None, None
        log.write_text(process.stdout)
        partial.replace(png)
    seconds = next(float(line.split("=", 1)[1]) for line in log.read_text().splitlines()
                   if line.startswith("resynth_seconds="))
    with Image.open(png) as image:
        return np.asarray(image.convert("RGB")), seconds


def figures(case: str, crop: np.ndarray, output: np.ndarray, hole: np.ndarray) -> dict[str, float]:
    from esm_core.evaluate import evaluate, patch_swd

    if case == "fill":
        return {"hole_swd": patch_swd(output, crop, mask_a=hole), "border": border_ratio(output, crop, hole)}
    report = evaluate(crop, output, tile=case == "tile256")
    result = {"swd": report["patch_swd"], "fine": report["patch_swd_levels"][0], "shape": report["patch_swd_shape"],
              "flat": report["flat"], "flat2": report["flat_coarse"], "copy": report["copy"]}
    if case == "tile256":
        result["seam"] = report["seam_score"]
    return result


def machine(device: str) -> dict[str, Any]:
    import torch

    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "")
    return {"platform": platform.platform(), "cpu": model, "cores": os.cpu_count(), "torch": torch.__version__,
            "device": device}


def run(args: argparse.Namespace) -> tuple[list[Row], str]:
    from esm_contract.params import from_dict
    from esm_core import Engine, FillParams, SynthesisParams, save_image
    from esm_core.memory import prepare_for_job, tune_allocator

    tune_allocator()  # as the CLI and the daemon do: the seconds are those users get (docs/performance.md)
    engine = Engine(args.device)
    for defaults in (SynthesisParams(), FillParams()):  # build the networks now, not inside the timed calls
        engine.network(defaults.network)
    names = args.only or sorted(path.name for path in args.textures.glob("*.png"))
    (args.out / "crops").mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    for name in names:
        stem = Path(name).stem
        crop = centre_crop(args.textures / name, args.crop)
        side = crop.shape[0]
        hole = centre_hole(side)
        mask = hole.astype(np.uint8)[..., None] * 255
        crop_png, mask_png = args.out / "crops" / f"{stem}.png", args.out / "crops" / f"{stem}-mask.png"
        save_image(crop, crop_png)
        save_image(mask, mask_png)
        for case in args.cases:
            print(f"{case} {name}", flush=True)
            peer: tuple[np.ndarray | None, float | None] = (None, None)
            if not args.no_peer:
                peer = resynth(case, crop_png.resolve(), mask_png.resolve(), side,
                               (args.peer_cache / case / f"{stem}.png").resolve())
            peer_figures = figures(case, crop, peer[0], hole) if peer[0] is not None else {}
            for seed in args.seeds:
                if case == "fill":
                    params: Any = from_dict(FillParams, args.params, FillParams(seed=seed))
                elif case == "own":
                    params = from_dict(SynthesisParams, args.params, SynthesisParams(seed=seed))
                else:
                    size = 512 if case == "texture512" else 256
                    params = from_dict(SynthesisParams, args.params, SynthesisParams(
                        width=size, height=size, seed=seed, tileable=case == "tile256"))
                prepare_for_job((params.width or side) * (params.height or side))  # None: the crop's size
                started = time.perf_counter()
                output = (engine.fill(crop, mask, params) if case == "fill"
                          else engine.synthesize(crop, params))
                seconds = time.perf_counter() - started
                for engine_name, image, row_figures, row_seconds in (
                        ("esm", output, figures(case, crop, output, hole), seconds),
                        ("resynth", peer[0], peer_figures, peer[1])):
                    if image is not None:
                        (args.out / case / engine_name).mkdir(parents=True, exist_ok=True)
                        save_image(image, args.out / case / engine_name / f"{stem}-s{seed}.png")
                    rows.append({"case": case, "texture": stem, "seed": seed, "engine": engine_name,
                                 **row_figures, "seconds": row_seconds})
    return rows, str(engine.device)


def columns(case: str) -> list[str]:
    if case == "fill":
        return ["hole_swd", "border", "seconds"]
    return ["swd", "fine", "shape", "flat", "flat2", "copy"] + (["seam"] if case == "tile256" else []) + ["seconds"]


def cell(value: float | None) -> str:
    return f"{value:8.4f}" if value is not None else f"{'-':>8}"  # 4 places: shape is about 0.003


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def print_tables(rows: list[Row]) -> None:
    for case in [c for c in CASES if any(r["case"] == c for r in rows)]:
        keys = columns(case)
        by = {(r["texture"], r["seed"], r["engine"]): r for r in rows if r["case"] == case}
        pairs = sorted({(texture, seed) for texture, seed, _ in by})
        names = " ".join(f"{k:>8}" for k in keys)
        header = f"{'texture':24} {'seed':>4} | esm {names} | resynth {names}"
        print(f"\n== {case} ==\n{header}\n{'-' * len(header)}")
        for texture, seed in pairs:
            esm, peer = by[texture, seed, "esm"], by[texture, seed, "resynth"]
            print(f"{texture:24} {seed:4} |     {' '.join(cell(esm.get(k)) for k in keys)} |         "
                  f"{' '.join(cell(peer.get(k)) for k in keys)}")
        print("-" * len(header))
        for engine in ENGINES:
            group = [r for r in by.values() if r["engine"] == engine]
            line = ", ".join(f"{k} {cell(median([r.get(k) for r in group])).strip()}" for k in keys)
            maxima = "".join(f"; max {key} {max(values):.3f}" for key in ("flat", "flat2")
                             if (values := [r[key] for r in group if r.get(key) is not None]))
            print(f"median {engine:8} {line}{maxima}")
        if case == "fill":
            compared = [(by[p + ("esm",)]["hole_swd"], by[p + ("resynth",)].get("hole_swd")) for p in pairs]
            compared = [(a, b) for a, b in compared if b is not None]
            print(f"esm hole swd lower than resynth's in {sum(a < b for a, b in compared)}/{len(compared)} holes")
            continue
        for key in ("swd", "fine", "shape"):
            textures = sorted({texture for texture, _ in pairs})
            medians = [(median([by[t, s, "esm"][key] for tt, s in pairs if tt == t]),
                        median([by[t, s, "resynth"].get(key) for tt, s in pairs if tt == t])) for t in textures]
            medians = [(a, b) for a, b in medians if b is not None]
            print(f"esm median {key} lower than resynth's on {sum(a < b for a, b in medians)}/{len(medians)} textures")


def sheet(out: Path, rows: list[Row], case: str, height: int, path: Path) -> None:
    """Exemplar | ESM | Resynthesizer per texture (first seed), scaled to a common row height."""
    seed = min(r["seed"] for r in rows)
    textures = sorted({r["texture"] for r in rows if r["case"] == case})
    paths = [[out / "crops" / f"{t}.png"] + [out / case / e / f"{t}-s{seed}.png" for e in ENGINES] for t in textures]
    cells = [[Image.open(p).convert("RGB") if p.is_file() else None for p in line] for line in paths]
    for line in cells:
        for i, image in enumerate(line):
            if image is not None:
                line[i] = image.resize((max(1, round(image.width * height / image.height)), height), Image.LANCZOS)
    widths = [max((line[i].width for line in cells if line[i] is not None), default=height) for i in range(3)]
    gap, label = 6, 16
    canvas = Image.new("RGB", (sum(widths) + gap * 4, label + len(cells) * (height + gap) + gap), (220, 220, 220))
    draw = ImageDraw.Draw(canvas)
    for i, text in enumerate(("exemplar", "ESM", "Resynthesizer")):
        draw.text((gap + sum(widths[:i]) + gap * i, 3), f"{text} ({case})" if i == 0 else text, fill=(0, 0, 0))
    for row, line in enumerate(cells):
        for i, image in enumerate(line):
            if image is not None:
                canvas.paste(image, (gap + sum(widths[:i]) + gap * i, label + row * (height + gap)))
    canvas.save(path)
    print(f"sheet {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--textures", type=Path, default=TEXTURES, help="folder of exemplar PNGs")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these files of the folder only")
    parser.add_argument("--crop", type=int, default=CROP, metavar="SIDE",
                        help=f"the exemplar: the centred SIDE x SIDE crop (default {CROP})")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=CASES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--out", type=Path, default=Path("out/quality"))
    parser.add_argument("--peer-cache", type=Path, help="Resynthesizer outputs (default OUT/peer)")
    parser.add_argument("--no-peer", action="store_true", help="ESM columns only")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--params", type=json.loads, default={}, metavar="JSON",
                        help="parameters over each case's defaults, as the daemon takes them: a candidate setting")
    parser.add_argument("--sheet", type=Path, help="contact sheet (default OUT/sheet.png)")
    parser.add_argument("--sheet-case", choices=CASES, default="texture512", help="case of --sheet (when it runs)")
    parser.add_argument("--sheet-height", type=int, default=192)
    parser.add_argument("--table", type=Path, metavar="RESULTS_JSON", help="reprint the tables of a saved run")
    args = parser.parse_args()
    if args.table:
        print_tables(json.loads(args.table.read_text())["rows"])
        return
    args.peer_cache = args.peer_cache or args.out / "peer"
    rows, device = run(args)
    results = {"machine": machine(device), "params": args.params, "rows": rows}
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print_tables(rows)
    for case in args.cases:
        sheet(args.out, rows, case, args.sheet_height, args.out / f"sheet-{case}.png")
    if args.sheet_case in args.cases:
        sheet(args.out, rows, args.sheet_case, args.sheet_height, args.sheet or args.out / "sheet.png")


if __name__ == "__main__":
    main()
