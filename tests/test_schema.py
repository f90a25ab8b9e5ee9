"""One schema (esm_contract.schema): docs/parameters.md is what tools/params_doc.py writes from
it; the hand-written parameter tables of docs/ give the defaults the params classes have; the
CLI's flags and the plug-ins' ranges are the schema's; and validation follows its ranges."""
from __future__ import annotations

import dataclasses
import importlib.util
import re
from pathlib import Path
from typing import Callable

import pytest

from esm_client.plugin import ui_range
from esm_contract import params as P
from esm_contract.schema import SCHEMAS, STYLE, TEXTURE

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _params_doc():
    spec = importlib.util.spec_from_file_location("params_doc", ROOT / "tools" / "params_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parameters_md_is_written_from_the_schema() -> None:
    assert (DOCS / "parameters.md").read_text(encoding="utf-8") == _params_doc().render(), \
        "docs/parameters.md is out of date: run python tools/params_doc.py"


def table_rows(doc: str, header: str) -> list[list[str]]:
    """The cells of the rows of the table whose header row starts with ``header``."""
    lines = (DOCS / doc).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def shown(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "off"
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def same(cell: str, value: object) -> bool:
    cell = cell.strip("` ")
    if isinstance(value, bool):
        return cell in (("true", "on") if value else ("false", "off"))
    if isinstance(value, (int, float)):
        try:
            return float(cell) == value
        except ValueError:
            return False
    return cell == shown(value)


def check_table(doc: str, header: str, defaults: object, names: dict[str, str], skip: tuple[str, ...] = (),
                rows: Callable[[list[str]], bool] = lambda row: True) -> int:
    """Compares each row naming parameters (first cell; ``names`` maps a spelling to a field)
    with ``defaults``; several names in one row take the default cell's comma-separated parts.
    ``rows`` picks the rows that describe ``defaults``' mode."""
    checked = 0
    for row in filter(rows, table_rows(doc, header)):
        spelled = re.findall(r"`(-?-?[a-z][a-z-]*)", row[0]) or [row[0].split(",")[0].strip("* ")]
        fields = [names.get(name, name.lstrip("-").replace("-", "_")) for name in spelled]
        fields = [field for field in dict.fromkeys(fields)
                  if field in SCHEMAS[type(defaults).__name__] and field not in skip]
        if not fields:
            continue
        cell = row[-2]
        parts = [cell] if len(fields) == 1 else [part.strip() for part in cell.split(",")]
        assert len(parts) == len(fields), f"{doc}: {row}"
        for field, part in zip(fields, parts):
            assert same(part, getattr(defaults, field)), \
                f"{doc}: {field} is documented as {part!r}, the default is {shown(getattr(defaults, field))}"
            checked += 1
    return checked


def test_hand_written_tables_give_the_schemas_defaults() -> None:
    assert check_table("variants.md", "| flag | default |", P.VariantParams(),
                       {"-n": "count", "--layer": "layers", "--start": "init"}) >= 10
    # fill.md's last row refers to esm synth's table ("as esm synth, except ...")
    assert check_table("fill.md", "| option | default |", P.FillParams(), {"-o": "", "--output": ""},
                       skip=("phases", "iterations", "style_weight", "variety", "smoothness", "layers",
                             "matching")) >= 3
    # GIMP: width/height, phases/iterations and context 0 are the plug-in's "automatic"
    # GIMP's second column names the procedures a row is for: texture, fill or both
    assert check_table("gimp.md", "| argument |", P.SynthesisParams(), {},
                       skip=("width", "height", "phases", "iterations", "context"),
                       rows=lambda row: row[1] != "fill") >= 4
    assert check_table("gimp.md", "| argument |", P.FillParams(), {}, skip=("phases", "iterations", "context"),
                       rows=lambda row: row[1] != "texture") >= 4
    assert check_table("krita.md", "| setting |", P.SynthesisParams(),
                       {"Seed": "seed", "Variety": "variety", "Style weight": "style_weight"}) >= 3


def test_every_field_of_every_mode_has_a_schema_entry() -> None:
    for name in SCHEMAS:
        cls = getattr(P, name)
        assert {f.name for f in dataclasses.fields(cls)} - {"network"} == set(SCHEMAS[name]), name


def test_variant_params_share_the_common_fields_instead_of_repeating_them() -> None:
    common = {f.name for f in dataclasses.fields(P.JobParams)}
    assert {"width", "height", "tileable", "seed", "phases", "iterations", "style_weight", "smoothness"} <= common
    assert issubclass(P.VariantParams, P.JobParams) and issubclass(P.SynthesisParams, P.JobParams)


@pytest.mark.parametrize("name, value", [("units", 100.0), ("depth", 4), ("activation", "tanh")])
def test_validation_follows_the_schemas_ranges(name: str, value: object) -> None:
    with pytest.raises(P.ParamError, match=name):
        P.NetworkParams(**{name: value})


def test_cli_flags_and_plugin_ranges_come_from_the_schema() -> None:
    from esm_cli.main import build_parser

    parser = build_parser()
    help_text = parser._subparsers._group_actions[0].choices["synth"].format_help()
    assert " ".join(TEXTURE["copy_penalty"].help.split()[:8]) in " ".join(help_text.split())
    assert ui_range(STYLE["style_weight"]) == (0, STYLE["style_weight"].ui_high)
    gimp = (ROOT / "plugins" / "gimp" / "esm-gimp" / "esm-gimp.py").read_text()
    krita = (ROOT / "plugins" / "krita" / "esm_krita" / "docker.py").read_text()
    assert "ui_range(" in gimp and "ui_range(" in krita
