"""Attacks and edge cases from issue 16, each against a real daemon process over loopback ZeroMQ."""
from __future__ import annotations

import os
import resource
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import msgpack
import pytest
import zmq

from esm_client import protocol as P
from esm_client.client import Client, DaemonError, Finished, JobCancelled
from esm_client.runtime import read_secret

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import esm_command, isolated_env  # noqa: E402


def esm(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(esm_command(*args), env=env, capture_output=True, text=True, timeout=timeout)


def status_field(pid: int, name: str) -> int:
    """A kB field of /proc/PID/status (VmRSS, VmHWM, VmSize), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(name)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_running(endpoint: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    with Client(endpoint) as watcher:
        while watcher.info()["jobs"]["running"] == 0:
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.05)


def finish(job: Any) -> Finished:
    """Polls until the job's last event; returns it."""
    for event in job.events():
        if isinstance(event, Finished):
            return event
    raise AssertionError("unreachable")


# 1. One oversized header stalls everybody
def test_oversized_header_is_refused_without_stalling_anyone(daemon_factory: Callable[..., Any],
                                                             make_raw_socket: Any, exemplar: Any,
                                                             endless: dict) -> None:
    daemon = daemon_factory("--heartbeat-timeout", "2")
    # 16 MiB of nested empty arrays (under the 64 MiB frame limit): decoded whole, one took
    # 6-9 s and about 1 GB.
    bomb = msgpack.packb({"id": 7, "v": P.PROTOCOL_VERSION, "op": "ping", "pad": [[[]] * 4096] * 4096})
    with Client(daemon.endpoint, timeout_s=30) as client, Client(daemon.endpoint, timeout_s=60) as pinger:
        assert pinger.ping()["type"] == "pong"
        job = client.submit("texture", endless, {"exemplar": exemplar})
        assert job.poll(timeout_ms=60_000), "the job should be running"
        attacker = make_raw_socket(daemon.endpoint)
        try:
            for _ in range(2):
                attacker.send(bomb)
            time.sleep(0.2)  # both are in the daemon's socket before the ping
            asked = time.monotonic()
            assert pinger.ping()["type"] == "pong"
            round_trip = time.monotonic() - asked
            replies = []
            while len(replies) < 2:  # the job's client keeps polling (and heartbeating) meanwhile
                events = job.poll(timeout_ms=50)
                assert not job.done, f"the heartbeating client's job ended: {events}"
                received = attacker.receive(timeout_s=0)
                if received is not None:
                    replies.append(received[0])
        finally:
            attacker.close()
        # Generous: a ping takes milliseconds; behind one decoded bomb it took seconds.
        assert round_trip < 1.0, round_trip
        assert all((r["type"], r["code"], r["id"]) == ("error", P.TOO_LARGE, 7) for r in replies)
        assert "limit is 65536" in replies[0]["message"]
        alive_until = time.monotonic() + 3  # longer than the heartbeat timeout
        while time.monotonic() < alive_until:
            job.poll(timeout_ms=100)
            assert not job.done, "the job was cancelled as if its client were silent"
        job.cancel()
        with pytest.raises(JobCancelled):
            job.wait()


# 2. No limit on a whole message
def test_undeclared_pixel_frames_are_refused_and_their_memory_returned(daemon_factory: Callable[..., Any],
                                                                        make_raw_socket: Any) -> None:
    daemon = daemon_factory()
    sock = make_raw_socket(daemon.endpoint)
    try:
        sock.send_header({"v": P.PROTOCOL_VERSION, "id": 0, "op": "ping"})
        assert sock.receive()[0]["type"] == "pong"
        before = status_field(daemon.process.pid, "VmRSS")
        frame = bytes(24_000_000)  # below glibc's 32 MiB mmap threshold: these land in the heap
        for n in range(1, 4):
            sock.send_header({"v": P.PROTOCOL_VERSION, "id": n, "op": "ping"}, *[frame] * 8)  # 192 MB nobody described
            reply, _ = sock.receive()
            assert (reply["type"], reply["code"], reply["id"]) == ("error", P.BAD_MESSAGE, n), reply
            assert "pixel frames" in reply["message"]
        grown = status_field(daemon.process.pid, "VmRSS") - before
    finally:
        sock.close()
    # Bound: one frame. Without handing the heap back, it stayed 60+ MB (several frames) higher.
    assert grown < len(frame), f"resident memory grew by {grown / 2**20:.0f} MiB"


# 3. ipc:// daemons cannot be stopped by request
@pytest.mark.parametrize("how", ["esm daemon stop", "SIGTERM"])
def test_ipc_daemon_socket_is_owner_only_stops_and_is_removed(daemon_factory: Callable[..., Any],
                                                              tmp_path: Path, how: str) -> None:
    path = tmp_path / "esm.sock"
    env = isolated_env(tmp_path / "home", f"ipc://{path}")  # made before the umask: platformdirs checks them
    umask = os.umask(0)  # the daemon inherits it: its socket must be owner-only anyway
    try:
        daemon = daemon_factory(endpoint=f"ipc://{path}", env=env)
    finally:
        os.umask(umask)
    assert stat.S_ISSOCK(path.stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, oct(path.stat().st_mode)
    if how == "SIGTERM":
        daemon.process.send_signal(signal.SIGTERM)
    else:
        stopped = esm(daemon.env, "daemon", "stop", "--endpoint", daemon.endpoint)
        assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
    assert daemon.process.wait(30) == 0
    assert not path.exists()


# 4 and 5. A cancel or SIGTERM while the engine is in a long step without evaluations
def test_cancel_and_sigterm_during_a_long_step_are_answered_at_once(daemon_factory: Callable[..., Any],
                                                                    make_exemplar: Any, exemplar: Any,
                                                                    tiny: dict) -> None:
    daemon = daemon_factory()
    # Exact matching against a 1024x1024 exemplar: seconds of set-up before the first evaluation.
    big = make_exemplar(1, 32)
    big = P.RawImage(1024, 1024, 1, bytes(big.data) * 1024)
    long_step = {"width": 64, "height": 64, "phases": 1, "iterations": 5, "matching": "exact"}
    with Client(daemon.endpoint, timeout_s=60) as client:
        job = client.submit("texture", long_step, {"exemplar": big})
        wait_running(daemon.endpoint)
        asked = time.monotonic()
        job.cancel()
        with pytest.raises(JobCancelled):
            job.wait()
        to_event = time.monotonic() - asked
        [image] = client.run("texture", tiny, {"exemplar": exemplar})  # waits until the worker is free
        to_free = time.monotonic() - asked
        assert image.width == 32
        # The event does not wait for the engine to look at its token (which took to_free); the
        # 1 s bound is the issue's, far above the loop's milliseconds.
        assert to_event < 1.0 and to_event < to_free / 4, (to_event, to_free)
        assert client.info()["jobs"]["cancelled"] == 1

        job = client.submit("texture", long_step, {"exemplar": big})
        wait_running(daemon.endpoint)
        signalled = time.monotonic()
        daemon.process.send_signal(signal.SIGTERM)
        ends = [e for e in job.events() if isinstance(e, Finished)]
    to_event = time.monotonic() - signalled
    assert len(ends) == 1 and isinstance(ends[0].error, JobCancelled)
    assert to_event < 1.0 and to_event < to_free / 4, (to_event, to_free)
    assert daemon.process.wait(30) == 0
    exited = time.monotonic() - signalled
    # The documented grace period (2 s), plus generous room for the process's own exit.
    assert exited < 2.0 + 5.0, exited


# 6. A connection flood spins a core; clients are capped
def test_clients_beyond_the_cap_get_a_clear_error(daemon_factory: Callable[..., Any]) -> None:
    daemon = daemon_factory("--max-clients", "2", "--heartbeat-timeout", "1")
    first, second, third = (Client(daemon.endpoint, timeout_s=10) for _ in range(3))
    time.sleep(2.5)  # the fixture's readiness pings count as clients until they fall silent
    try:
        assert first.ping()["type"] == second.ping()["type"] == "pong"
        with pytest.raises(DaemonError) as caught:
            third.ping()
        assert caught.value.code == P.TOO_MANY_CLIENTS and "limit is 2" in caught.value.message
        assert first.info()["limits"]["max_clients"] == 2
        time.sleep(2.5)  # the first two fall silent for longer than the heartbeat timeout (1 s)
        assert third.ping()["type"] == "pong"
    finally:
        for client in (first, second, third):
            client.close()


def test_connection_flood_at_the_descriptor_limit_leaves_the_daemon_idle(daemon_factory: Callable[..., Any]) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1024:
        pytest.skip(f"the hard descriptor limit ({hard}) leaves no room above the 128 set here")
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, hard))  # the daemon inherits 128 as its soft limit
    try:
        daemon = daemon_factory()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    port = int(daemon.endpoint.rpartition(":")[2])
    pid = daemon.process.pid

    def cpu_over(seconds: float) -> float:
        start = cpu_seconds(pid)
        time.sleep(seconds)
        return cpu_seconds(pid) - start

    idle = cpu_over(2.0)
    flood = [socket.create_connection(("127.0.0.1", port)) for _ in range(400)]
    try:
        flooded = cpu_over(2.0)
        with Client(daemon.endpoint, timeout_s=10) as client:
            assert client.ping()["type"] == "pong"
    finally:
        for sock in flood:
            sock.close()
    # A spinning accept loop uses a whole core (about 2 s here); idle uses next to nothing.
    assert flooded < idle + 0.5, (idle, flooded)


