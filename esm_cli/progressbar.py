"""A one-line terminal progress bar fed by the engine's Progress reports."""
from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, label: str, stream: TextIO = sys.stderr, enabled: bool | None = None) -> None:
        self.label = label
        self.stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.started = time.monotonic()

    def update(self, fraction: float, detail: str) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(round(width * min(max(fraction, 0.0), 1.0)))
        elapsed = time.monotonic() - self.started
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%} "
                          f"{detail} {elapsed:5.1f}s\033[K")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
