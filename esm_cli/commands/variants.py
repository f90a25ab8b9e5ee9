"""esm variants STYLE -o DIR: style variants, fantasy styles and style transfer from
randomised Gram matrices (docs/variants.md)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from esm_contract import params as P
from esm_contract import schema as S
from esm_contract.jobs import Job
from esm_cli.checks import check_size, read_image
from esm_cli.errors import UserError, user_errors
from esm_cli.options import _layers, add_daemon_options, add_engine_options, add_output_options, add_param, network_params
from esm_cli.runner import run_job, wrote

if TYPE_CHECKING:
    import numpy as np

SHEET = "sheet.png"


def _modes(text: str) -> tuple[str, ...]:
    modes = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    bad = [mode for mode in modes if mode not in P.VARIANT_MODES]
    if not modes or bad:
        raise argparse.ArgumentTypeError(f"mode must be one or more of {', '.join(P.VARIANT_MODES)}, got {text!r}")
    return modes


def _range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"range must look like LO,HI (e.g. 0.1,1.9), got {text!r}") from None
    return low, high


def _base_layers(text: str) -> tuple[str, ...]:
    return () if text.strip().lower() == "none" else _layers(text)


def _content_layer(text: str) -> str:
    layers = _layers(text)
    if len(layers) != 1:
        raise argparse.ArgumentTypeError("--content-layer takes one layer")
    return layers[0]


def register(subparsers: argparse._SubParsersAction) -> None:
    d = P.VariantParams()
    parser = subparsers.add_parser(
        "variants", help="style variants, fantasy styles and style transfer from randomised Gram matrices",
        description="Synthesise N images in randomised versions of STYLE's Gram-matrix style (textures, or "
                    "CONTENT repainted with --content). Writes MODE-SEED.png per image and sheet.png, a "
                    "contact sheet with the unrandomised style's synthesis first.")
    parser.add_argument("style", type=Path, help="style image (PNG, JPEG, ...)")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="output folder (created if its parent exists)")
    g = parser.add_argument_group("variants")
    own = S.VARIANTS
    add_param(g, own["count"], d.count, "-n", "--count", help=f"images per mode, 1 to {P.MAX_VARIANTS}")
    add_param(g, own["mode"], (d.mode,), type=_modes, choices=None, metavar="MODE[,MODE]",
              help=f"{own['mode'].help}; several give one sheet row each")
    add_output_options(g, d, seed_help="image i has seed SEED+i, which draws its randomisation and its start",
                       size_help="output size (default: the content's, else the style's)")
    g.add_argument("--range", type=_range, default=(d.low, d.high), metavar="LO,HI",
                   help="variant: the random factors' range (default %g,%g)" % (d.low, d.high))
    add_param(g, own["layers"], d.layers, "--layer")
    add_param(g, own["base_layers"], d.base_layers, type=_base_layers, metavar="L[,L]|none")
    add_param(g, own["levels"], d.levels)
    add_param(g, own["level_clip"], d.level_clip, metavar="PERCENT")
    g.add_argument("--content", type=Path, help="style transfer: repaint this image in the (randomised) style")
    add_param(g, own["content_weight"], d.content_weight,
              help=f"{own['content_weight'].help}, lower applies more of the style (docs/variants.md)")
    add_param(g, own["content_layer"], d.content_layer, type=_content_layer)
    add_param(g, own["init"], d.init, "--start")
    for name in (*S.SCHEDULE, *S.STYLE):
        add_param(g, {**S.SCHEDULE, **S.STYLE}[name], getattr(d, name))
    add_param(g, own["batch"], d.batch, help=f"{own['batch'].help}; lower it to save memory")
    add_engine_options(parser, d.network)  # the variants' own network defaults (max pooling), not esm synth's
    add_daemon_options(parser)
    parser.set_defaults(func=run)


def variant_params(args: argparse.Namespace, mode: str, original: bool) -> P.VariantParams:
    if args.size and max(args.size) <= P.MAX_SIDE:  # too large: validation says so, with the limit
        check_size("output size (--size)", args.size, _feature_layers(args), S.STYLE_SAMPLES["gram"])
    width, height = args.size if args.size else (None, None)
    shared = {name: getattr(args, name) for name in ("tileable", "seed", *S.SCHEDULE, *S.STYLE)}
    own = {name: getattr(args, name) for name in ("count", "layers", "base_layers", "levels", "level_clip",
                                                  "content_weight", "content_layer", "init", "batch")}
    return P.VariantParams(**shared, **own, mode=mode, original=original, low=args.range[0], high=args.range[1],
                           width=width, height=height, network=network_params(args))


def _feature_layers(args: argparse.Namespace) -> tuple[str, ...]:
    """The layers the job's network must reach (esm_core.modes.variants: style and content layers)."""
    return tuple(args.layers) + tuple(args.base_layers) + ((args.content_layer,) if args.content else ())


