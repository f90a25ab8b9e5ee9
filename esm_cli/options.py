"""Flags shared by the synthesis commands, one per parameter of the schema (esm_contract.schema:
type, choices, help) mapped one-to-one onto esm_contract.params fields. Defaults come from the
dataclasses, so --help always shows what the engine uses."""
from __future__ import annotations

import argparse
import dataclasses
from typing import TypeVar

from esm_contract import params as P
from esm_contract import schema as S
from esm_contract.schema import Param
from esm_client.runtime import DEFAULT_ENDPOINT, ENDPOINT_ENV
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
_TYPES = {"int": int, "float": float, "layers": _layers, "layer": _layers}


def add_param(group: argparse._ActionsContainer, param: Param, default: object, *flags: str,
              preset: bool = False, help: str | None = None, **kwargs: object) -> None:
    """The flag of one schema parameter (esm_contract.schema): its type or choices, help and
    range come from the schema, its default is ``default`` (the command's params class's).
    ``flags`` replaces the flag's name (a command's established spelling); ``preset``: the
    default is None, so --preset can tell a flag that was not given."""
    shown = ",".join(default) if isinstance(default, tuple) else default
    options: dict[str, object] = {"help": f"{help or param.help} (default {shown})"}
    if param.kind == "bool":
        options.update(action="store_true", help=help or param.help)
    elif param.kind == "choice":
        options.update(choices=param.choices, default=default)
    else:
        options.update(type=_TYPES[param.kind], default=default)
        if param.kind in ("layers", "layer"):
            options["metavar"] = "L[,L]" if param.kind == "layers" else "L"
    if preset:
        options["default"] = None
    options.update(kwargs)
    options.setdefault("dest", param.name)  # args.<field>, whatever the flag's spelling (tools/params_doc.py)
    group.add_argument(*(flags or (param.flag,)), **options)


def add_synthesis_options(parser: argparse.ArgumentParser, d: P.SynthesisParams | None = None, size: bool = True,
                          fixed: tuple[str, ...] = (), distribution: bool = True) -> None:
    """The synthesis flags, with ``d``'s values (default: SynthesisParams()) as defaults; no
    --size unless ``size``; ``fixed`` names network flags the command sets itself (not offered);
    ``distribution`` offers the sliced Wasserstein flags and --preset (texture commands)."""
    d = d or P.SynthesisParams()
    g = parser.add_argument_group("synthesis")
    add_output_options(g, d, size=size, seed_help="seed of the initial noise")
    if distribution:
        g.add_argument("--preset", choices=tuple(P.SYNTHESIS_PRESETS), default="default",
                       help="default: the best measured settings (docs/quality.md); reference: the Extreme Style "
                            "Machines blog's pipeline and settings (%s). Flags given explicitly override it "
                            "(default %%(default)s)" % _describe(P.SYNTHESIS_PRESETS["reference"]))
    names = [*S.SCHEDULE, *S.STYLE, *S.TEXTURE]
    if not distribution:
        names = [name for name in names if name not in _DISTRIBUTION]
    for name in names:
        param = {**S.SCHEDULE, **S.STYLE, **S.TEXTURE}[name]
        narrowed = {"choices": d.starts} if name == "start" else {}  # a texture cannot start from a fill's copy
        add_param(g, param, getattr(d, name), preset=name in PRESET_FIELDS, **narrowed)
    add_engine_options(parser, fixed=fixed)


_DISTRIBUTION = ("swd_weight", "swd_layers", "layout_phases", "layout_below_scale", "copy_penalty", "grain", "start")  # texture commands only


def add_output_options(group: argparse._ActionsContainer, d: P.JobParams, size: bool = True,
                       seed_help: str | None = None, size_help: str = "output size (default: the exemplar's)") -> None:
    """--size (width and height), --tileable and --seed (esm_contract.schema.OUTPUT)."""
    if size:
        group.add_argument("--size", type=_size, metavar="WxH", help=size_help)
    else:
        group.set_defaults(size=None)
    add_param(group, S.OUTPUT["tileable"], d.tileable)
    add_param(group, S.OUTPUT["seed"], d.seed, help=seed_help)


def add_engine_options(parser: argparse.ArgumentParser, n: P.NetworkParams | None = None,
                       fixed: tuple[str, ...] = ()) -> None:
    """The random network's flags with ``n``'s values (default: NetworkParams()) as defaults,
    except those in ``fixed`` (set by the command itself), then --device, --force and --quiet
    (every command that runs the engine)."""
    n = n or P.NetworkParams()
    g = parser.add_argument_group("random network")
    for name in NETWORK_FLAGS:
        field = name.removeprefix("network_")
        if name not in fixed:  # args.network_<field>: a mode's own parameters may share a name (variants' init)
            add_param(g, S.NETWORK[field], getattr(n, field), "--" + name.replace("_", "-"), dest="network_" + field)
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
    fields = [name.removeprefix("network_") for name in NETWORK_FLAGS]
    return P.NetworkParams(**{field: getattr(args, "network_" + field, getattr(n, field)) for field in fields})


SP = TypeVar("SP", bound=P.SynthesisParams)
_SYNTHESIS_FLAGS = ("tileable", "seed", *S.SCHEDULE, *S.STYLE, *S.TEXTURE)  # fields set from flags of the same name


def synthesis_params(args: argparse.Namespace, d: SP | None = None) -> SP:
    """``d`` (default SynthesisParams()) with the preset's values, then the flags given."""
    if args.size and max(args.size) <= P.MAX_SIDE:  # too large: validation says so, with the limit
        check_size("output size (--size)", args.size, args.layers, S.STYLE_SAMPLES[args.loss])
    base = dataclasses.replace(d or P.SynthesisParams(), **P.SYNTHESIS_PRESETS[getattr(args, "preset", "default")])
    given = {name: getattr(args, name) for name in _SYNTHESIS_FLAGS if getattr(args, name, None) is not None}
    width, height = args.size if args.size else (None, None)
    return dataclasses.replace(base, **given, width=width, height=height, network=network_params(args))
