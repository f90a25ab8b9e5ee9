"""esm grid EXEMPLAR -o SHEET.png: the blog's network experiments as one contact sheet."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from esm_contract.schema import STYLE_SAMPLES
from esm_cli.checks import check_output_file, check_size, read_image
from esm_cli.errors import user_errors
from esm_cli.options import add_synthesis_options, synthesis_params
from esm_cli.progressbar import ProgressBar
from esm_cli.runner import check_in_process, prepare_memory, wrote

if TYPE_CHECKING:  # torch is imported only when the command runs
    from esm_core import Progress
    from esm_cli.grid import GridCell

VARIED = ("activation", "downsample", "units", "depth")  # set per cell by the grid


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "grid", help="render the blog's experiment grid (activation, down-sampling, units, depth)",
        description="Synthesise EXEMPLAR with each network variant of the Extreme Style Machines "
                    "experiments: activation (elu, relu, lrelu) x down-sampling (strided, avg, max), "
                    "unit count (1/4, 1/2, full) and depth (x1, x2, x3 with 1/2 units), and save them "
                    "as one labelled contact sheet. Runs in this process.")
    parser.add_argument("exemplar", type=Path, help="exemplar image (PNG, JPEG, ...)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the contact sheet (PNG recommended)")
    add_synthesis_options(parser, fixed=VARIED)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Everything the user can get wrong is checked before the engine (torch) loads.
    with user_errors():
        params = synthesis_params(args)
    check_output_file(args.output)
    exemplar = read_image(args.exemplar)
    check_size("exemplar", (exemplar.shape[1], exemplar.shape[0]), params.layers, STYLE_SAMPLES[params.loss])
    with user_errors():
        from esm_core import Engine, save_image
        from esm_cli.grid import contact_sheet, describe, grid_cells, render_grid

        networks = {cell.network for cell in grid_cells(params.network)}  # render_grid runs each once
        check_in_process(args, params, {"exemplar": exemplar}, runs=len(networks))
        prepare_memory(params, {"exemplar": exemplar})
        engine = Engine(args.device)
        bar: ProgressBar | None = None

        def on_cell(index: int, count: int, cell: GridCell) -> None:
            nonlocal bar
            if bar is not None:
                bar.close()
            if not args.quiet:
                print(f"grid: cell {index + 1}/{count}: {cell.label}", file=sys.stderr, flush=True)
            bar = ProgressBar(f"grid {index + 1}/{count}", quiet=args.quiet)

        def progress(p: Progress) -> None:
            if bar is not None:
                bar.update(p.fraction, f"phase {p.phase + 1}/{p.phases} step {p.step}/{p.steps}")

        try:
            results = render_grid(engine, exemplar, params, on_cell, progress)
        finally:
            if bar is not None:
                bar.close()
        save_image(contact_sheet(exemplar, results, describe(params)), args.output)
    wrote(args.output)
    return 0
