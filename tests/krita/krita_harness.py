"""Host side of the Krita tests: installing the plug-in the way users do and running
kritarunner or the Krita GUI (under Xvfb) in the trixie root (tools/hostapps). The host's
/tmp and loopback are shared with the root, so files under /tmp and tcp://127.0.0.1
endpoints are the same on both sides."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esm_client.runtime import RUNTIME_DIR_ENV

ROOT = Path(__file__).resolve().parents[2]
ROOTFS = ROOT / ".hostapps" / "trixie"
RUN_IN_CHROOT = ROOT / "tools" / "hostapps" / "run-in-chroot.sh"
TESTS = "/project/tests/krita"  # the checkout is mounted on /project
KRITA_TIMEOUT_S = 240


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def root_ready() -> bool:
    return (ROOTFS / "var/lib/hostapps/verify.done").exists()


def chroot_command(*command: str, timeout_s: int = KRITA_TIMEOUT_S) -> list[str]:
    return [str(RUN_IN_CHROOT), str(ROOTFS), "timeout", str(timeout_s), *command]


def chroot_env(xvfb: bool = False, **variables: str) -> dict[str, str]:
    """Host environment for run-in-chroot.sh that passes ``variables`` through, and the run's
    runtime folder: Krita runs as root in there, yet shares it, as a user's Krita would."""
    variables = {RUNTIME_DIR_ENV: os.environ[RUNTIME_DIR_ENV], **variables}
    env = {k: v for k, v in os.environ.items() if k != "ESM_ENDPOINT"}
    env.update(variables, HOSTAPPS_PASSENV=" ".join(variables), HOSTAPPS_XVFB="1" if xvfb else "0")
    return env


class KritaInstall:
    """``esm install-plugin krita`` into ``work``: data/krita/pykrita (the pykrita folder,
    on XDG_DATA_DIRS for the GUI) and config/kritarc (where the installer enables it)."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.pykrita = work / "data" / "krita" / "pykrita"
        self.config = work / "config"
        self.python = work / "chroot-python3"

    def install(self, endpoint: str) -> subprocess.CompletedProcess:
        """Runs the installer; it asks the root's own python3 (Krita's Python) for its
        version and platform, so the vendored wheels are the ones Krita needs."""
        self.python.write_text(f'#!/bin/sh\ncd "{ROOT}" && exec "{RUN_IN_CHROOT}" "{ROOTFS}" python3 "$@"\n')
        self.python.chmod(0o755)
        # The pykrita folder is this profile's own (XDG_DATA_HOME), so the installer enables the
        # plug-in in the profile's kritarc (XDG_CONFIG_HOME); it edits no other profile's.
        env = {**os.environ, "XDG_CONFIG_HOME": str(self.config), "XDG_DATA_HOME": str(self.work / "data")}
        return subprocess.run([sys.executable, "-m", "esm_cli.main", "install-plugin", "krita",
                               "--dest", str(self.pykrita), "--python", str(self.python), "--endpoint", endpoint],
                              env=env, capture_output=True, text=True, timeout=300)

    def run_dir(self, prefix: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.work))

    def kritarunner(self, scenario: str, *args: str, endpoint: str | None = None) -> Run:
        """Starts krita_core.py's ``scenario`` in kritarunner."""
        out = self.run_dir(f"{scenario}-")
        variables = {"QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": f"{TESTS}:{self.pykrita}",
                     "XDG_CONFIG_HOME": str(self._fresh_config(out))}
        if endpoint:
            variables["ESM_ENDPOINT"] = endpoint
        command = chroot_command("kritarunner", "-s", "krita_core", "-f", "main", scenario, str(out), *args)
        return Run(subprocess.Popen(command, cwd=ROOT, env=chroot_env(**variables), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True), out)

    def gui(self, script: str, **variables: str) -> Run:
        """Starts the Krita GUI under Xvfb with the plug-in loaded from the installer's
        output; the plug-in's test hook runs ``script`` (tests/krita/...) with ESM_TEST_OUT."""
        out = self.run_dir("gui-")
        variables = {"XDG_CONFIG_HOME": str(self._fresh_config(out)),
                     "XDG_DATA_DIRS": f"{self.pykrita.parents[1]}:/usr/local/share:/usr/share",
                     "ESM_KRITA_TEST_SCRIPT": f"{TESTS}/{script}", "ESM_TEST_OUT": str(out), **variables}
        return Run(subprocess.Popen(chroot_command("krita", "--nosplash"), cwd=ROOT,
                                    env=chroot_env(xvfb=True, **variables), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True), out)

    def _fresh_config(self, out: Path) -> Path:
        """A copy of the installer's kritarc per run: Krita appends its own settings."""
        config = out / "config"
        shutil.copytree(self.config, config)
        return config


@dataclass
class Run:
    """A running kritarunner or Krita; it writes into ``out``."""

    process: subprocess.Popen
    out: Path

    def finish(self) -> dict[str, Any]:
        """Waits; returns result.json plus ``out`` and ``output`` (Krita's console)."""
        output, _ = self.process.communicate(timeout=KRITA_TIMEOUT_S + 30)
        assert self.process.returncode == 0, f"Krita exited with {self.process.returncode}:\n{output[-6000:]}"
        result = json.loads((self.out / "result.json").read_text())
        result.update(out=self.out, output=output)
        return result
