"""The "Extreme Style Machines" docker: parameters, the two actions, progress with a live
preview, Cancel, and the daemon's status. It only edits the controller's Options and shows
what the controller reports, so the menu actions and every window's docker agree."""
from __future__ import annotations

import random
from typing import Any

from krita import DockWidget
from PyQt5.QtCore import Qt
from PyQt5.QtGui import QImage, QPixmap
from PyQt5.QtWidgets import (QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QProgressBar,
                             QPushButton, QSpinBox, QVBoxLayout, QWidget)

from esm_client.plugin import ui_range
from esm_contract.params import PRESETS
from esm_contract.schema import STYLE, TEXTURE

from . import controller as controller_module
from .operations import Options

TITLE = "Extreme Style Machines"
PREVIEW_SIDE = 160
MAX_SIDE = 4096  # the daemon's default output limit is 4096 x 4096


def _spin(low: int, high: int, value: int, suffix: str = "") -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    box.setSuffix(suffix)
    return box


def _double(low: float, high: float, step: float, decimals: int, value: float) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setDecimals(decimals)
    box.setValue(value)
    return box


def _pair(first: QWidget, second: QWidget) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(first)
    layout.addWidget(QLabel("\u00d7"))
    layout.addWidget(second)
    return row


class EsmDocker(DockWidget):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle(TITLE)
        self.controller = controller_module.instance()
        options = self.controller.options
        body = QWidget(self)
        column = QVBoxLayout(body)
        form = QFormLayout()
        column.addLayout(form)

        self.width_box = _spin(8, MAX_SIDE, options.width, " px")
        self.height_box = _spin(8, MAX_SIDE, options.height, " px")
        form.addRow("Size", _pair(self.width_box, self.height_box))
        self.tiles_x_box = _spin(1, 16, options.tiles_x)
        self.tiles_y_box = _spin(1, 16, options.tiles_y)
        self.tiles_x_box.setToolTip("Copies of the tile, side by side, on the new layer")
        self.tiles_y_box.setToolTip("Copies of the tile, one above the other, on the new layer")
        form.addRow("Tiles X/Y", _pair(self.tiles_x_box, self.tiles_y_box))
        self.seed_box = _spin(0, 2**31 - 1, options.seed)
        self.reroll_button = QPushButton("Re-roll")
        self.reroll_button.setToolTip("A new random seed: another texture from the same exemplar")
        seed_row = QWidget()
        seed_layout = QHBoxLayout(seed_row)
        seed_layout.setContentsMargins(0, 0, 0, 0)
        seed_layout.addWidget(self.seed_box, 1)
        seed_layout.addWidget(self.reroll_button)
        form.addRow("Seed", seed_row)
        self.preset_box = QComboBox()
        for name, (phases, iterations) in PRESETS.items():
            self.preset_box.addItem(f"{name} ({phases} scales \u00d7 {iterations} steps)", name)
        self.preset_box.setCurrentIndex(max(self.preset_box.findData(options.preset), 0))
        form.addRow("Quality", self.preset_box)
        self.variety_box = _double(*ui_range(TEXTURE["variety"]), 0.05, 2, options.variety)
        self.variety_box.setToolTip("Higher: uses more different parts of the exemplar (textures; fills keep "
                                     "the fill mode's own)")
        form.addRow("Variety", self.variety_box)
        self.style_weight_box = _double(*ui_range(STYLE["style_weight"]), 10.0, 1, options.style_weight)
        form.addRow("Style weight", self.style_weight_box)

        buttons = QHBoxLayout()
        self.texture_button = QPushButton("Tileable texture")
        self.texture_button.setToolTip("Synthesise a tileable texture from the selection (or the active "
                                       "layer) into a new layer")
        self.fill_button = QPushButton("Fill selection")
        self.fill_button.setToolTip("Fill the selection with texture from its surroundings, in a new layer")
        buttons.addWidget(self.texture_button)
        buttons.addWidget(self.fill_button)
        column.addLayout(buttons)

        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("idle")
        self.progress_bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress_bar, 1)
        progress_row.addWidget(self.cancel_button)
        column.addLayout(progress_row)

        self.preview_label = QLabel()
        self.preview_label.setAlignment(Qt.AlignCenter)
        self.preview_label.setMinimumSize(PREVIEW_SIDE, PREVIEW_SIDE)
        self.preview_label.setStyleSheet("QLabel { background: #404040; }")
        column.addWidget(self.preview_label)
        self.tiling_button = QPushButton("Show tiling (wrap-around)")
        self.tiling_button.setEnabled(False)
        column.addWidget(self.tiling_button)
        self.message_label = QLabel(self.controller.last_message)
        self.message_label.setWordWrap(True)
        column.addWidget(self.message_label)
        self.daemon_label = QLabel("Daemon: checking...")
        self.daemon_label.setWordWrap(True)
        self.daemon_label.setStyleSheet("QLabel { font-style: italic; }")
        column.addWidget(self.daemon_label)
        column.addStretch(1)
        self.setWidget(body)

        for box in (self.width_box, self.height_box, self.tiles_x_box, self.tiles_y_box, self.seed_box):
            box.valueChanged.connect(self._store)
        for box in (self.variety_box, self.style_weight_box):
            box.valueChanged.connect(self._store)
        self.preset_box.currentIndexChanged.connect(self._store)
        self.reroll_button.clicked.connect(self.reroll)
        self.texture_button.clicked.connect(self.controller.texture)
        self.fill_button.clicked.connect(self.controller.fill)
        self.cancel_button.clicked.connect(self.controller.cancel)
        self.tiling_button.clicked.connect(self.controller.show_tiling)
        self.controller.options_changed.connect(self._show_options)
        self.controller.busy_changed.connect(self._show_busy)
        self.controller.message.connect(self.message_label.setText)
        self.controller.daemon_status.connect(self.daemon_label.setText)
        self.controller.progress.connect(self._show_progress)
        self.controller.preview.connect(self._show_preview)
        self.controller.tiling_available.connect(self.tiling_button.setEnabled)
        self._show_busy(self.controller.busy)

    def canvasChanged(self, canvas: Any) -> None:  # required by Krita; nothing depends on the canvas
        pass

    def showEvent(self, event: Any) -> None:
        self.controller.runner.watch_status(True)
        super().showEvent(event)

    def hideEvent(self, event: Any) -> None:
        self.controller.runner.watch_status(False)
        super().hideEvent(event)

    def options(self) -> Options:
        return Options(width=self.width_box.value(), height=self.height_box.value(),
                       tiles_x=self.tiles_x_box.value(), tiles_y=self.tiles_y_box.value(),
                       seed=self.seed_box.value(), preset=self.preset_box.currentData(),
                       variety=self.variety_box.value(), style_weight=self.style_weight_box.value())

    def reroll(self) -> None:
        self.seed_box.setValue(random.randrange(self.seed_box.maximum() + 1))

    def _store(self, *_: Any) -> None:
        self.controller.set_options(self.options())

    def _show_options(self, options: Options) -> None:
        """Another docker (another window) changed the settings."""
        if options == self.options():
            return
        for box, value in ((self.width_box, options.width), (self.height_box, options.height),
                           (self.tiles_x_box, options.tiles_x), (self.tiles_y_box, options.tiles_y),
                           (self.seed_box, options.seed), (self.variety_box, options.variety),
                           (self.style_weight_box, options.style_weight)):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)
        self.preset_box.blockSignals(True)
        self.preset_box.setCurrentIndex(max(self.preset_box.findData(options.preset), 0))
        self.preset_box.blockSignals(False)

    def _show_busy(self, busy: bool) -> None:
        self.cancel_button.setEnabled(busy)
        self.texture_button.setEnabled(not busy)
        self.fill_button.setEnabled(not busy)
        if busy:
            self.progress_bar.setValue(0)
            self.progress_bar.setFormat("starting...")
        else:
            self.progress_bar.setFormat("done" if self.progress_bar.value() >= 1000 else "idle")

    def _show_progress(self, event: Any) -> None:
        self.progress_bar.setValue(int(event.fraction * 1000))
        eta = f", about {event.eta_s:.0f} s left" if event.eta_s is not None else ""
        self.progress_bar.setFormat(f"scale {event.phase + 1}/{event.phases}, step {event.step}/{event.steps}{eta}")

    def _show_preview(self, image: QImage) -> None:
        pixmap = QPixmap.fromImage(image).scaled(PREVIEW_SIDE, PREVIEW_SIDE, Qt.KeepAspectRatio,
                                                 Qt.SmoothTransformation)
        self.preview_label.setPixmap(pixmap)
