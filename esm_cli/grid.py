"""The `esm grid` study (esm_cli.commands.grid) and the CLI's contact sheets (also `esm
variants`' sheet.png): the same synthesis on the blog's network variants, laid out as one
labelled contact sheet.

Rows 1-3: activation (elu, relu, lrelu) x down-sampling (strided, avg, max), full units.
Row 4: unit count (quarter, half, full), elu + strided.
Row 5: depth (each 3x3 layer x1, x2, x3) with half units, as the blog ran it.
Above them, the exemplar and the settings used.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from esm_contract.params import ACTIVATIONS, DOWNSAMPLES, NetworkParams, SynthesisParams

from esm_core.engine import Engine
from esm_core.images import array_to_pil, check_image
from esm_core.progress import CancelToken, ProgressCallback

COLUMNS = 3
ROWS = 5  # below the exemplar's header row
MARGIN = 8
CAPTION = 16  # pixels under each image for its label
BACKGROUND = (255, 255, 255)
TEXT = (0, 0, 0)
UNITS = ((0.25, "1/4 units"), (0.5, "1/2 units"), (1.0, "full units"))
DEPTHS = (1, 2, 3)
DEPTH_UNITS = 0.5


@dataclass(frozen=True)
class GridCell:
    row: int
    column: int
    label: str
    network: NetworkParams


def grid_cells(base: NetworkParams | None = None) -> list[GridCell]:
    """The 15 cells, row by row. ``base`` supplies what the grid does not vary (the
    initialisation and the weight seed); its activation, down-sampling, units and depth
    are replaced by each cell's."""
    base = base or NetworkParams()
    default = NetworkParams()

    def net(**changes: object) -> NetworkParams:
        values = dict(activation=default.activation, downsample=default.downsample, units=1.0, depth=1)
        values.update(changes)
        return dataclasses.replace(base, **values)

    cells = [GridCell(r, c, f"{activation} / {downsample}", net(activation=activation, downsample=downsample))
             for r, activation in enumerate(ACTIVATIONS) for c, downsample in enumerate(DOWNSAMPLES)]
    cells += [GridCell(3, c, label, net(units=units)) for c, (units, label) in enumerate(UNITS)]
    cells += [GridCell(4, c, f"depth x{depth}, 1/2 units", net(units=DEPTH_UNITS, depth=depth))
              for c, depth in enumerate(DEPTHS)]
    return cells


def render_grid(
    engine: Engine,
    exemplar: np.ndarray,
    params: SynthesisParams,
    on_cell: Callable[[int, int, GridCell], None] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[tuple[GridCell, np.ndarray]]:
    """Synthesises every cell with ``params`` (its network replaced by the cell's).
    ``on_cell(index, count, cell)`` is called before each synthesis. A network that appears
    twice (elu / strided = full units) is synthesised once."""
    cells = grid_cells(params.network)
    done: dict[NetworkParams, np.ndarray] = {}
    results: list[tuple[GridCell, np.ndarray]] = []
    for index, cell in enumerate(cells):
        if on_cell is not None:
            on_cell(index, len(cells), cell)
        if cell.network not in done:
            done[cell.network] = engine.synthesize(
                exemplar, dataclasses.replace(params, network=cell.network), progress, cancel)
        results.append((cell, done[cell.network]))
    return results


def sheet_size(tile: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of the contact sheet for output tiles of ``tile`` = (width, height):
    a header row (the exemplar) and ROWS rows of COLUMNS tiles, each with a caption."""
    width, height = tile
    return (MARGIN + COLUMNS * (width + MARGIN), MARGIN + (ROWS + 1) * (height + CAPTION + MARGIN))


def cell_origin(row: int, column: int, tile: tuple[int, int]) -> tuple[int, int]:
    """Top-left pixel of the image in ``row`` (-1 = the exemplar's header row), ``column``."""
    width, height = tile
    return (MARGIN + column * (width + MARGIN), MARGIN + (row + 1) * (height + CAPTION + MARGIN))


def caption(sheet: Image.Image, text: str, origin: tuple[int, int], width: int) -> None:
    """Draws ``text`` under an image, clipped to the image's width so neighbours stay clean."""
    label = Image.new("RGB", (width, CAPTION), BACKGROUND)
    ImageDraw.Draw(label).text((0, 2), text, fill=TEXT, font=ImageFont.load_default())
    sheet.paste(label, origin)


def contact_sheet(exemplar: np.ndarray, results: list[tuple[GridCell, np.ndarray]], settings: str) -> np.ndarray:
    """The labelled sheet (uint8 RGB HxWx3): the exemplar (scaled to fit the tile size) and
    ``settings`` on top, then each result at its row and column. Alpha is dropped."""
    tiles = [check_image(image, "grid image") for _, image in results]
    height, width = tiles[0].shape[:2]
    sheet = Image.new("RGB", sheet_size((width, height)), BACKGROUND)
    example = array_to_pil(check_image(exemplar, "exemplar")).convert("RGB")
    ex_w, ex_h = example.size
    x, y = cell_origin(-1, 0, (width, height))
    sheet.paste(ImageOps.contain(example, (width, height), Image.Resampling.LANCZOS), (x, y))
    caption(sheet, f"exemplar {ex_w}x{ex_h}", (x, y + height), width)
    x, y = cell_origin(-1, 1, (width, height))
    text_width = sheet.size[0] - x - MARGIN
    lines = Image.new("RGB", (text_width, height + CAPTION), BACKGROUND)
    ImageDraw.Draw(lines).multiline_text((0, 0), settings, fill=TEXT, font=ImageFont.load_default())
    sheet.paste(lines, (x, y))
    for (cell, _), tile in zip(results, tiles):
        origin = cell_origin(cell.row, cell.column, (width, height))
        sheet.paste(array_to_pil(tile).convert("RGB"), origin)
        caption(sheet, cell.label, (origin[0], origin[1] + height), width)
    return np.asarray(sheet, dtype=np.uint8).copy()


def describe(params: SynthesisParams) -> str:
    """The settings shared by every cell, for the sheet's header."""
    return (f"phases {params.phases}, iterations {params.iterations}\n"
            f"style weight {params.style_weight:g}, variety {params.variety:g}\n"
            f"smoothness {params.smoothness:g}, layers {','.join(params.layers)}\n"
            f"loss {params.loss}, seed {params.seed}, init {params.network.init}\n"
            f"network seed {params.network.seed}" + (", tileable" if params.tileable else ""))
