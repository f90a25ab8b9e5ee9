"""esm variants STYLE -o DIR: style variants, fantasy styles and style transfer from
randomised Gram matrices (docs/variants.md)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from esm_contract import params as P
from esm_contract.jobs import Job
from esm_cli.checks import check_size, read_image
from esm_cli.errors import UserError, user_errors
from esm_cli.options import _layers, _size, add_daemon_options, add_engine_options, network_params
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
    g.add_argument("-n", "--count", type=int, default=d.count,
                   help=f"images per mode, 1 to {P.MAX_VARIANTS} (default %(default)s)")
    g.add_argument("--mode", type=_modes, default=(d.mode,), metavar="MODE[,MODE]",
                   help="variant (eigenvector elements times random factors), fantasy (random eigenvectors) "
                        "or none; several give one sheet row each (default %s)" % d.mode)
    g.add_argument("--seed", type=int, default=d.seed,
                   help="image i has seed SEED+i, which draws its randomisation and its start (default %(default)s)")
    g.add_argument("--range", type=_range, default=(d.low, d.high), metavar="LO,HI",
                   help="variant: the random factors' range (default %g,%g)" % (d.low, d.high))
    g.add_argument("--layer", type=_layers, default=d.layers, metavar="L[,L]",
                   help="randomised Gram layer(s) (default %s)" % ",".join(d.layers))
    g.add_argument("--base-layers", type=_base_layers, default=d.base_layers, metavar="L[,L]|none",
                   help="Gram layers kept as the style's (default %s)" % ",".join(d.base_layers))
    g.add_argument("--levels", choices=P.LEVELS, default=d.levels,
                   help="per-channel percentile stretch of each result; auto = fantasy only (default %(default)s)")
    g.add_argument("--level-clip", type=float, default=d.level_clip, metavar="PERCENT",
                   help="percent of each channel clipped at either end by --levels (default %(default)s)")
    g.add_argument("--content", type=Path, help="style transfer: repaint this image in the (randomised) style")
    g.add_argument("--content-weight", type=float, default=d.content_weight,
                   help="trades content against style: higher keeps more of the content, lower applies more "
                        "of the style (default %(default)s; docs/variants.md)")
    g.add_argument("--content-layer", type=_layers, default=(d.content_layer,), metavar="L",
                   help="layer of the content loss (default %s)" % d.content_layer)
    g.add_argument("--start", choices=P.VARIANT_INITS, default=d.init,
                   help="style transfer starts from the content image or from noise (default %(default)s)")
    g.add_argument("--size", type=_size, metavar="WxH", help="output size (default: the content's, else the style's)")
    g.add_argument("--tileable", action="store_true", help="make the outputs tile seamlessly")
    g.add_argument("--phases", type=int, default=d.phases, help="scales, coarse to fine (default %(default)s)")
    g.add_argument("--iterations", type=int, default=d.iterations,
                   help="L-BFGS loss evaluations per phase (default %(default)s)")
    g.add_argument("--style-weight", type=float, default=d.style_weight, help="default %(default)s")
    g.add_argument("--smoothness", type=float, default=d.smoothness,
                   help="total-variation weight (default %(default)s)")
    g.add_argument("--batch", type=int, default=d.batch,
                   help="images optimised together through one network pass; lower it to save memory "
                        "(default %(default)s)")
    add_engine_options(parser, d.network)  # the variants' own network defaults (max pooling), not esm synth's
    add_daemon_options(parser)
    parser.set_defaults(func=run)


def variant_params(args: argparse.Namespace, mode: str, original: bool) -> P.VariantParams:
    if len(args.content_layer) != 1:
        raise UserError("--content-layer takes one layer")
    if args.size and max(args.size) <= P.MAX_SIDE:  # too large: validate() says so, with the limit
        check_size("output size (--size)", args.size, _feature_layers(args), patches=False)
    width, height = args.size if args.size else (None, None)
    params = P.VariantParams(
        mode=mode, count=args.count, seed=args.seed, low=args.range[0], high=args.range[1],
        layers=tuple(args.layer), base_layers=tuple(args.base_layers), original=original, levels=args.levels,
        level_clip=args.level_clip, width=width, height=height, tileable=args.tileable, phases=args.phases,
        iterations=args.iterations, style_weight=args.style_weight, smoothness=args.smoothness,
        content_weight=args.content_weight, content_layer=args.content_layer[0], init=args.start,
        batch=args.batch, network=network_params(args))
    params.validate()
    return params


def _feature_layers(args: argparse.Namespace) -> tuple[str, ...]:
    """The layers the job's network must reach (esm_core.variants: style and content layers)."""
    return tuple(args.layer) + tuple(args.base_layers) + (tuple(args.content_layer) if args.content else ())


def sheet(rows: list[list[tuple[str, np.ndarray]]]) -> np.ndarray:
    """A contact sheet (uint8; RGB, or grey when every cell is): rows of (caption, image)
    cells, each the size of the first image (others scaled to fit), captioned like ``esm grid``'s."""
    import numpy as np
    from PIL import Image, ImageOps

    from esm_core.grid import BACKGROUND, CAPTION, MARGIN, _caption
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
            _caption(canvas, label, (x, y + height), width)
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
        check_size(name, (image.shape[1], image.shape[0]), _feature_layers(args), patches=False)
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
