"""esm synth EXEMPLAR -o OUT: a new texture from an exemplar image."""
from __future__ import annotations

import argparse
from pathlib import Path

from esm_contract.jobs import Job
from esm_contract.schema import STYLE_SAMPLES
from esm_cli.checks import check_output_file, check_size, read_image
from esm_cli.errors import user_errors
from esm_cli.options import add_daemon_options, add_synthesis_options, synthesis_params
from esm_cli.runner import run_job, wrote


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth", help="synthesise a texture from an exemplar image",
        description="Synthesise a new texture that looks like EXEMPLAR (Neural Patches on a random network).")
    parser.add_argument("exemplar", type=Path, help="exemplar image (PNG, JPEG, ...)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output image (PNG recommended)")
    add_synthesis_options(parser)
    add_daemon_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Everything the user can get wrong is checked before the engine (torch) loads.
    with user_errors():
        params = synthesis_params(args)
    check_output_file(args.output)
    exemplar = read_image(args.exemplar)
    check_size("exemplar", (exemplar.shape[1], exemplar.shape[0]), params.layers, STYLE_SAMPLES[params.loss])
    [result] = run_job(args, Job("texture", params, {"exemplar": exemplar}), label="synth")
    with user_errors():
        from esm_core.images import save_image

        save_image(result, args.output)
    wrote(args.output)
    return 0
