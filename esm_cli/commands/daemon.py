"""esm daemon start|status|stop|keys: run and control the synthesis daemon."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from esm_client import protocol as P
from esm_cli.errors import UserError, ping_daemon

START_TIMEOUT_S = 120.0  # first start imports torch and may initialise a GPU
STOP_TIMEOUT_S = 30.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("daemon", help="run and control the synthesis daemon",
                                   description="The daemon keeps the engine (device, networks, style features) "
                                               "alive between jobs; plug-ins and `esm synth` use it.")
    commands = parser.add_subparsers(dest="daemon_command", metavar="ACTION")
    commands.required = True
    limits = P.Limits()

    start = commands.add_parser("start", help="start a daemon (returns once it answers)")
    _endpoint(start)
    start.add_argument("--foreground", action="store_true", help="run in this process, log to stderr")
    start.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto",
                       help="auto = CUDA, then Apple MPS, then CPU (default %(default)s)")
    start.add_argument("--cache-mb", type=int, default=1024,
                       help="memory for cached style features; networks get a quarter more (default %(default)s)")
    start.add_argument("--max-pixels", type=int, default=limits.max_pixels,
                       help="largest input image, in pixels (default %(default)s)")
    start.add_argument("--max-output-pixels", type=int, default=limits.max_output_pixels,
                       help="largest output image, in pixels (default %(default)s)")
    start.add_argument("--max-queue", type=int, default=limits.max_queue,
                       help="jobs allowed to wait behind the running one (default %(default)s)")
    start.add_argument("--max-clients", type=int, default=limits.max_clients,
                       help="clients served at once; more get the error too_many_clients (default %(default)s)")
    start.add_argument("--max-memory-mb", type=int, default=0,
                       help="refuse jobs whose estimated peak memory is larger (default: the machine's "
                            "memory, or the GPU's)")
    start.add_argument("--heartbeat-timeout", type=float, default=limits.heartbeat_timeout_s,
                       help="seconds of client silence before its jobs are cancelled (default %(default)s)")
    start.add_argument("--keys-dir", help="CURVE keys, needed for a non-loopback endpoint "
                                          "(default: $ESM_KEYS_DIR, else the user config folder)")
    start.set_defaults(func=run_start)

    status = commands.add_parser("status", help="exit 0 if a daemon answers, 1 if not")
    _endpoint(status)
    status.set_defaults(func=run_status)

    stop = commands.add_parser("stop", help="ask the daemon to shut down and wait until it has")
    _endpoint(stop)
    stop.set_defaults(func=run_stop)

    keys = commands.add_parser("keys", help="create CURVE keys for a daemon on a non-loopback interface")
    keys.add_argument("--keys-dir", help="where to write them (default: $ESM_KEYS_DIR, else the user config folder)")
    keys.add_argument("--force", action="store_true", help="replace existing keys")
    keys.set_defaults(func=run_keys)


def _endpoint(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", default=None,
                        help=f"ZeroMQ endpoint (default: ${P.ENDPOINT_ENV}, else {P.DEFAULT_ENDPOINT})")


def _config(args: argparse.Namespace, endpoint: str):  # -> esm_daemon.config.DaemonConfig
    from esm_daemon.config import DaemonConfig

    for name in ("cache_mb", "max_pixels", "max_output_pixels", "max_queue", "max_clients"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    if args.max_memory_mb < 0:
        raise UserError("--max-memory-mb must not be negative")
    if not args.heartbeat_timeout > 0:
        raise UserError("--heartbeat-timeout must be positive")
    limits = P.Limits(max_pixels=args.max_pixels, max_output_pixels=args.max_output_pixels,
                      max_queue=args.max_queue, max_clients=args.max_clients,
                      heartbeat_timeout_s=args.heartbeat_timeout, memory_bytes=args.max_memory_mb << 20)
    return DaemonConfig(endpoint=endpoint, device=args.device, cache_bytes=args.cache_mb << 20,
                        limits=limits, keys_dir=args.keys_dir)


def run_start(args: argparse.Namespace) -> int:
    from esm_client.autostart import wait_until_answering
    from esm_client.client import DaemonError
    from esm_daemon import paths
    from esm_daemon.config import StartError, check_security

    endpoint = P.default_endpoint(args.endpoint)
    config = _config(args, endpoint)
    try:
        check_security(config)  # refuse before anything slow (torch) happens
    except StartError as error:
        raise UserError(str(error)) from None
    pong = ping_daemon(endpoint)
    if pong is not None:
        print(f"esm daemon already running at {endpoint} (pid {pong.get('pid')})")
        return 0
    if args.foreground:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s esm-daemon %(levelname)s %(message)s")
        from esm_daemon.server import serve

        try:
            serve(config)
        except StartError as error:
            raise UserError(str(error), exit_code=1) from None
        except RuntimeError as error:  # e.g. --device cuda without a GPU
            raise UserError(str(error), exit_code=1) from None
        return 0
    import subprocess

    log = paths.log_path(endpoint)
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "esm_cli.main", "daemon", "start", "--foreground", "--endpoint", endpoint,
               "--device", args.device, "--cache-mb", str(args.cache_mb), "--max-pixels", str(args.max_pixels),
               "--max-output-pixels", str(args.max_output_pixels), "--max-queue", str(args.max_queue),
               "--max-clients", str(args.max_clients), "--max-memory-mb", str(args.max_memory_mb),
               "--heartbeat-timeout", str(args.heartbeat_timeout)]
    if args.keys_dir:
        command += ["--keys-dir", args.keys_dir]
    with open(log, "ab+") as output:
        start_of_run = output.seek(0, os.SEEK_END)
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            pong = wait_until_answering(endpoint, process, START_TIMEOUT_S, _Tail(output, start_of_run))
        except DaemonError as error:  # no answer, or unauthorised: another user's daemon took the endpoint
            if process.poll() is None:
                process.terminate()
            raise UserError(f"{error} (log: {log})", exit_code=1) from None
    print(f"esm daemon started at {endpoint} (pid {pong.get('pid')}, log {log})")
    return 0


class _Tail:
    """This run's part of the shared log file, read like a fresh file."""

    def __init__(self, file, start: int) -> None:  # noqa: ANN001 - a binary file object
        self._file, self._start = file, start

    def seek(self, _: int) -> None:
        self._file.seek(self._start)

    def read(self) -> bytes:
        return self._file.read()


