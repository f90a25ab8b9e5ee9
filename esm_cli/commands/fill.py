"""esm fill IMAGE --mask MASK -o OUT: fill the masked region with texture that continues
its surroundings (docs/fill.md)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from esm_contract import params as P
from esm_contract import schema as S
from esm_contract.images import MASK_THRESHOLD
from esm_contract.jobs import Job
from esm_cli.checks import check_output_file, check_size, read_image
from esm_cli.errors import user_errors
from esm_cli.options import add_daemon_options, add_param, add_synthesis_options, synthesis_params
from esm_cli.runner import run_job, wrote

if TYPE_CHECKING:
    import numpy as np


def register(subparsers: argparse._SubParsersAction) -> None:
    defaults = P.FillParams()
    parser = subparsers.add_parser(
        "fill", help="fill a masked region with texture that continues its surroundings",
        description="Fill the region of IMAGE that MASK marks (white = fill) with texture that continues "
                    "the surroundings, or the texture of a --source image. Pixels outside the region are "
                    "kept bit for bit; the result has the size of IMAGE.")
    parser.add_argument("image", type=Path, help="image to fill (PNG, JPEG, ...)")
    parser.add_argument("--mask", type=Path, required=True,
                        help=f"mask image of the same size: pixels >= {MASK_THRESHOLD} (white) are filled; "
                             "colour masks count by brightness, transparent pixels as black")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output image (PNG recommended)")
    parser.add_argument("--source", type=Path, help="take the texture from this image instead of the surroundings")
    add_param(parser, S.FILL["context"], defaults.context, metavar="PX")
    parser.add_argument("--output-layer", action="store_true",
                        help="write only the filled pixels, as RGBA with everything else transparent")
    add_synthesis_options(parser, defaults, size=False, distribution=False)
    add_daemon_options(parser)
    parser.set_defaults(func=run)


def mask_channel(mask: np.ndarray) -> np.ndarray:
    """A mask image as the engine's one channel: grey as is, colour by brightness (BT.601),
    alpha multiplied in (transparent = not filled)."""
    import numpy as np

    if mask.shape[2] == 1:
        return mask
    value = mask[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    if mask.shape[2] == 4:
        value *= mask[..., 3] / 255.0
    return np.clip(np.round(value), 0, 255).astype(np.uint8)[..., None]


def fill_params(args: argparse.Namespace) -> P.FillParams:
    return P.from_dict(P.FillParams, {**P.to_dict(synthesis_params(args, P.FillParams())), "context": args.context,
                                      "output": "layer" if args.output_layer else "composite"})


def run(args: argparse.Namespace) -> int:
    # Everything the user can get wrong is checked before the engine (torch) loads.
    with user_errors():
        params = fill_params(args)
    check_output_file(args.output)
    images = {"image": read_image(args.image), "mask": mask_channel(read_image(args.mask))}
    if args.source is not None:
        images["source"] = read_image(args.source)
    check_size("image", (images["image"].shape[1], images["image"].shape[0]), params.layers, S.STYLE_SAMPLES[params.loss])
    grey = int(((images["mask"] != 0) & (images["mask"] != 255)).sum())
    if grey:
        print(f"esm fill: note: {grey} mask pixels are neither black nor white; "
              f"those >= {MASK_THRESHOLD} are filled", file=sys.stderr)
    [result] = run_job(args, Job("fill", params, images), label="fill")
    with user_errors():
        from esm_core.images import save_image

        save_image(result, args.output)
    wrote(args.output)
    return 0