# 7. Out of memory
def test_out_of_memory_is_reported_and_freed(daemon_factory: Callable[..., Any], make_exemplar: Any,
                                             exemplar: Any, tiny: dict) -> None:
    daemon = daemon_factory()
    pid = daemon.process.pid
    with Client(daemon.endpoint, timeout_s=60) as client:
        client.run("texture", tiny, {"exemplar": exemplar})  # everything a job needs is loaded
        before = status_field(pid, "VmRSS")
        # Address space for 1.5 GB more; a 1024x1024 synthesis from a 512x512 exemplar needs more.
        room = status_field(pid, "VmSize") + (1536 << 20)
        resource.prlimit(pid, resource.RLIMIT_AS, (room, resource.RLIM_INFINITY))  # soft limit only
        big = {"width": 1024, "height": 1024, "phases": 1, "iterations": 3}
        exemplar512 = P.RawImage(512, 512, 3, bytes(make_exemplar(3, 64).data) * 64)
        with pytest.raises(DaemonError) as caught:
            client.run("texture", big, {"exemplar": exemplar512})
        assert caught.value.code == P.OUT_OF_MEMORY, caught.value
        assert "smaller size" in caught.value.message and "fast" in caught.value.message
        # Most of what the job took (the peak above before) is handed back before the error is sent.
        kept, peak = status_field(pid, "VmRSS") - before, status_field(pid, "VmHWM") - before
        assert kept < peak / 2, (kept >> 20, peak >> 20)
        resource.prlimit(pid, resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        [image] = client.run("texture", tiny, {"exemplar": exemplar})
        assert image.width == 32


def test_jobs_larger_than_memory_are_refused_before_work(daemon_factory: Callable[..., Any], exemplar: Any,
                                                          tiny: dict) -> None:
    daemon = daemon_factory("--max-memory-mb", "1024")
    with Client(daemon.endpoint, timeout_s=30) as client:
        assert client.info()["limits"]["memory_bytes"] == 1 << 30
        with pytest.raises(DaemonError) as caught:
            client.submit("texture", {**tiny, "width": 1024, "height": 1024}, {"exemplar": exemplar})
        assert caught.value.code == P.TOO_LARGE
        assert "GiB at its peak" in caught.value.message and "1.0 GiB" in caught.value.message
        [image] = client.run("texture", tiny, {"exemplar": exemplar})
        assert image.width == 32
        assert client.info()["jobs"]["completed"] == 1  # the refused one never ran


# 8. Smaller holes
def test_a_second_connection_with_the_same_routing_id_gets_nothing(daemon: Any, exemplar: Any,
                                                                   endless: dict) -> None:
    def dealer() -> zmq.Socket:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTING_ID, b"victim")
        sock.connect(daemon.endpoint)
        return sock

    def receive(sock: zmq.Socket, timeout_s: float) -> dict[str, Any] | None:
        return msgpack.unpackb(sock.recv_multipart()[0]) if sock.poll(timeout_s * 1000) else None

    def signed(header: dict[str, Any]) -> list[bytes]:
        packed = msgpack.packb(header)
        return [P.sign(read_secret(daemon.endpoint), packed), packed]

    owner = dealer()
    thief = None
    try:
        submit = {"v": P.PROTOCOL_VERSION, "id": 1, "op": "submit", "mode": "texture", "params": endless,
                  "images": {"exemplar": {"width": 32, "height": 32, "channels": 1, "frame": 1}}}
        owner.send_multipart([*signed(submit), exemplar.data])
        accepted = receive(owner, 30)
        assert accepted["type"] == "accepted"
        assert receive(owner, 60)["type"] == "progress"
        thief = dealer()
        thief.send_multipart(signed({"v": P.PROTOCOL_VERSION, "id": 2, "op": "ping"}))
        thief.send_multipart(signed({"v": P.PROTOCOL_VERSION, "id": 3, "op": "cancel", "job": accepted["job"]}))
        assert receive(thief, 3) is None  # refused: it neither gets answers nor the owner's events
        owner.send_multipart(signed({"v": P.PROTOCOL_VERSION, "id": 4, "op": "cancel", "job": accepted["job"]}))
        seen = []
        while not seen or seen[-1]["type"] not in ("cancelled", "result", "error"):
            event = receive(owner, 30)
            assert event is not None, seen
            seen.append(event)
        assert {"ok", "cancelled"} <= {e["type"] for e in seen}
    finally:
        for sock in (owner, thief):
            if sock is not None:
                sock.close()


