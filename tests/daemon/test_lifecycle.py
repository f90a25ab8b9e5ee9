"""Starting, stopping and securing the daemon; clients and daemons that die."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from PIL import Image

from esm_client import protocol as P
from esm_client.autostart import ensure_daemon
from esm_client.client import Client, CurveKeys, DaemonError, DaemonUnavailable, JobCancelled
from esm_client.runtime import RUNTIME_DIR_ENV, file_name

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import esm_command, free_port, isolated_env  # noqa: E402


def esm(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(esm_command(*args), env=env, capture_output=True, text=True, timeout=timeout)


def record_file(env: dict[str, str]) -> list[Path]:
    """The record of the daemon at env's $ESM_ENDPOINT, if there is one."""
    path = Path(env[RUNTIME_DIR_ENV], file_name(env["ESM_ENDPOINT"], "json"))
    return [path] if path.exists() else []


def wait_until_no_job_runs(endpoint: str, timeout_s: float) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + timeout_s
    with Client(endpoint) as client:
        while time.monotonic() < deadline:
            info = client.info()
            if info["jobs"]["running"] == 0:
                return info
            time.sleep(0.1)
    pytest.fail(f"a job still runs after {timeout_s} s")


def test_cli_start_status_synth_stop(tmp_path: Path) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    env = isolated_env(tmp_path, endpoint)
    assert esm(env, "daemon", "status").returncode == 1
    started = esm(env, "daemon", "start")
    try:
        assert started.returncode == 0 and "started" in started.stdout, started.stderr
        [record] = record_file(env)
        pid = json.loads(record.read_text())["pid"]
        again = esm(env, "daemon", "start")
        assert again.returncode == 0 and f"already running at {endpoint} (pid {pid})" in again.stdout
        status = esm(env, "daemon", "status")
        assert status.returncode == 0 and f"pid {pid}" in status.stdout

        exemplar = tmp_path / "exemplar.png"
        Image.fromarray(np.asarray(Image.open(ROOT / "esm_core/data/brick.png").convert("L"))[:32, :32]).save(exemplar)
        flags = ["--size", "32x32", "--phases", "1", "--iterations", "2", "-q"]
        outputs = {}
        for how in ("--daemon", "--no-daemon", None):
            out = tmp_path / f"out{how}.png"
            done = esm(env, "synth", str(exemplar), "-o", str(out), *flags, *([how] if how else []))
            assert done.returncode == 0, done.stderr
            outputs[how] = np.asarray(Image.open(out))
        with Client(endpoint) as client:
            assert client.info()["jobs"]["completed"] == 2  # --daemon and the default; not --no-daemon
        assert np.array_equal(outputs["--daemon"], outputs["--no-daemon"])
        refused = esm(env, "synth", str(exemplar), "-o", str(tmp_path / "x.png"), "--size", "8x8", "--daemon", "-q")
        assert refused.returncode == 2 and "too small" in refused.stderr

        stopped = esm(env, "daemon", "stop")
        assert stopped.returncode == 0 and "stopped" in stopped.stdout
        assert record_file(env) == []
        assert esm(env, "daemon", "status").returncode == 1
    finally:
        esm(env, "daemon", "stop")


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "shutdown"])
def test_graceful_shutdown_cancels_running_job(daemon_factory: Callable[..., Any], exemplar: Any,
                                               endless: dict, how: str) -> None:
    daemon = daemon_factory()
    with Client(daemon.endpoint, timeout_s=30) as client:
        job = client.submit("texture", endless, {"exemplar": exemplar})
        assert job.poll(timeout_ms=60_000), "the job should be running"
        assert record_file(daemon.env)
        if how == "shutdown":
            client.shutdown()
        else:
            daemon.process.send_signal(getattr(signal, how))
        with pytest.raises(JobCancelled):
            job.wait()
    assert daemon.process.wait(60) == 0
    assert record_file(daemon.env) == []
    assert "stopping: " in daemon.log_text() and "esm daemon stopped" in daemon.log_text()


def test_client_killed_mid_job_gets_its_job_cancelled(daemon: Any, exemplar: Any, endless: dict) -> None:
    script = (
        "import sys, time\n"
        "from esm_client.client import Client\n"
        "from esm_client.protocol import RawImage\n"
        f"client = Client({daemon.endpoint!r})\n"
        f"job = client.submit('texture', {endless!r}, {{'exemplar': RawImage(32, 32, 1, {exemplar.data!r})}})\n"
        "job.poll(timeout_ms=60000)\n"
        "print(job.id, flush=True)\n"
        "while True:\n"
        "    job.poll(timeout_ms=100)\n")
    with Client(daemon.endpoint) as client:
        before = client.info()["jobs"]["cancelled"]
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        job_id = child.stdout.readline().strip()
        assert job_id, "the child never got its job running"
        with Client(daemon.endpoint) as client:
            assert client.info()["jobs"]["running"] == 1
    finally:
        child.kill()  # like GIMP killing a plug-in whose progress bar was cancelled
        child.wait()
    timeout = P.Limits().heartbeat_timeout_s
    info = wait_until_no_job_runs(daemon.endpoint, timeout + 30)
    assert info["jobs"]["cancelled"] == before + 1
    assert f"client of job {job_id} silent" in daemon.log_text()


