"""Installers of the host-app plug-ins (``esm install-plugin``); see ``common`` for how a
target plugs in."""
from __future__ import annotations

import importlib

from esm_cli.plugin_install.common import Target

# Target name -> module defining TARGET. Add one line per host application.
TARGETS: dict[str, str] = {
    "gimp": "esm_cli.plugin_install.gimp",
    "krita": "esm_cli.plugin_install.krita",
}


def get_target(name: str) -> Target:
    return importlib.import_module(TARGETS[name]).TARGET
