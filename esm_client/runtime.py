"""Where the daemon is: the endpoint ($ESM_ENDPOINT, else the default), and the user's
runtime folder, where a daemon keeps its record and its secret, and reading that secret
(docs/protocol.md, "Authentication"). Standard library only: this module is vendored
into the plug-ins, and the daemon uses the same functions, so both sides agree on the paths."""
from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

APP = "esm"
RUNTIME_DIR_ENV = "ESM_RUNTIME_DIR"
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5571"
ENDPOINT_ENV = "ESM_ENDPOINT"


def default_endpoint(explicit: str | None = None) -> str:
    """The endpoint to use: an explicit one, else $ESM_ENDPOINT, else the default."""
    return explicit or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT


def runtime_dir() -> Path:
    """$ESM_RUNTIME_DIR; else $XDG_RUNTIME_DIR/esm; else, on macOS,
    ~/Library/Caches/TemporaryItems/esm, on Windows %LOCALAPPDATA%\\esm\\runtime, elsewhere
    esm-UID in the temporary folder. The daemon makes sure it is private (esm_daemon.paths)."""
    explicit = os.environ.get(RUNTIME_DIR_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(xdg):
        return Path(xdg) / APP
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "TemporaryItems" / APP
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / APP / "runtime"
    return Path(tempfile.gettempdir()) / f"{APP}-{os.getuid()}"


def file_name(endpoint: str, suffix: str) -> str:
    """``daemon-<endpoint>.<suffix>``: a daemon's files are named by the endpoint it was started at."""
    slug = re.sub(r"[^A-Za-z0-9.-]+", "_", endpoint).strip("_")
    return f"daemon-{slug}.{suffix}"


def secret_path(endpoint: str) -> Path:
    return runtime_dir() / file_name(endpoint, "secret")


def read_secret(endpoint: str) -> bytes | None:
    """The secret of the daemon started at ``endpoint`` by this user, None if there is none."""
    try:
        return secret_path(endpoint).read_bytes().strip() or None
    except OSError:
        return None