def test_client_notices_a_dead_daemon(daemon_factory: Callable[..., Any], exemplar: Any, endless: dict) -> None:
    daemon = daemon_factory()
    with Client(daemon.endpoint, timeout_s=3) as client:
        job = client.submit("texture", endless, {"exemplar": exemplar})
        assert job.poll(timeout_ms=60_000)
        daemon.process.kill()
        with pytest.raises(DaemonUnavailable, match="stopped answering"):
            job.wait()


def test_endpoint_in_use_is_a_clear_start_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        endpoint = f"tcp://127.0.0.1:{taken.getsockname()[1]}"
        done = esm(isolated_env(tmp_path), "daemon", "start", "--foreground", "--endpoint", endpoint)
    assert done.returncode == 1
    assert f"cannot listen on {endpoint}" in done.stderr and "Traceback" not in done.stderr


def test_non_loopback_without_keys_is_refused(tmp_path: Path) -> None:
    env = isolated_env(tmp_path)
    for extra in (["--foreground"], []):
        done = esm(env, "daemon", "start", "--endpoint", f"tcp://0.0.0.0:{free_port()}", *extra, timeout=60)
        assert done.returncode == 2
        assert "without CURVE keys" in done.stderr and "esm daemon keys" in done.stderr


def _other_address() -> str | None:
    """A non-loopback address of this machine, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_non_loopback_with_curve_keys(tmp_path: Path, daemon_factory: Callable[..., Any],
                                      monkeypatch: pytest.MonkeyPatch, exemplar: Any, tiny: dict) -> None:
    keys, stranger = tmp_path / "keys", tmp_path / "stranger"
    env = isolated_env(tmp_path)
    for folder in (keys, stranger):
        made = esm(env, "daemon", "keys", "--keys-dir", str(folder), timeout=60)
        assert made.returncode == 0, made.stderr
    assert esm(env, "daemon", "keys", "--keys-dir", str(keys), timeout=60).returncode == 2  # no overwrite
    port = free_port()
    monkeypatch.setenv("ESM_KEYS_DIR", str(keys))  # the fixture's readiness ping needs them too
    daemon_factory("--keys-dir", str(keys), endpoint=f"tcp://0.0.0.0:{port}")

    with Client(f"tcp://127.0.0.1:{port}", timeout_s=30, curve=CurveKeys.from_dir(keys)) as client:
        assert client.ping()["type"] == "pong"
        [image] = client.run("texture", tiny, {"exemplar": exemplar})
        assert image.width == 32
    with Client(f"tcp://127.0.0.1:{port}", timeout_s=2) as plain, pytest.raises(DaemonUnavailable):
        plain.ping()
    good = CurveKeys.from_dir(keys)
    unknown = CurveKeys.from_dir(stranger)
    with Client(f"tcp://127.0.0.1:{port}", timeout_s=2,
                curve=CurveKeys(good.server_public, unknown.public, unknown.secret)) as intruder:
        with pytest.raises(DaemonUnavailable):
            intruder.ping()
    address = _other_address()
    if address is not None:  # shutdown is refused from anything but loopback
        with Client(f"tcp://{address}:{port}", timeout_s=30, curve=good) as remote:
            assert remote.ping()["type"] == "pong"
            with pytest.raises(DaemonError) as caught:
                remote.shutdown()
            assert caught.value.code == P.FORBIDDEN
            assert remote.ping()["type"] == "pong"


def test_ensure_daemon_starts_one_or_explains_why_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(DaemonUnavailable, match="start one with: esm daemon start"):
        ensure_daemon(endpoint, None, timeout_s=5)
    with pytest.raises(DaemonUnavailable, match="cannot run '/no/such/esm'"):
        ensure_daemon(endpoint, ["/no/such/esm", "daemon", "start"], timeout_s=5)
    failing = [sys.executable, "-c", "import sys; print('no GPU here'); sys.exit(3)"]
    with pytest.raises(DaemonUnavailable, match=r"exit status 3\): no GPU here"):
        ensure_daemon(endpoint, failing, timeout_s=30)

    env = isolated_env(tmp_path)
    for name in ("XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, env[name])
    try:
        ensure_daemon(endpoint, esm_command("daemon", "start", "--endpoint", endpoint), timeout_s=180)
        with Client(endpoint) as client:
            assert client.ping()["type"] == "pong"
        ensure_daemon(endpoint, ["/no/such/esm"], timeout_s=5)  # answers already: nothing to start
    finally:
        assert esm(env, "daemon", "stop", "--endpoint", endpoint).returncode == 0