@pytest.mark.parametrize("header, code", [
    ({"v": float(P.PROTOCOL_VERSION), "op": "ping", "id": 1}, P.BAD_VERSION),
    ({"v": True, "op": "ping", "id": 1}, P.BAD_VERSION),
    ({"v": P.PROTOCOL_VERSION, "op": "submit", "id": [1]}, P.BAD_MESSAGE),
    ({"v": P.PROTOCOL_VERSION, "op": "submit"}, P.BAD_MESSAGE),
    ({"v": P.PROTOCOL_VERSION, "op": "submit", "id": "x" * 129}, P.BAD_MESSAGE),
])
def test_inexact_versions_and_unreadable_submit_ids_are_refused(raw_socket: Any, tiny: dict, header: dict,
                                                                code: str) -> None:
    if header["op"] == "submit":
        header = {**header, "mode": "texture", "params": tiny,
                  "images": {"exemplar": {"width": 32, "height": 32, "channels": 1, "frame": 1}}}
    raw_socket.send_header(header, *([bytes(32 * 32)] if header["op"] == "submit" else []))
    reply, _ = raw_socket.receive()
    assert (reply["type"], reply["code"]) == ("error", code), reply
    if code == P.BAD_MESSAGE:
        assert "needs an id" in reply["message"]


