"""Issue 16, "Beyond": no other local user gets service from a loopback daemon. Every request
must be signed with the secret the daemon writes into its owner-only runtime folder; without
it a request gets the error `unauthorised` and has no other effect."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esm_client import protocol as P
from esm_client.autostart import ensure_daemon, ping
from esm_client.client import Client, DaemonError
from esm_client.runtime import RUNTIME_DIR_ENV, read_secret, secret_path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import esm_command  # noqa: E402

WRONG = b"0" * 64


def request(op: str, rid: int, **fields: Any) -> bytes:
    return msgpack.packb({"v": P.PROTOCOL_VERSION, "id": rid, "op": op, **fields})


def forgeries(endpoint: str, header: bytes) -> dict[str, list[bytes]]:
    """The ways to send ``header`` without the daemon's secret (frames after the routing id)."""
    tampered = bytearray(header)
    tampered[-1] ^= 1  # a bit of the last field: another request than the one signed (same id)
    return {
        "no signature frame (protocol 1)": [header],
        "empty signature": [b"", header],
        "wrong secret": [P.sign(WRONG, header), header],
        "tampered header": [P.sign(read_secret(endpoint), header), bytes(tampered)],
        "secret as signature": [read_secret(endpoint), header],
    }


def refused(sock: Any, rid: int | None) -> None:
    """The one reply is `unauthorised` (with the request's id when it could be read), and
    nothing follows it."""
    reply, frames = sock.receive(timeout_s=30)
    assert (reply["type"], reply["code"], reply["id"], frames) == ("error", P.UNAUTHORISED, rid, []), reply
    assert "secret" in reply["message"]
    assert sock.receive(timeout_s=0.5) is None


def test_secret_is_owner_only_from_the_start_and_removed_on_exit(daemon_factory: Callable[..., Any],
                                                                 runtime_dir: Path) -> None:
    umask = os.umask(0)  # the daemon inherits it: the secret must be owner-only anyway
    try:
        daemon = daemon_factory()
    finally:
        os.umask(umask)
    path = secret_path(daemon.endpoint)
    assert path.parent == runtime_dir
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, oct(path.stat().st_mode)
    assert stat.S_IMODE(runtime_dir.stat().st_mode) & 0o077 == 0
    secret = read_secret(daemon.endpoint)
    assert len(secret) == 64 and int(secret, 16) >= 0
    with Client(daemon.endpoint) as client:
        assert client.ping()["pid"] == daemon.process.pid
    assert daemon.stop(signal.SIGTERM) == 0
    assert not path.exists()


def test_restarted_daemon_has_a_new_secret_that_clients_pick_up(daemon_factory: Callable[..., Any]) -> None:
    first = daemon_factory()
    old = read_secret(first.endpoint)
    with Client(first.endpoint, timeout_s=30) as client:
        assert client.ping()["pid"] == first.process.pid
        first.process.kill()  # no clean-up: the stale secret stays until the next daemon replaces it
        first.process.wait()
        assert read_secret(first.endpoint) == old
        second = daemon_factory(endpoint=first.endpoint)
        assert read_secret(first.endpoint) not in (None, old)
        assert client.ping()["pid"] == second.process.pid  # the same Client, signing with the new secret


@pytest.mark.parametrize("op, fields", [("ping", {}), ("info", {}), ("heartbeat", {"jobs": ["x"]}),
                                        ("shutdown", {}), ("dance", {})])
def test_requests_without_the_secret_get_unauthorised_only(daemon: Any, make_raw_socket: Any, op: str,
                                                           fields: dict) -> None:
    header = request(op, 41, **fields)
    for how, frames in forgeries(daemon.endpoint, header).items():
        sock = make_raw_socket(daemon.endpoint)
        try:
            sock.send_unsigned(*frames)
            refused(sock, None if how == "no signature frame (protocol 1)" else 41)
        finally:
            sock.close()
    assert daemon.process.poll() is None, "the daemon stopped"
    with Client(daemon.endpoint) as client:
        assert client.ping()["pid"] == daemon.process.pid


def test_unsigned_submit_starts_no_job(daemon: Any, make_raw_socket: Any, exemplar: Any, tiny: dict) -> None:
    with Client(daemon.endpoint) as client:
        before = client.info()["jobs"]
    header = request("submit", 42, mode="texture", params=tiny,
                     images={"exemplar": {"width": 32, "height": 32, "channels": 1, "frame": 1}})
    for how, frames in forgeries(daemon.endpoint, header).items():
        if how == "no signature frame (protocol 1)":
            continue  # its pixel frame would be read as the header
        sock = make_raw_socket(daemon.endpoint)
        try:
            sock.send_unsigned(*frames, exemplar.data)
            refused(sock, 42)
        finally:
            sock.close()
    with Client(daemon.endpoint) as client:
        assert client.info()["jobs"] == before


