"""Flags shared by the synthesis commands, mapped one-to-one onto esm_contract.params fields.
Defaults come from the dataclasses, so --help always shows what the engine uses."""
from __future__ import annotations

import argparse
import dataclasses
from typing import TypeVar

from esm_contract import params as P
from esm_client.protocol import DEFAULT_ENDPOINT, ENDPOINT_ENV
from esm_cli.checks import check_size

NETWORK_FLAGS = ("activation", "downsample", "units", "depth", "init", "network_seed")


def _size(text: str) -> tuple[int, int]:
    try:
        return P.parse_size(text)
    except P.ParamError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _describe(values: dict[str, object]) -> str:
    return ", ".join(f"--{name.replace('_', '-')} {value}" for name, value in values.items())


def _layers(text: str) -> tuple[str, ...]:
    try:
        return P.parse_layers(text)
    except P.ParamError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# Flags that --preset sets when they are not given: their argparse default is None.
PRESET_FIELDS = tuple(dict.fromkeys(name for preset in P.SYNTHESIS_PRESETS.values() for name in preset))


def add_synthesis_options(parser: argparse.ArgumentParser, d: P.SynthesisParams | None = None, size: bool = True,
                          fixed: tuple[str, ...] = (), distribution: bool = True) -> None:
    """The synthesis flags, with ``d``'s values (default: SynthesisParams()) as defaults; no
    --size unless ``size``; ``fixed`` names network flags the command sets itself (not offered);
    ``distribution`` offers the sliced Wasserstein flags and --preset (texture commands)."""
    d = d or P.SynthesisParams()
    g = parser.add_argument_group("synthesis")
    if size:
        g.add_argument("--size", type=_size, metavar="WxH", help="output size (default: the exemplar's)")
    else:
        parser.set_defaults(size=None)
    if distribution:
        g.add_argument("--preset", choices=tuple(P.SYNTHESIS_PRESETS), default="default",
                       help="default: the best measured settings (docs/quality.md); reference: the Extreme Style "
                            "Machines blog's pipeline and settings (%s). Flags given explicitly override it "
                            "(default %%(default)s)" % _describe(P.SYNTHESIS_PRESETS["reference"]))
    g.add_argument("--tileable", action="store_true", help="make the output tile seamlessly")
    g.add_argument("--seed", type=int, default=d.seed, help="seed of the initial noise (default %(default)s)")
    g.add_argument("--phases", type=int, default=None,
                   help="scales, coarse to fine, at most: a scale whose image or exemplar would be smaller than "
                        f"the layers need is skipped (default {d.phases})")
    g.add_argument("--iterations", type=int, default=None,
                   help=f"L-BFGS loss evaluations per phase (default {d.iterations})")
    g.add_argument("--style-weight", type=float, default=None, help=f"default {d.style_weight}")
    g.add_argument("--variety", type=float, default=None,
                   help=f"penalty on reusing the same style patches (default {d.variety})")
    g.add_argument("--smoothness", type=float, default=None, help=f"total-variation weight (default {d.smoothness})")
    if distribution:
        g.add_argument("--swd-weight", type=float, default=None,
                       help="weight of the sliced Wasserstein term that gives the --swd-layers the exemplar's "
                            f"feature distribution: sharp, even detail; 0 = off (default {d.swd_weight})")
        g.add_argument("--swd-layers", type=_layers, default=d.swd_layers, metavar="L[,L]",
                       help="layers of the sliced Wasserstein term (default %s)" % ",".join(d.swd_layers))
        g.add_argument("--layout-phases", type=int, default=None,
                       help="first phases that match feature distributions only, which invents a new layout "
                            "instead of rebuilding the exemplar's; the last phase never does "
                            f"(default {d.layout_phases})")
        g.add_argument("--copy-penalty", type=float, default=None,
                       help="how strongly patches are kept from matching the exemplar at one offset over large "
                            "regions, which would copy it verbatim, in the first phase that matches patches "
                            "(docs/engine.md); 0 = off; 0.5 also clears the copies the default leaves at the "
                            "exemplar's own size, at some cost to larger outputs (default %s)" % d.copy_penalty)
    g.add_argument("--layers", type=_layers, default=d.layers, metavar="L[,L]",
                   help="style layers (default %s)" % ",".join(d.layers))
    g.add_argument("--loss", choices=P.LOSSES, default=d.loss, help="default %(default)s")
    g.add_argument("--matching", choices=P.MATCHINGS, default=d.matching,
                   help="patch nearest-neighbour search: exact = brute force (the reference), fast = "
                        "approximate PatchMatch search, as good with --variety and 6.5x faster at 512x512 on a "
                        "2-core Xeon (5.5x on a 2-core EPYC: it depends on the machine); with --variety 0 prefer "
                        "exact (docs/performance.md) (default %(default)s)")
    add_engine_options(parser, fixed=fixed)


