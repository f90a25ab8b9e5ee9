"""Progress of a job on stderr, fed by the engine's Progress reports: tqdm's bar on a
terminal; elsewhere (a script, a CI log, a pipe) a plain line at most every PLAIN_EVERY_S
seconds, so a log shows the job is alive without filling up."""
from __future__ import annotations

import sys
import time
from typing import TextIO

PLAIN_EVERY_S = 5.0


class ProgressBar:
    def __init__(self, label: str, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.label = label
        self.quiet = quiet
        self.stream = stream or sys.stderr  # looked up now: a caller (pytest, a script) may have replaced it
        self.terminal = self.stream.isatty()
        self.started = time.monotonic()
        self._bar = None  # tqdm, made on the first report (importing it costs nothing before)
        self._printed: float | None = None  # when the last plain line went out

    def update(self, fraction: float, detail: str) -> None:
        if self.quiet:
            return
        fraction = min(max(fraction, 0.0), 1.0)
        if self.terminal:
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=1.0, desc=self.label, file=self.stream, dynamic_ncols=True,
                                 bar_format="{desc} {bar} {percentage:3.0f}% {postfix} [{elapsed}]")
            self._bar.n = fraction
            self._bar.set_postfix_str(detail, refresh=False)
            self._bar.refresh()
            return
        now = time.monotonic()
        if self._printed is None or now - self._printed >= PLAIN_EVERY_S or fraction >= 1.0:
            self._printed = now
            print(f"{self.label}: {fraction:4.0%} {detail} ({now - self.started:.0f} s)", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
