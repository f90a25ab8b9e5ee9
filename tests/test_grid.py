"""esm grid: the blog's experiment grid as a contact sheet, end to end on a tiny size."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from esm_contract.params import NetworkParams, SynthesisParams
from esm_cli.main import main
from esm_core import Engine, load_image
from esm_cli.grid import CAPTION, MARGIN, ROWS, cell_origin, grid_cells, sheet_size

ROOT = Path(__file__).resolve().parents[1]
BRICK = ROOT / "esm_core" / "data" / "brick.png"
TILE = (40, 32)
FAST = ["--size", f"{TILE[0]}x{TILE[1]}", "--phases", "1", "--iterations", "2", "--seed", "3"]
FAST_PARAMS = SynthesisParams(width=TILE[0], height=TILE[1], phases=1, iterations=2, seed=3)


def test_cells_follow_the_blog() -> None:
    base = NetworkParams(init="orthogonal", seed=7)
    cells = grid_cells(base)
    assert len(cells) == 15 and len({(c.row, c.column) for c in cells}) == 15
    assert {(c.network.init, c.network.seed) for c in cells} == {("orthogonal", 7)}
    square = {(c.network.activation, c.network.downsample) for c in cells if c.row < 3}
    assert square == {(a, d) for a in ("elu", "relu", "lrelu") for d in ("strided", "avg", "max")}
    assert all(c.network.units == 1.0 and c.network.depth == 1 for c in cells if c.row < 3)
    assert [c.network.units for c in cells if c.row == 3] == [0.25, 0.5, 1.0]
    assert [(c.network.depth, c.network.units) for c in cells if c.row == 4] == [(1, 0.5), (2, 0.5), (3, 0.5)]
    assert all((c.network.activation, c.network.downsample) == ("elu", "strided") for c in cells if c.row >= 3)


def test_esm_grid_writes_the_labelled_sheet(tmp_path: Path) -> None:
    sheet_path = tmp_path / "sheet.png"
    run = subprocess.run([sys.executable, "-m", "esm_cli.main", "grid", str(BRICK), "-o", str(sheet_path), *FAST],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "cell 15/15: depth x3" in run.stderr  # progress goes to stderr
    assert run.stdout == f"wrote {sheet_path}\n"  # only the written path goes to stdout
    with Image.open(sheet_path) as image:
        assert image.mode == "RGB"
        sheet = np.asarray(image)
    width, height = TILE
    assert (sheet.shape[1], sheet.shape[0]) == sheet_size(TILE) == (MARGIN + 3 * (width + MARGIN),
                                                                  MARGIN + (ROWS + 1) * (height + CAPTION + MARGIN))
    # Each cell holds exactly the synthesis of its network (grey replicated to RGB), captioned in dark text.
    engine = Engine("cpu")
    exemplar = load_image(BRICK)
    for cell in grid_cells():
        x, y = cell_origin(cell.row, cell.column, TILE)
        region = sheet[y:y + height, x:x + width].astype(int)
        if cell.row in (1, 4) or (cell.row, cell.column) == (0, 1):  # a sample, to keep the test short
            expected = engine.synthesize(exemplar, dataclasses.replace(FAST_PARAMS, network=cell.network))
            assert np.abs(region - expected.astype(int)).max() <= 1, cell.label
        assert (region.std(axis=(0, 1)) > 1).all(), cell.label  # a texture, not background
        caption = sheet[y + height:y + height + CAPTION, x:x + width]
        assert (caption < 100).any(), cell.label
    # Header: the exemplar scaled to the tile, and the settings text beside it.
    x, y = cell_origin(-1, 0, TILE)
    assert sheet[y:y + height, x:x + width].std() > 10
    x, y = cell_origin(-1, 1, TILE)
    assert (sheet[y:y + height, x:] < 100).any()
    # Margins stay white.
    assert (sheet[:MARGIN] == 255).all() and (sheet[:, :MARGIN] == 255).all()


@pytest.mark.parametrize("args, message", [
    (["--activation", "relu"], "unrecognized arguments: --activation"),  # varied by the grid: not offered
    (["--depth", "2"], "unrecognized arguments: --depth"),
    (["--size", "8x8"], "too small"),
])
def test_esm_grid_refuses_bad_input_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       args: list[str], message: str) -> None:
    out = tmp_path / "sheet.png"
    try:
        status = main(["grid", str(BRICK), "-o", str(out), "-q", "--phases", "1", "--iterations", "1", *args])
    except SystemExit as exit:  # argparse's refusals
        status = exit.code
    assert status == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
