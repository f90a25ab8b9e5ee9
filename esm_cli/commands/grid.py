"""esm grid EXEMPLAR -o SHEET.png: the blog's network experiments as one contact sheet."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from esm_api.params import NetworkParams
from esm_cli.errors import UserError, user_errors
from esm_cli.options import add_synthesis_options, synthesis_params
from esm_cli.progressbar import ProgressBar
from esm_cli.runner import prepare_memory

if TYPE_CHECKING:  # torch is imported only when the command runs
    from esm_core import Progress
    from esm_core.grid import GridCell

VARIED = ("activation", "downsample", "units", "depth")  # set per cell by the grid


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "grid", help="render the blog's experiment grid (activation, down-sampling, units, depth)",
        description="Synthesise EXEMPLAR with each network variant of the Extreme Style Machines "
                    "experiments: activation (elu, relu, lrelu) x down-sampling (strided, avg, max), "
                    "unit count (1/4, 1/2, full) and depth (x1, x2, x3 with 1/2 units), and save them "
                    "as one labelled contact sheet. --activation, --downsample, --units and --depth "
                    "are what the grid varies and cannot be set.")
    parser.add_argument("exemplar", type=Path, help="exemplar image (PNG, JPEG, ...)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the contact sheet (PNG recommended)")
    add_synthesis_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    default = NetworkParams()
    for name in VARIED:
        if getattr(args, name) != getattr(default, name):
            raise UserError(f"--{name} is varied by the grid itself; leave it out")
    with user_errors():
        params = synthesis_params(args)
        from esm_core import Engine, load_image, save_image
        from esm_core.grid import contact_sheet, describe, render_grid

        if not args.output.parent.is_dir():
            raise UserError(f"{args.output.parent}: output folder does not exist")
        exemplar = load_image(args.exemplar)
        prepare_memory(params, {"exemplar": exemplar})
        engine = Engine(args.device)
        bar: ProgressBar | None = None

        def on_cell(index: int, count: int, cell: GridCell) -> None:
            nonlocal bar
            if bar is not None:
                bar.close()
            if not args.quiet:
                print(f"grid: cell {index + 1}/{count}: {cell.label}", file=sys.stderr, flush=True)
            bar = ProgressBar(f"grid {index + 1}/{count}", enabled=None if not args.quiet else False)

        def progress(p: Progress) -> None:
            if bar is not None:
                bar.update(p.fraction, f"phase {p.phase + 1}/{p.phases} step {p.step}/{p.steps}")

        try:
            results = render_grid(engine, exemplar, params, on_cell, progress)
        finally:
            if bar is not None:
                bar.close()
        save_image(contact_sheet(exemplar, results, describe(params)), args.output)
    return 0
