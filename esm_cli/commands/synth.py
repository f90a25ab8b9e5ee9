"""esm synth EXEMPLAR -o OUT: a new texture from an exemplar image."""
from __future__ import annotations

import argparse
from pathlib import Path

from esm_cli.errors import UserError, user_errors
from esm_cli.options import add_daemon_options, add_synthesis_options, synthesis_params
from esm_cli.runner import run_job


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
    with user_errors():
        params = synthesis_params(args)
        from esm_core import load_image, save_image

        if not args.output.parent.is_dir():
            raise UserError(f"{args.output.parent}: output folder does not exist")
        exemplar = load_image(args.exemplar)
        [result] = run_job(args, "texture", params, {"exemplar": exemplar}, label="synth")
        save_image(result, args.output)
    return 0
