"""The GIMP plug-in's side of the daemon: reading the installer's settings, reaching (or
starting) a daemon, running one job with progress, and turning every failure into one
message fit for GIMP's error dialog. No GIMP imports: the host tests use it directly.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "esm-plugin.json"  # written by `esm install-plugin gimp` (esm_cli.plugin_install)
VENDOR = HERE / "vendor"
AUTOSTART_TIMEOUT_S = 90.0  # a cold daemon imports torch and builds its networks
REPLY_TIMEOUT_S = 30.0  # a busy daemon still answers within this


class PluginError(Exception):
    """A failure with a message written for the user."""


def use_vendor() -> None:
    """Puts the installer's vendor folder (esm_api, zmq, msgpack) first on sys.path."""
    if VENDOR.is_dir() and str(VENDOR) not in sys.path:
        sys.path.insert(0, str(VENDOR))


def settings() -> dict[str, Any]:
    """The installer's settings: endpoint and the daemon start command (argv without
    ``--endpoint``). Missing file (plug-in run from a checkout): defaults, no autostart."""
    try:
        data = json.loads(CONFIG.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    return {"endpoint": data.get("endpoint") or "tcp://127.0.0.1:5571",
            "start_command": list(data.get("start_command") or [])}


def _client_modules() -> tuple[Any, Any]:
    use_vendor()
    try:
        from esm_api import autostart, client
    except ImportError as error:  # a broken or foreign install: say which module is missing
        raise PluginError(f"the ESM plug-in cannot load its client library ({error}); reinstall it with: "
                          f"esm install-plugin gimp") from None
    return autostart, client


def run_job(mode: str, params: Mapping[str, Any], images: Mapping[str, tuple[int, int, int, bytes]],
            endpoint: str, autostart: bool, on_progress: Callable[[Any], None],
            on_status: Callable[[str], None]) -> list[Any]:
    """Runs one job on the daemon at ``endpoint`` (empty: the installer's; starting a daemon
    first when none answers and ``autostart`` is on) and returns its images
    (``esm_api.protocol.RawImage``). ``images`` maps names to (width, height, channels,
    pixels). Every failure is a PluginError."""
    autostart_module, client_module = _client_modules()
    endpoint = endpoint or settings()["endpoint"]
    raw = {name: client_module.RawImage(*image) for name, image in images.items()}
    try:
        if autostart_module.ping(endpoint) is None:
            start = settings()["start_command"]
            if not autostart:
                raise PluginError(f"no ESM daemon answers at {endpoint}, and starting one is switched off "
                                  f"(autostart). Start one with: esm daemon start --endpoint {endpoint}")
            if not start:
                raise PluginError(f"no ESM daemon answers at {endpoint}, and this plug-in does not know how "
                                  f"to start one (install it with: esm install-plugin gimp). Start one "
                                  f"with: esm daemon start --endpoint {endpoint}")
            on_status(f"Starting the ESM daemon at {endpoint}...")
            autostart_module.ensure_daemon(endpoint, start + ["--endpoint", endpoint], AUTOSTART_TIMEOUT_S)
        on_status("Sending the job to the ESM daemon...")
        with client_module.Client(endpoint, timeout_s=REPLY_TIMEOUT_S) as connection:
            return connection.run(mode, params, raw, on_progress=on_progress)
    except client_module.DaemonError as error:
        raise PluginError(describe(error)) from None


def describe(error: Any) -> str:
    """One line for a DaemonError, by kind."""
    kind = type(error).__name__
    if kind == "JobCancelled":
        return f"the ESM job was cancelled: {error.message}"
    if kind == "DaemonUnavailable":
        return error.message
    return f"the ESM daemon refused or failed the job: {error.message}"
