"""The plug-in's state shared by the menu actions and the docker(s): settings, the running
job, the last result. One instance per Krita process (``instance()``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from krita import Krita
from PyQt5.QtCore import QObject, pyqtSignal
from PyQt5.QtGui import QIcon, QImage

from esm_client.plugin import CONFIG_NAME, PluginConfig, PluginError
from esm_client.protocol import RawImage

from . import document, operations, pixels, settings
from .operations import Options, Request
from .runner import Runner

FORMATS = {1: QImage.Format_Grayscale8, 3: QImage.Format_RGB888, 4: QImage.Format_RGBA8888}
_instance: Controller | None = None


def instance() -> Controller:
    global _instance
    if _instance is None:
        _instance = Controller(PluginConfig.load(Path(__file__).resolve().parent / CONFIG_NAME, "krita"))
    return _instance


def to_qimage(image: RawImage) -> QImage:
    """A deep copy: the QImage must not point into the message's buffer."""
    return QImage(bytes(image.data), image.width, image.height, image.width * image.channels,
                  FORMATS[image.channels]).copy()


class Controller(QObject):
    options_changed = pyqtSignal(object)  # Options
    busy_changed = pyqtSignal(bool)
    message = pyqtSignal(str)
    daemon_status = pyqtSignal(str)
    progress = pyqtSignal(object)  # esm_client.client.Progress
    preview = pyqtSignal(QImage)
    tiling_available = pyqtSignal(bool)  # a tileable result can be shown in wrap-around mode

    def __init__(self, config: PluginConfig) -> None:
        super().__init__()
        self.options = settings.load_options()
        self.runner = Runner(config, self)
        self.last_layer: Any = None  # the newest layer this plug-in added
        self.last_message = ""
        self._last_tile: tuple[Request, RawImage] | None = None
        self.runner.busy_changed.connect(self.busy_changed)
        self.runner.daemon_status.connect(self.daemon_status)
        self.runner.message.connect(self._say)
        self.runner.progress.connect(self._on_progress)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(lambda request, text: self._say(text, canvas=True))

    @property
    def busy(self) -> bool:
        return self.runner.busy

    def set_options(self, options: Options) -> None:
        if options != self.options:
            self.options = options
            settings.save_options(options)
            self.options_changed.emit(options)

    # -- the actions
    def texture(self) -> None:
        self._start(operations.prepare_texture)

    def fill(self) -> None:
        self._start(operations.prepare_fill)

    def cancel(self) -> None:
        self.runner.cancel()

    def _start(self, prepare: Any) -> None:
        if self.busy:
            self._say("A job is already running; cancel it first.", canvas=True)
            return
        try:
            doc, node = document.active_target()
            request = prepare(doc, node, self.options)
        except PluginError as error:
            self._say(str(error), canvas=True)
            return
        self.tiling_available.emit(False)
        self.runner.start(request)

    def _on_progress(self, request: Request, event: Any) -> None:
        self.progress.emit(event)
        if event.preview is not None:
            self.preview.emit(to_qimage(event.preview))

    def _on_finished(self, request: Request, images: list[RawImage]) -> None:
        try:
            self.last_layer = operations.apply_result(request, images[0])
        except PluginError as error:
            self._say(str(error), canvas=True)
            return
        self.preview.emit(to_qimage(images[0]))
        if request.tileable:
            self._last_tile = (request, images[0])
            self.tiling_available.emit(True)
            self._say(f"Added layer \"{request.layer_name}\". Press \"Show tiling\" to view it in "
                      f"wrap-around mode.", canvas=True)
        else:
            self._say(f"Added layer \"{request.layer_name}\".", canvas=True)

    # -- wrap-around
    def show_tiling(self) -> None:
        """Wrap-around mode repeats the whole canvas: switch it on when the last tile is the
        whole canvas, else open the tile as a new document in wrap-around mode."""
        if self._last_tile is None:
            return
        request, tile = self._last_tile
        app = Krita.instance()
        window = app.activeWindow()
        if window is None:
            return
        doc = request.doc
        whole = (request.tiles == (1, 1) and request.region.x == 0 and request.region.y == 0
                 and (request.region.width, request.region.height) == (doc.width(), doc.height()))
        view = window.activeView()
        if not (whole and view is not None and view.document() == doc):
            doc = app.createDocument(tile.width, tile.height, request.layer_name, *request.space, 72.0)
            doc.rootNode().childNodes()[0].setPixelData(
                bytes(pixels.to_bgra(tile.data, tile.channels)), 0, 0, tile.width, tile.height)
            view = window.addView(doc)
        view.canvas().setWrapAroundMode(True)
        self._say("Wrap-around mode is on: the canvas repeats in every direction. Toggle it with "
                  "View > Wrap Around Mode.", canvas=True)

    def _say(self, text: str, canvas: bool = False) -> None:
        self.last_message = text
        self.message.emit(text)
        window = Krita.instance().activeWindow()
        view = window.activeView() if window is not None else None
        if canvas and view is not None:
            view.showFloatingMessage(text, QIcon(), 6000, 1)
