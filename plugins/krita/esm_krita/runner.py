"""Talking to the daemon without ever blocking Krita's UI.

Everything that can wait on the network (asking whether a daemon answers, starting one,
uploading the pixels until the daemon accepts the job) runs in a short-lived Python thread
with its own ZeroMQ socket. The socket is then handed to the UI thread (pyzmq sockets may
change threads once the first one is done with them), where a QTimer calls the
non-blocking ``job.poll()``: it drains every pending message and sends the heartbeats that
keep the job alive. A fresh connection per job means a restarted daemon is simply found
again by the next job; a daemon that dies mid-job ends that job with a message.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

from PyQt5.QtCore import QObject, QTimer, pyqtSignal

from esm_client.autostart import ensure_daemon
from esm_client.client import Client, DaemonError, DaemonUnavailable, Finished, Progress
from esm_client.plugin import PluginConfig, describe

from .operations import Request

POLL_MS = 50  # how often a running job is polled (progress latency; heartbeats need ~1 s)
STATUS_MS = 5000  # how often the docker's daemon status is refreshed while idle
PREVIEW_EVERY_S = 0.5
PING_TIMEOUT_S = 2.0  # how long "is a daemon there?" may take before the answer is "no"
CLIENT_TIMEOUT_S = 15.0  # upload + accept; and how long a silent daemon is tolerated mid-job


class _Background:
    """``function()`` in a daemon thread; ``done``, then ``result`` or ``error``."""

    def __init__(self, function: Callable[[], Any]) -> None:
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None
        self._function = function
        threading.Thread(target=self._run, name="esm-krita", daemon=True).start()

    def _run(self) -> None:
        try:
            self.result = self._function()
        except BaseException as error:  # reported in the UI thread
            self.error = error
        self.done = True


def _ping(config: PluginConfig) -> dict[str, Any]:
    with Client(config.endpoint, timeout_s=PING_TIMEOUT_S) as client:
        return client.info()


def _connect_and_submit(config: PluginConfig, request: Request) -> tuple[Client, Any]:
    """Runs in the background thread: makes sure a daemon answers (starting one if the
    installer recorded how), then submits. Returns the client and its job."""
    ensure_daemon(config.endpoint, config.start_command, config.start_timeout_s)
    client = Client(config.endpoint, timeout_s=CLIENT_TIMEOUT_S)
    try:
        return client, client.submit(request.mode, request.params, request.images,
                                     preview_every_s=PREVIEW_EVERY_S)
    except BaseException:
        client.close()
        raise


class Runner(QObject):
    """One job at a time. Signals carry the Request the job was started with."""

    busy_changed = pyqtSignal(bool)
    message = pyqtSignal(str)  # what is happening now, for the docker's status line
    daemon_status = pyqtSignal(str)
    progress = pyqtSignal(object, object)  # (Request, esm_client.client.Progress)
    finished = pyqtSignal(object, object)  # (Request, list[RawImage])
    failed = pyqtSignal(object, str)  # (Request, message); also used for "Cancelled."

    def __init__(self, config: PluginConfig, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.config = config
        self.request: Request | None = None
        self._starting: _Background | None = None
        self._status_check: _Background | None = None
        self._client: Client | None = None
        self._job: Any = None
        self._cancel_wanted = False
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._tick)
        self._status_timer = QTimer(self)
        self._status_timer.setInterval(STATUS_MS)
        self._status_timer.timeout.connect(self.refresh_status)

    @property
    def busy(self) -> bool:
        return self.request is not None

    def watch_status(self, on: bool) -> None:
        """Refresh the daemon status periodically (while a docker is visible)."""
        if on:
            self.refresh_status()
            self._status_timer.start()
        else:
            self._status_timer.stop()

    def refresh_status(self) -> None:
        if self.busy or self._status_check is not None:
            return
        self._status_check = _Background(lambda: _ping(self.config))
        self._timer.start()

    def start(self, request: Request) -> None:
        if self.busy:
            self.message.emit("A job is already running; cancel it first.")
            return
        self.request = request
        self._cancel_wanted = False
        self._starting = _Background(lambda: _connect_and_submit(self.config, request))
        self.busy_changed.emit(True)
        self.message.emit(f"Connecting to the daemon at {self.config.endpoint}...")
        self._timer.start()

    def cancel(self) -> None:
        if not self.busy:
            return
        self._cancel_wanted = True
        self.message.emit("Cancelling...")
        if self._job is not None:
            self._job.cancel()

    # -- driven by the timer, in the UI thread
    def _tick(self) -> None:
        # Cleared before handling: a slot may run a nested event loop that ticks again.
        if self._status_check is not None and self._status_check.done:
            check, self._status_check = self._status_check, None
            self._show_status(check)
        if self._starting is not None and self._starting.done:
            starting, self._starting = self._starting, None
            self._started(starting)
        if self._job is not None:
            self._poll()
        if not self.busy and self._status_check is None:
            self._timer.stop()

    def _show_status(self, check: _Background) -> None:
        if check.error is None:
            info = check.result or {}
            device = info.get("device", "?")
            self.daemon_status.emit(f"Daemon ready at {self.config.endpoint} ({device}, esm {info.get('version', '?')})")
        elif isinstance(check.error, DaemonUnavailable):
            self.daemon_status.emit(f"No daemon at {self.config.endpoint}. {self.config.start_hint()}")
        else:
            self.daemon_status.emit(f"Daemon at {self.config.endpoint}: {describe(check.error, self.config)}")

    def _started(self, starting: _Background) -> None:
        if starting.error is not None:
            self._end_failed(describe(starting.error, self.config))
            if isinstance(starting.error, DaemonUnavailable):
                self.daemon_status.emit(f"No daemon at {self.config.endpoint}. {self.config.start_hint()}")
            return
        self._client, self._job = starting.result
        self.daemon_status.emit(f"Daemon ready at {self.config.endpoint}")
        if self._cancel_wanted:
            self._job.cancel()
        else:
            self.message.emit("Synthesising...")

    def _poll(self) -> None:
        try:
            events = self._job.poll(timeout_ms=0)
        except DaemonError as error:
            self._end_failed(describe(error, self.config))
            return
        request = self.request
        for event in events:
            if isinstance(event, Progress):
                self.progress.emit(request, event)
            elif isinstance(event, Finished):
                if event.error is not None:
                    self._end_failed(describe(event.error, self.config))
                else:
                    # Still busy while the result becomes a layer: Krita may run a nested
                    # event loop meanwhile, and no second job may start in it.
                    self.finished.emit(request, event.images)
                    self._end()
                return

    def _end(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._job = self.request = None
        self.busy_changed.emit(False)

    def _end_failed(self, text: str) -> None:
        self.failed.emit(self.request, text)
        self._end()
