"""Starting the daemon on demand (the GIMP/Krita plug-ins and ``esm --daemon`` use this).
Standard library + pyzmq only."""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
from typing import Any, Sequence

from .client import Client, DaemonError, DaemonUnavailable
from .protocol import UNAUTHORISED, default_endpoint

POLL_S = 0.2


def ping(endpoint: str | None = None, timeout_s: float = 0.5) -> dict[str, Any] | None:
    """The daemon's pong, or None when nothing answers within ``timeout_s``. A daemon that
    refuses this client (``unauthorised``: another user's, or its secret is not where this
    client looks) raises DaemonError: starting one more would not help."""
    try:
        with Client(endpoint, timeout_s=timeout_s) as client:
            return client.ping()
    except DaemonError as error:
        if error.code == UNAUTHORISED:
            raise
        return None


def _last_lines(stream: Any, count: int = 3) -> str:
    stream.seek(0)
    lines = [line.strip() for line in stream.read().decode(errors="replace").splitlines() if line.strip()]
    return " / ".join(lines[-count:])


def wait_until_answering(endpoint: str, process: subprocess.Popen | None, timeout_s: float,
                         output: Any = None) -> dict[str, Any]:
    """Pings until the daemon answers. Fails early if ``process`` (the starter) exits non-zero;
    ``output`` (a file it writes to) supplies the reason."""
    deadline = time.monotonic() + timeout_s
    refusal = None
    while True:
        try:
            pong, refusal = ping(endpoint, timeout_s=POLL_S), None
        except DaemonError as error:  # a ping sent before a starting daemon wrote its secret
            pong, refusal = None, error
        if pong is not None:
            return pong
        if process is not None and process.poll() not in (None, 0):
            reason = _last_lines(output) if output is not None else ""
            raise DaemonUnavailable(f"the ESM daemon could not start (exit status {process.returncode})"
                                    + (f": {reason}" if reason else ""))
        if time.monotonic() > deadline:
            if refusal is not None:
                raise refusal
            raise DaemonUnavailable(f"the ESM daemon did not answer at {endpoint} within {timeout_s:g} s"
                                    + (f" ({_last_lines(output)})" if output is not None else ""))
        time.sleep(POLL_S)


def ensure_daemon(endpoint: str | None = None, start_command: Sequence[str] | None = None,
                  timeout_s: float = 60.0) -> None:
    """Returns once a daemon answers at ``endpoint``. If none does, runs ``start_command``
    (e.g. ``["/path/to/esm", "daemon", "start", "--endpoint", endpoint]``; a command that stays
    in the foreground works too) and waits up to ``timeout_s``. Raises DaemonUnavailable with
    a message fit to show the user, or DaemonError ``unauthorised`` when a daemon answers but
    refuses this client."""
    endpoint = default_endpoint(endpoint)
    if ping(endpoint) is not None:
        return
    if not start_command:
        raise DaemonUnavailable(f"no ESM daemon answers at {endpoint}; start one with: esm daemon start")
    output = tempfile.TemporaryFile()
    try:
        process = subprocess.Popen(list(start_command), stdin=subprocess.DEVNULL, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=os.name == "posix")
    except OSError as error:
        output.close()
        raise DaemonUnavailable(f"cannot run {start_command[0]!r} to start the ESM daemon: "
                                f"{error.strerror or error}") from None
    with output:
        wait_until_answering(endpoint, process, timeout_s, output)
