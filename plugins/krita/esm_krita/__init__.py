"""Extreme Style Machines for Krita: tileable textures and selection fills from the ESM
daemon, as new paint layers. Installed by ``esm install-plugin krita``, which puts the
torch-free contract and client (esm_contract, esm_client) and its pyzmq and msgpack wheels into ``vendor/``."""
from __future__ import annotations

import os
import sys

_VENDOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor")
if os.path.isdir(_VENDOR) and _VENDOR not in sys.path:
    sys.path.insert(0, _VENDOR)  # ahead of any system pyzmq/msgpack: the wheels match this Python

DOCKER_ID = "esm_krita_docker"


def _register() -> None:
    try:
        import esm_client.client  # noqa: F401  (pyzmq and msgpack come with it)
    except ImportError as error:
        raise ImportError(f"Extreme Style Machines: {error}. Install the plug-in with "
                          f"'esm install-plugin krita', which brings its own pyzmq and msgpack.") from None
    from krita import DockWidgetFactory, DockWidgetFactoryBase, Krita

    from .docker import EsmDocker
    from .extension import EsmExtension

    app = Krita.instance()
    app.addExtension(EsmExtension(app))
    app.addDockWidgetFactory(DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockRight, EsmDocker))


def _in_krita_gui() -> bool:
    """kritarunner (used by the tests) imports the modules but has no windows or dockers."""
    from PyQt5.QtCore import QCoreApplication

    return QCoreApplication.applicationName() == "krita"


if _in_krita_gui():
    _register()