def test_only_a_signed_cancel_cancels(daemon: Any, raw_socket: Any, exemplar: Any, endless: dict) -> None:
    """The job's own connection, which may cancel it, cannot do so without the secret."""
    raw_socket.send(request("submit", 1, mode="texture", params=endless,
                            images={"exemplar": {"width": 32, "height": 32, "channels": 1, "frame": 1}}),
                    exemplar.data)
    accepted, _ = raw_socket.receive()
    assert accepted["type"] == "accepted", accepted
    cancel = request("cancel", 2, job=accepted["job"])
    for how, frames in forgeries(daemon.endpoint, cancel).items():
        raw_socket.send_unsigned(*frames)
        while True:  # the job keeps sending progress; the refusal comes among it
            reply, _ = raw_socket.receive()
            if reply["type"] != "progress":
                break
        assert (reply["type"], reply.get("code"), reply["id"]) == (
            "error", P.UNAUTHORISED, None if how == "no signature frame (protocol 1)" else 2), (how, reply)
    with Client(daemon.endpoint) as client:
        assert client.info()["jobs"]["running"] == 1
    raw_socket.send(cancel)
    seen = []
    while not seen or seen[-1]["type"] in ("progress", "ok"):
        seen.append(raw_socket.receive()[0])
    assert "ok" in [e["type"] for e in seen] and seen[-1]["type"] == "cancelled", seen


def test_clients_without_the_secret_are_refused(daemon_factory: Callable[..., Any], tmp_path: Path,
                                                exemplar: Any, tiny: dict) -> None:
    daemon = daemon_factory()
    with Client(daemon.endpoint, secret=WRONG) as client:
        for call in (client.ping, client.info, client.shutdown,
                     lambda: client.submit("texture", tiny, {"exemplar": exemplar})):
            with pytest.raises(DaemonError) as caught:
                call()
            assert caught.value.code == P.UNAUTHORISED
    elsewhere = tmp_path / "other-runtime"  # a client that looks for the secret somewhere else
    elsewhere.mkdir(mode=0o700)
    env = {**daemon.env, RUNTIME_DIR_ENV: str(elsewhere)}
    stopped = subprocess.run(esm_command("daemon", "stop"), env=env, capture_output=True, text=True, timeout=120)
    assert stopped.returncode == 1 and "refuses this client" in stopped.stderr, stopped.stderr
    status = subprocess.run(esm_command("daemon", "status"), env=env, capture_output=True, text=True, timeout=120)
    assert status.returncode == 1 and "refuses this client" in status.stdout, status.stdout
    # It neither starts a second daemon on the taken endpoint nor pretends that none answers.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(RUNTIME_DIR_ENV, str(elsewhere))
        with pytest.raises(DaemonError) as caught:
            ping(daemon.endpoint)
        assert caught.value.code == P.UNAUTHORISED
        with pytest.raises(DaemonError) as caught:
            ensure_daemon(daemon.endpoint, ["/no/such/esm"], timeout_s=5)
        assert caught.value.code == P.UNAUTHORISED
    assert daemon.process.poll() is None
    with Client(daemon.endpoint) as client:
        client.shutdown()  # the owner's client may
    assert daemon.process.wait(60) == 0


def as_nobody(endpoint: str) -> list[str]:
    """What a client running as the user nobody gets from the daemon: a forked child of this
    process (whose Python nobody may not be able to run) that drops to nobody first."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        lines = []
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                secret_path(endpoint).read_bytes()
                lines.append("read the secret")
            except PermissionError:
                pass
            with Client(endpoint, timeout_s=30) as client:  # a fresh ZeroMQ context: pyzmq notices the fork
                for op in ("ping", "shutdown"):
                    try:
                        client.request(op)
                        lines.append(f"{op} served")
                    except DaemonError as error:
                        lines.append(f"{op} {error.code}")
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            lines.append(f"{type(error).__name__}: {error}")
        finally:
            os.write(write_end, "\n".join(lines).encode())
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        report = pipe.read().decode()
    os.waitpid(pid, 0)
    return report.split("\n")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="switching users needs root")
def test_another_local_user_gets_no_service(daemon: Any) -> None:
    """A real other user (nobody) on the same machine: it reaches the loopback port, but not
    the secret."""
    assert as_nobody(daemon.endpoint) == ["ping unauthorised", "shutdown unauthorised"]
    assert daemon.process.poll() is None
    with Client(daemon.endpoint) as client:
        assert client.ping()["pid"] == daemon.process.pid


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(st.binary(max_size=512), min_size=1, max_size=4))
def test_random_unsigned_messages_are_unauthorised(raw_socket: Any, frames: list[bytes]) -> None:
    raw_socket.send_unsigned(*frames)
    reply, _ = raw_socket.receive()
    assert (reply["type"], reply["code"]) == ("error", P.UNAUTHORISED), reply
