"""The Extension: the two menu actions (Tools > Scripts) and the test hook."""
from __future__ import annotations

import faulthandler
import os
import sys
import traceback
from typing import Any

from krita import Extension, Krita
from PyQt5.QtCore import QTimer

from . import controller

TEST_SCRIPT_ENV = "ESM_KRITA_TEST_SCRIPT"  # tests only: a script to run once a window exists
TEST_WATCHDOG_S = 240


class EsmExtension(Extension):
    def setup(self) -> None:
        script = os.environ.get(TEST_SCRIPT_ENV)
        if script:
            Krita.instance().notifier().windowCreated.connect(lambda: _run_test(script))

    def createActions(self, window: Any) -> None:
        actions = controller.instance()
        texture = window.createAction("esm_tileable_texture", "Tileable texture from selection (ESM)",
                                      "tools/scripts")
        texture.triggered.connect(actions.texture)
        fill = window.createAction("esm_fill_selection", "Fill selection (ESM)", "tools/scripts")
        fill.triggered.connect(actions.fill)


def _run_test(script: str) -> None:
    """Runs ``script`` from the event loop. Any uncaught exception ends Krita with status 2
    (Krita's own excepthook would open a modal dialog and hang the test); a watchdog ends
    a test that never finishes."""

    def fatal(*exc: Any) -> None:
        traceback.print_exception(*exc)
        sys.stderr.flush()
        os._exit(2)

    sys.excepthook = fatal
    faulthandler.dump_traceback_later(TEST_WATCHDOG_S, exit=True)
    namespace = {"__name__": "__esm_test__", "__file__": script}
    QTimer.singleShot(500, lambda: exec(compile(open(script).read(), script, "exec"), namespace))
