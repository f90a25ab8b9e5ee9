"""esm eval EXEMPLAR OUTPUT [--tile]: texture quality numbers as JSON (docs/evaluation.md)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from esm_cli.errors import UserError, user_errors


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="measure how close a synthesised texture is to its exemplar (JSON)",
        description="Print quality measures of OUTPUT against EXEMPLAR as JSON: multi-scale patch "
                    "sliced Wasserstein distance, colour distance and, with --tile, the seam score. "
                    "See docs/evaluation.md.")
    parser.add_argument("exemplar", type=Path, help="the exemplar image")
    parser.add_argument("output", type=Path, help="the synthesised image")
    parser.add_argument("--tile", action="store_true", help="also score the seams of a 2x2 tiling of OUTPUT")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random patches and projections (default 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    with user_errors():
        from esm_core import evaluate, load_image

        report = evaluate(load_image(args.exemplar), load_image(args.output), tile=args.tile, seed=args.seed)
    print(json.dumps(report, indent=2))
    return 0
