"""Harness for the tests inside the real GIMP 3 (tools/hostapps: a Debian trixie root with
GIMP 3.0 and Python 3.13, run headless in private namespaces; the host's /tmp and loopback
are shared with it).

The plug-in is installed the way users install it, with ``esm install-plugin gimp``, into a
copy of the root's pre-warmed GIMP profile; the installer asks the root's own python3 for
its version and platform, so the vendored pyzmq/msgpack wheels are the ones GIMP's Python
needs (the root has no python3-zmq). GIMP runs in batch mode (gimp-console-3.0 with the
python-fu-eval interpreter) and executes gimp_driver.py, which writes what it saw to files.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from esm_client.runtime import RUNTIME_DIR_ENV

ROOT = Path(__file__).resolve().parents[2]
ROOTFS = ROOT / ".hostapps" / "trixie"
RUN_IN_CHROOT = ROOT / "tools" / "hostapps" / "run-in-chroot.sh"
DRIVER = "/project/tests/gimp/gimp_driver.py"  # the checkout is mounted on /project
GUI_DRIVER = "/project/tests/gimp/gui_driver.py"
X11_PRESS = "/project/tests/gimp/x11_press.py"
GIMP_TIMEOUT_S = 240


def chroot_command(*command: str, timeout_s: int = GIMP_TIMEOUT_S) -> list[str]:
    """argv running ``command`` inside the root, killed after ``timeout_s``."""
    return [str(RUN_IN_CHROOT), str(ROOTFS), "timeout", str(timeout_s), *command]


def chroot_env(**variables: str) -> dict[str, str]:
    """Host environment for run-in-chroot.sh that passes ``variables`` through, and the run's
    runtime folder: GIMP runs as root in there, yet shares it, as a user's GIMP would."""
    variables = {RUNTIME_DIR_ENV: os.environ[RUNTIME_DIR_ENV], **variables}
    return {**os.environ, **variables, "HOSTAPPS_PASSENV": " ".join(variables)}


@pytest.fixture(scope="session")
def hostapps_root() -> Path:
    if not (ROOTFS / "var/lib/hostapps/verify.done").exists():
        pytest.skip(f"no GIMP root at {ROOTFS}: build it with tools/hostapps/setup.sh .hostapps/trixie")
    return ROOTFS


@pytest.fixture(scope="session")
def gimp_workdir(hostapps_root: Path) -> Iterator[Path]:
    """A folder under the host's /tmp, hence visible at the same path inside the root."""
    folder = Path(tempfile.mkdtemp(prefix="esm-gimp-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def chroot_python(gimp_workdir: Path) -> Path:
    """An executable that is the root's python3 (GIMP's Python), for ``--python``."""
    wrapper = gimp_workdir / "chroot-python3"
    wrapper.write_text(f'#!/bin/sh\ncd "{ROOT}" && exec "{RUN_IN_CHROOT}" "{ROOTFS}" python3 "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def install_plugin(dest: Path, python: Path, endpoint: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "esm_cli.main", "install-plugin", "gimp", "--dest", str(dest),
                           "--python", str(python), "--endpoint", endpoint],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def gimp_profile(gimp_workdir: Path, chroot_python: Path, esm_daemon) -> Path:  # noqa: ANN001
    """A GIMP profile with the plug-in installed by the installer, pointed at the test daemon."""
    profile = gimp_workdir / "gimp-profile"
    shutil.copytree(ROOTFS / "root/.config/GIMP/3.0", profile, symlinks=True)
    done = install_plugin(profile / "plug-ins", chroot_python, esm_daemon.endpoint)
    assert done.returncode == 0, done.stderr
    return profile


class Gimp:
    """Runs scenarios (see gimp_driver.py) in GIMP with the installed plug-in."""

    def __init__(self, profile: Path, workdir: Path) -> None:
        self.profile = profile
        self.workdir = workdir

    def start(self, scenario: dict[str, Any]) -> tuple[subprocess.Popen, Path]:
        out = Path(tempfile.mkdtemp(prefix="run-", dir=self.workdir))
        scenario = {**scenario, "out": str(out)}
        (out / "scenario.json").write_text(json.dumps(scenario))
        command = chroot_command("gimp-console-3.0", "-i", "--no-fonts", "--no-data",
                                 "--batch-interpreter=python-fu-eval",
                                 "-b", f"exec(open({DRIVER!r}).read())", "--quit")
        env = chroot_env(GIMP3_DIRECTORY=str(self.profile), ESM_GIMP_SCENARIO=str(out / "scenario.json"))
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
        return process, out

    def finish(self, process: subprocess.Popen, out: Path) -> dict[str, Any]:
        output, _ = process.communicate(timeout=GIMP_TIMEOUT_S + 30)
        assert process.returncode == 0, f"GIMP exited with {process.returncode}:\n{output}"
        result = json.loads((out / "result.json").read_text())
        result["out"] = out
        result["output"] = output
        return result

    def run(self, scenario: dict[str, Any]) -> dict[str, Any]:
        return self.finish(*self.start(scenario))

    def start_gui(self, settings: dict[str, Any]) -> tuple[subprocess.Popen, Path]:
        """The GIMP GUI under Xvfb running gui_driver.py; it writes out/ready (the X display)
        once the dialog is due and out/done.json (the layers) when the interactive run ended."""
        out = Path(tempfile.mkdtemp(prefix="gui-", dir=self.workdir))
        settings = {**settings, "ready": str(out / "ready"), "done": str(out / "done.json")}
        (out / "gui.json").write_text(json.dumps(settings))
        command = chroot_command("gimp-3.0", "--no-splash", "--batch-interpreter=python-fu-eval",
                                 "-b", f"exec(open({GUI_DRIVER!r}).read())", "--quit")
        env = {**chroot_env(GIMP3_DIRECTORY=str(self.profile), ESM_GUI=str(out / "gui.json")), "HOSTAPPS_XVFB": "1"}
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
        return process, out

    @staticmethod
    def press(display: str, title: str, key: str) -> bool:
        """Presses ``key`` in the window titled ``title``; False when there is no such window, or
        no display any more (GIMP quits, and its Xvfb with it, as soon as the run has ended)."""
        done = subprocess.run(chroot_command("python3", X11_PRESS, display, title, key, timeout_s=30), cwd=ROOT,
                              capture_output=True, text=True)
        assert done.returncode in (0, 1, 2), done.stdout + done.stderr
        return done.returncode == 0


@pytest.fixture(scope="session")
def gimp(gimp_profile: Path, gimp_workdir: Path) -> Gimp:
    return Gimp(gimp_profile, gimp_workdir)