def add_engine_options(parser: argparse.ArgumentParser, n: P.NetworkParams | None = None,
                       fixed: tuple[str, ...] = ()) -> None:
    """The random network's flags with ``n``'s values (default: NetworkParams()) as defaults,
    except those in ``fixed`` (set by the command itself), then --device, --force and --quiet
    (every command that runs the engine)."""
    n = n or P.NetworkParams()
    g = parser.add_argument_group("random network")
    flags = {
        "activation": dict(choices=P.ACTIVATIONS, default=n.activation, help="default %(default)s"),
        "downsample": dict(choices=P.DOWNSAMPLES, default=n.downsample, help="default %(default)s"),
        "units": dict(type=float, default=n.units, help="unit-count multiplier (default %(default)s)"),
        "depth": dict(type=int, default=n.depth, help="repeats of each 3x3 layer (default %(default)s)"),
        "init": dict(choices=P.INITS, default=n.init, help="weight initialisation (default %(default)s)"),
        "network_seed": dict(type=int, default=n.seed, help="seed of the weights (default %(default)s)"),
    }
    for name in NETWORK_FLAGS:
        if name not in fixed:
            g.add_argument("--" + name.replace("_", "-"), **flags[name])
    parser.add_argument("--device", choices=P.DEVICES, default="auto",
                        help="auto = CUDA, then Apple MPS, then CPU (default %(default)s)")
    parser.add_argument("--force", action="store_true",
                        help="run in this process even when the estimated memory exceeds what this machine has free")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress (the written file is still named)")


def add_daemon_options(parser: argparse.ArgumentParser) -> None:
    """Where a job runs (esm_cli.runner): a daemon when one answers, else this process."""
    g = parser.add_argument_group("daemon")
    where = g.add_mutually_exclusive_group()
    where.add_argument("--daemon", dest="daemon", action="store_true", default=None,
                       help="run on the daemon, starting one if none answers")
    where.add_argument("--no-daemon", dest="daemon", action="store_false",
                       help="run in this process even if a daemon answers")
    g.add_argument("--endpoint", default=None,
                   help=f"daemon endpoint (default: ${ENDPOINT_ENV}, else {DEFAULT_ENDPOINT}); "
                        "--device applies only to in-process runs")


def network_params(args: argparse.Namespace) -> P.NetworkParams:
    """The network flags given; a command's ``fixed`` flags take NetworkParams' defaults."""
    n = P.NetworkParams()
    value = {name: getattr(args, name, getattr(n, name.replace("network_", ""))) for name in NETWORK_FLAGS}
    return P.NetworkParams(activation=value["activation"], downsample=value["downsample"], units=value["units"],
                           depth=value["depth"], init=value["init"], seed=value["network_seed"])


S = TypeVar("S", bound=P.SynthesisParams)


def synthesis_params(args: argparse.Namespace, d: S | None = None) -> S:
    """``d`` (default SynthesisParams()) with the preset's values, then the flags given."""
    if args.size and max(args.size) <= P.MAX_SIDE:  # too large: validate() says so, with the limit
        check_size("output size (--size)", args.size, args.layers, args.loss == "patches")
    base = dataclasses.replace(d or P.SynthesisParams(), **P.SYNTHESIS_PRESETS[getattr(args, "preset", "default")])
    preset = {name: getattr(base, name) if getattr(args, name, None) is None else getattr(args, name)
              for name in PRESET_FIELDS}
    width, height = args.size if args.size else (None, None)
    params = dataclasses.replace(
        base, **preset, width=width, height=height, tileable=args.tileable, seed=args.seed,
        layers=tuple(args.layers), swd_layers=tuple(getattr(args, "swd_layers", base.swd_layers)), loss=args.loss,
        matching=args.matching, network=network_params(args))
    params.validate()
    return params  # type: ignore[return-value]
