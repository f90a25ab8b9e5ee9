"""OUTDIR/results.jsonl: one row per finished job, appended and flushed as each ends, so an
interrupted batch leaves a complete record of what it finished (docs/batch.md)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

RESULTS = "results.jsonl"
OK, ERROR, CANCELLED = "ok", "error", "cancelled"


def row(line: int, output: str | None, status: str, *, outputs: tuple[str, ...] = (), code: str | None = None,
        message: str | None = None, seconds: float | None = None, worker: str | None = None,
        figures: dict[str, Any] | None = None, runs: int = 0) -> dict[str, Any]:
    """A results row. ``eval`` maps each output file to its ``esm eval`` figures against the
    exemplar; ``runs`` counts the workers the job was given (above 1: a worker died under it)."""
    return {"line": line, "output": output, "outputs": list(outputs), "status": status, "code": code,
            "message": message, "seconds": None if seconds is None else round(seconds, 3), "worker": worker,
            "runs": runs, "eval": figures or {}}


def finished(outdir: Path) -> set[str]:
    """Outputs of the jobs a previous run finished: an ``ok`` row and every file of it on disk.
    A torn last line (the process killed while writing it) is skipped."""
    path = outdir / RESULTS
    done: set[str] = set()
    if not path.is_file():
        return done
    with path.open(encoding="utf-8") as rows:
        for text in rows:
            try:
                entry = json.loads(text)
            except json.JSONDecodeError:
                continue
            if (isinstance(entry, dict) and entry.get("status") == OK
                    and all((outdir / name).is_file() for name in entry.get("outputs") or ())):
                done.add(entry.get("output"))
    return done


class Results:
    """Appends rows to OUTDIR/results.jsonl (``fresh``: starts the file over) and counts them."""

    def __init__(self, outdir: Path, fresh: bool) -> None:
        self._file: TextIO = (outdir / RESULTS).open("w" if fresh else "a", encoding="utf-8")
        self.counts = {OK: 0, ERROR: 0, CANCELLED: 0}

    def add(self, entry: dict[str, Any]) -> None:
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()
        self.counts[entry["status"]] += 1

    def close(self) -> None:
        self._file.close()
