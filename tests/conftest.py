"""Shared fixtures (stable names: the GIMP and Krita suites use them).

``daemon_endpoint`` (module scope) -> str
    Endpoint of a real ``esm daemon start --foreground`` process, e.g. "tcp://127.0.0.1:40123",
    on a free loopback port, with its own runtime/state/config folders; stopped after the module.
``daemon`` (module scope) -> DaemonProcess
    The same daemon: ``.endpoint``, ``.process`` (subprocess.Popen), ``.env`` (environment to run
    other ``esm`` commands against the same folders, with ESM_ENDPOINT set), ``.home`` (its folder),
    ``.log`` (its stderr file).
``esm_daemon`` (session scope) -> DaemonProcess
    One daemon shared by the whole run, for session-scoped fixtures (the plug-in suites).
``daemon_factory`` (function scope) -> callable ``(*extra_args, endpoint=None, env=None)`` -> DaemonProcess
    Starts another daemon (extra ``esm daemon start`` flags, e.g. "--max-pixels", "100") for tests
    that need their own (other limits, CURVE keys, killing it); all are stopped after the test.

Every daemon and client of the run, the plug-ins inside GIMP and Krita included, shares one
runtime folder ($ESM_RUNTIME_DIR, set here for the whole run), as one user's do: there the
daemons write their secrets and the clients find them (docs/protocol.md, "Authentication").
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

from esm_client.autostart import wait_until_answering
from esm_client.runtime import RUNTIME_DIR_ENV

START_TIMEOUT_S = 180.0  # torch import on a loaded 2-core CI machine
STOP_TIMEOUT_S = 30.0


@dataclass
class DaemonProcess:
    endpoint: str
    process: subprocess.Popen
    env: dict[str, str]
    home: Path
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """Sends ``sig`` and waits; returns the exit status (killing it if it hangs)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def runtime_dir() -> Iterator[Path]:
    """The run's shared runtime folder (private, under /tmp: the GIMP/Krita root sees it too)."""
    folder = Path(tempfile.mkdtemp(prefix="esm-run-", dir="/tmp"))
    previous = os.environ.get(RUNTIME_DIR_ENV)
    os.environ[RUNTIME_DIR_ENV] = str(folder)
    yield folder
    if previous is None:
        del os.environ[RUNTIME_DIR_ENV]
    else:
        os.environ[RUNTIME_DIR_ENV] = previous
    shutil.rmtree(folder, ignore_errors=True)


def isolated_env(home: Path, endpoint: str | None = None) -> dict[str, str]:
    """Environment whose platformdirs folders (state, config) live under ``home``; the runtime
    folder stays the run's shared one."""
    env = {k: v for k, v in os.environ.items() if k not in ("ESM_ENDPOINT", "ESM_KEYS_DIR")}
    env.update(XDG_STATE_HOME=str(home / "state"), XDG_CONFIG_HOME=str(home / "config"), PYTHONUNBUFFERED="1")
    if endpoint:
        env["ESM_ENDPOINT"] = endpoint
    return env


def esm_command(*args: str) -> list[str]:
    """The ``esm`` command line (the installed console script's code, via this Python)."""
    return [sys.executable, "-m", "esm_cli.main", *args]


@contextlib.contextmanager
def start_daemon(home: Path, *extra_args: str, endpoint: str | None = None,
                 env: dict[str, str] | None = None) -> Iterator[DaemonProcess]:
    endpoint = endpoint or f"tcp://127.0.0.1:{free_port()}"
    home.mkdir(parents=True, exist_ok=True)
    env = env or isolated_env(home, endpoint)
    log = home / "daemon.log"
    with open(log, "wb+") as output:
        process = subprocess.Popen(esm_command("daemon", "start", "--foreground", "--endpoint", endpoint,
                                               *extra_args),
                                   env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
        daemon = DaemonProcess(endpoint, process, env, home, log)
        try:
            wait_until_answering(endpoint, process, START_TIMEOUT_S, output)
            yield daemon
        finally:
            daemon.stop()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    with start_daemon(tmp_path_factory.mktemp("esm-daemon")) as process:
        yield process


@pytest.fixture(scope="session")
def esm_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    with start_daemon(tmp_path_factory.mktemp("esm-session-daemon")) as process:
        yield process


@pytest.fixture(scope="module")
def daemon_endpoint(daemon: DaemonProcess) -> str:
    return daemon.endpoint


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """``daemon_factory(*extra_args, endpoint=None, env=None)`` starts an extra daemon in
    ``tmp_path``; all are stopped after the test."""
    with contextlib.ExitStack() as stack:
        count = iter(range(1000))

        def make(*extra_args: str, endpoint: str | None = None, env: dict[str, str] | None = None) -> DaemonProcess:
            return stack.enter_context(start_daemon(tmp_path / f"d{next(count)}", *extra_args,
                                                    endpoint=endpoint, env=env))

        yield make
