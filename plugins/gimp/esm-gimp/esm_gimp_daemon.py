"""The GIMP plug-in's side of the daemon: reaching (or starting) a daemon, running one job
with progress, and turning every failure into one message fit for GIMP's error dialog. The
configuration, presets, fill margin and error text are the ones both plug-ins share
(esm_client.plugin). No GIMP imports: the host tests use it directly.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Mapping

HERE = Path(__file__).resolve().parent
VENDOR = HERE / "vendor"
AUTOSTART_TIMEOUT_S = 90.0  # a cold daemon imports torch and builds its networks
REPLY_TIMEOUT_S = 30.0  # a busy daemon still answers within this


def use_vendor() -> None:
    """Puts the installer's vendor folder (esm_contract, esm_client, zmq, msgpack) first on sys.path."""
    if VENDOR.is_dir() and str(VENDOR) not in sys.path:
        sys.path.insert(0, str(VENDOR))


use_vendor()
from esm_client.plugin import CONFIG_NAME, PluginConfig, PluginError, describe  # noqa: E402  (stdlib only)

CONFIG = HERE / CONFIG_NAME  # written by `esm install-plugin gimp` (esm_cli.plugin_install)


def settings() -> PluginConfig:
    """The installer's settings; $ESM_ENDPOINT, when set, overrides its endpoint. Missing file
    (plug-in run from a checkout): the default endpoint, no autostart."""
    return PluginConfig.load(CONFIG, "gimp")


def _client_modules() -> tuple[Any, Any]:
    try:
        from esm_client import autostart, client
    except ImportError as error:  # a broken or foreign install: say which module is missing
        raise PluginError(f"the ESM plug-in cannot load its client library ({error}); reinstall it with: "
                          f"esm install-plugin gimp") from None
    return autostart, client


def run_job(mode: str, params: Mapping[str, Any], images: Mapping[str, tuple[int, int, int, bytes]],
            endpoint: str, autostart: bool, on_progress: Callable[[Any], None],
            on_status: Callable[[str], None]) -> list[Any]:
    """Runs one job on the daemon at ``endpoint`` (empty: $ESM_ENDPOINT, else the installer's;
    starting a daemon first when none answers and ``autostart`` is on) and returns its images
    (``esm_contract.images.RawImage``). ``images`` maps names to (width, height, channels,
    pixels). Every failure is a PluginError."""
    autostart_module, client_module = _client_modules()
    config = settings()
    config = config.at(endpoint or config.endpoint)
    endpoint = config.endpoint
    raw = {name: client_module.RawImage(*image) for name, image in images.items()}
    try:
        if autostart_module.ping(endpoint) is None:
            if not autostart:
                raise PluginError(f"no ESM daemon answers at {endpoint}, and starting one is switched off "
                                  f"(autostart). Start one with: esm daemon start --endpoint {endpoint}")
            if not config.start_command:
                raise PluginError(f"no ESM daemon answers at {endpoint}, and this plug-in does not know how "
                                  f"to start one (install it with: esm install-plugin gimp). Start one "
                                  f"with: esm daemon start --endpoint {endpoint}")
            on_status(f"Starting the ESM daemon at {endpoint}...")
            autostart_module.ensure_daemon(endpoint, config.start_command, AUTOSTART_TIMEOUT_S)
        on_status("Sending the job to the ESM daemon...")
        with client_module.Client(endpoint, timeout_s=REPLY_TIMEOUT_S) as connection:
            return connection.run(mode, params, raw, on_progress=on_progress)
    except client_module.DaemonError as error:
        raise PluginError(describe(error)) from None