def test_queue_takes_connections_in_turn(daemon: Any, exemplar: Any, endless: dict, tiny: dict) -> None:
    with Client(daemon.endpoint, timeout_s=60) as a, Client(daemon.endpoint, timeout_s=60) as b:
        blocker = a.submit("texture", endless, {"exemplar": exemplar})
        assert blocker.poll(timeout_ms=60_000)
        jobs = {f"a{n}": a.submit("texture", tiny, {"exemplar": exemplar}) for n in (1, 2, 3)}
        jobs["b1"] = b.submit("texture", tiny, {"exemplar": exemplar})
        blocker.cancel()
        finished: list[str] = []
        deadline = time.monotonic() + 120
        while len(finished) < len(jobs) and time.monotonic() < deadline:
            for name, job in jobs.items():
                if name not in finished and any(isinstance(e, Finished) for e in job.poll(timeout_ms=5)):
                    finished.append(name)
        assert all(job.error is None for job in jobs.values())
    assert finished == ["a1", "b1", "a2", "a3"]  # first come first served would run b1 last


def test_stop_sees_a_zombie_daemon_as_stopped(daemon_factory: Callable[..., Any]) -> None:
    daemon = daemon_factory()  # this test's child: once it exits it is a zombie until waited for
    stopped = esm(daemon.env, "daemon", "stop", "--endpoint", daemon.endpoint)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
    assert daemon.process.wait(10) == 0


def test_cache_entries_larger_than_the_cache_are_not_kept(daemon_factory: Callable[..., Any], make_exemplar: Any,
                                                          tiny: dict) -> None:
    daemon = daemon_factory("--cache-mb", "1")  # features 1 MiB, networks 256 KiB: less than one entry
    with Client(daemon.endpoint, timeout_s=60) as client:
        for _ in range(2):
            client.run("texture", {**tiny, "width": 64, "height": 64}, {"exemplar": make_exemplar(3, 64)})
        caches = client.info()["caches"]
    for name, cache in caches.items():
        assert cache["bytes"] <= cache["max_bytes"], (name, cache)
