"""Writes docs/parameters.md, the parameter tables of every mode, from the schema
(esm_contract.schema: range, help), the params classes (defaults) and the CLI's parsers (flag
spellings). tests/test_schema.py fails when the file and this output differ: after changing a
parameter, a default or a flag, run ``python tools/params_doc.py``.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "parameters.md"
# (mode, its `esm` command, its params class name)
MODES = (("texture", "synth", "SynthesisParams"), ("fill", "fill", "FillParams"),
         ("variants", "variants", "VariantParams"))
# Parameters set by one flag together, by that flag's dest; fill's output by --output-layer.
JOINT_FLAGS = {"width": "size", "height": "size", "low": "range", "high": "range", "output": "output_layer"}


def _flags(command: str) -> dict[str, str]:
    """{args dest: the flag's spellings} of ``esm COMMAND``."""
    from esm_cli.main import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {action.dest: ", ".join(f"`{flag}`" for flag in action.option_strings)
            for action in subparsers.choices[command]._actions if action.option_strings}


def _value(value: object) -> str:
    if value is None:
        return "the input's"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _range(param: object) -> str:
    if param.kind in ("choice", "layer"):
        return ", ".join(param.choices) if param.choices else "a layer name"
    if param.kind == "layers":
        return "layer names" + (", at least one" if param.min_count else "")
    if param.kind == "size":
        return "1 to 8192, or none"
    if param.kind == "bool":
        return "true, false"
    low, high = param.low, param.high
    shown = lambda v: f"{v:g}" if isinstance(v, float) else str(v)  # noqa: E731
    return f">= {shown(low)}" if high is None else f"{shown(low)} to {shown(high)}"


def render() -> str:
    from esm_contract import params as P
    from esm_contract.schema import NETWORK, SCHEMAS

    lines = ["# Parameters", "",
             "Every job parameter of every mode, as the daemon's `params` map names it (docs/protocol.md),",
             "with the `esm` flag that sets it, its default and its range. Written by `tools/params_doc.py`",
             "from `esm_contract/schema.py` (meaning, range) and `esm_contract/params.py` (defaults);",
             "tests/test_schema.py fails when this file is out of date. The plug-ins take their ranges",
             "from the same schema (`esm_client.plugin.ui_range`).", ""]
    for mode, command, name in MODES:
        cls = getattr(P, name)
        defaults, flags = cls(), _flags(command)
        lines += [f"## {mode} (`esm {command}`, `{name}`)", "",
                  "| parameter | flag | default | range | meaning |", "|---|---|---|---|---|"]
        for field in dataclasses.fields(cls):
            if field.name == "network":
                continue
            param = SCHEMAS[name][field.name]
            flag = flags.get(JOINT_FLAGS.get(field.name, field.name), "-")
            lines.append(f"| `{field.name}` | {flag} | {_value(getattr(defaults, field.name))} | {_range(param)} "
                         f"| {param.help} |")
        lines += ["", f"`network` (a map; `esm {command}`'s network flags):", "",
                  "| parameter | flag | default | range | meaning |", "|---|---|---|---|---|"]
        for field in dataclasses.fields(P.NetworkParams):
            param = NETWORK[field.name]
            flag = flags.get("network_" + field.name, "-")
            lines.append(f"| `{field.name}` | {flag} | {_value(getattr(defaults.network, field.name))} "
                         f"| {_range(param)} | {param.help} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    DOC.write_text(render(), encoding="utf-8")
    print(f"wrote {DOC}")
