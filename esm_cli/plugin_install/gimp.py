"""GIMP 3 target: the plug-in folder esm-gimp (plugins/gimp/esm-gimp) in GIMP's user
plug-in folder, with vendored esm_contract/esm_client/pyzmq/msgpack for the Python GIMP runs it with."""
from __future__ import annotations

import os
from pathlib import Path

from esm_cli.plugin_install.common import Target, host_system

FLATPAK_PROFILE = Path.home() / ".var/app/org.gimp.GIMP/config/GIMP/3.0"


class Gimp(Target):
    name = "gimp"
    app = "GIMP 3"
    source = "gimp/esm-gimp"
    folder = "esm-gimp"
    executables = ("gimp-3.0", "gimp")
    check_hint = ("Restart GIMP; the commands are Filters > Render > ESM Texture from Selection... and "
                  "Filters > Enhance > ESM Fill Selection... (docs/gimp.md: checking the installation).")

    def default_dest(self) -> Path:
        # GIMP3_DIRECTORY overrides the profile folder on every OS (GIMP's own rule).
        if os.environ.get("GIMP3_DIRECTORY"):
            return Path(os.environ["GIMP3_DIRECTORY"]) / "plug-ins"
        system = host_system()
        if system == "windows":
            return Path(os.environ.get("APPDATA", Path.home() / "AppData/Roaming")) / "GIMP/3.0/plug-ins"
        if system == "macos":
            return Path.home() / "Library/Application Support/GIMP/3.0/plug-ins"
        config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        native = config / "GIMP/3.0"
        if FLATPAK_PROFILE.is_dir() and not native.is_dir():
            return FLATPAK_PROFILE / "plug-ins"
        return native / "plug-ins"

    def default_python(self) -> str:
        system = host_system()
        if system == "windows":  # the installer's default folders, per-user first
            candidates = [Path(os.environ.get("LOCALAPPDATA", "C:/")) / "Programs/GIMP 3/bin/python.exe",
                          Path(os.environ.get("ProgramFiles", "C:/Program Files")) / "GIMP 3/bin/python.exe"]
            return str(next((c for c in candidates if c.is_file()), candidates[0]))
        if system == "macos":
            return "/Applications/GIMP.app/Contents/MacOS/python3"
        return "python3"  # GIMP runs the plug-in through its "#!/usr/bin/env python3" line


TARGET = Gimp()