def sheet(rows: list[list[tuple[str, np.ndarray]]]) -> np.ndarray:
    """A contact sheet (uint8; RGB, or grey when every cell is): rows of (caption, image)
    cells, each the size of the first image (others scaled to fit), captioned like ``esm grid``'s."""
    import numpy as np
    from PIL import Image, ImageOps

    from esm_cli.grid import BACKGROUND, CAPTION, MARGIN, caption
    from esm_core.images import array_to_pil

    height, width = rows[0][0][1].shape[:2]
    columns = max(len(row) for row in rows)
    canvas = Image.new("RGB", (MARGIN + columns * (width + MARGIN), MARGIN + len(rows) * (height + CAPTION + MARGIN)),
                       BACKGROUND)
    for r, row in enumerate(rows):
        for c, (label, image) in enumerate(row):
            x, y = MARGIN + c * (width + MARGIN), MARGIN + r * (height + CAPTION + MARGIN)
            tile = array_to_pil(image).convert("RGB")
            if tile.size != (width, height):
                tile = ImageOps.contain(tile, (width, height), Image.Resampling.LANCZOS)
            canvas.paste(tile, (x, y))
            caption(canvas, label, (x, y + height), width)
    array = np.asarray(canvas, dtype=np.uint8)
    return array[..., :1].copy() if (array == array[..., :1]).all() else array.copy()  # grey inputs: a grey sheet


def run(args: argparse.Namespace) -> int:
    # Everything the user can get wrong is checked before the engine (torch) loads.
    with user_errors():
        jobs = [variant_params(args, mode, original=index == 0) for index, mode in enumerate(args.mode)]
    if not args.output.parent.is_dir():
        raise UserError(f"{args.output.parent}: output folder's parent does not exist")
    if args.output.exists() and not args.output.is_dir():
        raise UserError(f"{args.output}: not a folder")
    images = {"style": read_image(args.style)}
    if args.content is not None:
        images["content"] = read_image(args.content)
    for name, image in images.items():
        check_size(name, (image.shape[1], image.shape[0]), _feature_layers(args), S.STYLE_SAMPLES["gram"])
    with user_errors():
        from esm_core.images import save_image

        first = [("style", images["style"])] + ([("content", images["content"])] if "content" in images else [])
        rows: list[list[tuple[str, np.ndarray]]] = []
        for params in jobs:
            results = run_job(args, Job("variants", params, images), label=f"variants {params.mode}")
            if params.original and params.mode != "none":
                first.insert(0, (f"original, seed {params.seed}", results.pop(0)))
            args.output.mkdir(exist_ok=True)  # only now: a refused job leaves no folder behind
            row = []
            for index, image in enumerate(results):
                name = f"{params.mode}-{params.seed + index}"
                save_image(image, args.output / f"{name}.png")
                wrote(args.output / f"{name}.png")
                row.append((name, image))
            rows.append(row)
        if first[0][0] == "style":  # mode none only: its first image is the original style's
            first.insert(0, rows[0][0])
        save_image(sheet([first] + rows), args.output / SHEET)
    wrote(args.output / SHEET)
    return 0