def run_status(args: argparse.Namespace) -> int:
    from esm_client.client import Client, DaemonError, DaemonUnavailable

    endpoint = P.default_endpoint(args.endpoint)
    try:
        with Client(endpoint, timeout_s=2.0) as client:
            info = client.info()
    except DaemonUnavailable:
        print(f"no esm daemon answers at {endpoint}")
        return 1
    except DaemonError as error:
        print(f"the esm daemon at {endpoint} refuses this client: {error.message}")
        return 1
    jobs = info.get("jobs", {})
    caches = info.get("caches", {})
    print(f"esm daemon {info.get('version')} at {endpoint}: pid {info.get('pid')}, device {info.get('device')}, "
          f"up {info.get('uptime_s', 0):.0f} s")
    print(f"jobs: {jobs.get('running', 0)} running, {jobs.get('queued', 0)} queued, "
          f"{jobs.get('completed', 0)} completed, {jobs.get('failed', 0)} failed, {jobs.get('cancelled', 0)} cancelled")
    for name, cache in caches.items():
        print(f"cache {name}: {cache.get('entries')} entries, {cache.get('bytes', 0) / 2**20:.1f} of "
              f"{cache.get('max_bytes', 0) / 2**20:.0f} MiB, {cache.get('hits')} hits, {cache.get('misses')} misses")
    return 0


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs; a zombie (exited, its parent has not collected it) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): kill's answer is all there is
    return stat[stat.rindex(")") + 2] not in "ZX"  # the state follows the parenthesised command name


def run_stop(args: argparse.Namespace) -> int:
    from esm_client.client import Client, DaemonError

    endpoint = P.default_endpoint(args.endpoint)
    pong = ping_daemon(endpoint, timeout_s=2.0)
    if pong is None:
        print(f"no esm daemon was running at {endpoint}")
        return 0
    try:
        with Client(endpoint, timeout_s=15.0) as client:
            client.shutdown()
    except DaemonError as error:
        raise UserError(f"the daemon refused to stop: {error}", exit_code=1) from None
    pid = int(pong.get("pid", 0))
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        gone = not _alive(pid) if pid and pid != os.getpid() else ping_daemon(endpoint, 0.3) is None
        if gone:
            print(f"esm daemon at {endpoint} stopped")
            return 0
        time.sleep(0.1)
    raise UserError(f"the daemon (pid {pid}) did not stop within {STOP_TIMEOUT_S:g} s", exit_code=1)


def run_keys(args: argparse.Namespace) -> int:
    from esm_daemon import keys, paths

    folder = paths.keys_dir(args.keys_dir)
    try:
        written = keys.generate(folder, force=args.force)
    except keys.KeysError as error:
        raise UserError(str(error)) from None
    for path in written:
        print(path)
    print(f"Start a daemon on another interface with: esm daemon start --endpoint tcp://0.0.0.0:5571 "
          f"--keys-dir {folder}\nOn a client machine, put server.key and client.key_secret in a folder "
          f"and set {paths.KEYS_DIR_ENV} to it.")
    return 0
