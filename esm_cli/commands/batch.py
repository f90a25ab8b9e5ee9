"""esm batch MANIFEST -o OUTDIR: many jobs from a JSON Lines manifest, on a local Ray
instance or a Ray cluster (docs/batch.md). Ray is imported only when the command runs."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from esm_cli.batch.manifest import BatchJob, InvalidLine, read_manifest
from esm_cli.batch.results import CANCELLED, ERROR, OK, RESULTS, Results, finished, row
from esm_cli.errors import UserError
from esm_cli.progressbar import ProgressBar

MAX_REPORTED = 20  # invalid lines printed one by one; the rest are counted


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "batch", help="run a JSON Lines manifest of jobs on Ray (a local instance or a cluster)",
        description="Run every job of MANIFEST (JSON Lines: mode, images, params, output, seeds; docs/batch.md) "
                    "on Ray workers that each keep an engine warm, writing the outputs and OUTDIR/results.jsonl. "
                    "Invalid lines are reported before anything runs.")
    parser.add_argument("manifest", type=Path, metavar="MANIFEST", help="JSON Lines file, one job a line; image paths relative to its folder")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUTDIR",
                        help="output folder (created if its parent exists); holds results.jsonl")
    parser.add_argument("--address", metavar="ADDRESS",
                        help="join a Ray cluster: auto (the one `ray start` made on this machine), HOST:PORT or "
                             "ray://HOST:PORT (default: start a local Ray instance for this run)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="worker actors (default: one per GPU, else one using all cores of a machine; "
                             "N CPU workers share those cores)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: GPUs when the cluster has any (default auto)")
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                        help="skip jobs that have an ok row in results.jsonl and their outputs on disk "
                             "(default; --no-resume runs everything and starts results.jsonl over)")
    parser.add_argument("--skip-invalid", action="store_true",
                        help="run the valid lines and record the invalid ones as error rows")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    if not args.manifest.is_file():
        raise UserError(f"{args.manifest}: no such file")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    if args.output.exists() and not args.output.is_dir():
        raise UserError(f"{args.output}: not a folder")
    if not args.output.parent.is_dir():
        raise UserError(f"{args.output.parent}: output folder's parent does not exist")


def _validate(manifest: Path) -> tuple[int, list[InvalidLine]]:
    """The number of jobs and the invalid lines, in one streamed pass before anything runs."""
    total, invalid = 0, []
    try:
        for item in read_manifest(manifest):
            if isinstance(item, InvalidLine):
                invalid.append(item)
            else:
                total += 1
    except UnicodeDecodeError:
        raise UserError(f"{manifest}: not a UTF-8 text file (a manifest is JSON Lines)") from None
    return total, invalid


class _Progress:
    """Jobs done of total, failures, jobs/s and the ETA, through esm_cli.progressbar."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total, self.done, self.failed = total, 0, 0
        self.bar = ProgressBar("batch", quiet=quiet)
        self.started = time.monotonic()

    def update(self, results: Results) -> None:
        self.done = sum(results.counts.values())
        self.failed = results.counts[ERROR]
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = f"ETA {(self.total - self.done) / rate:.0f} s" if rate else "ETA -"
        self.bar.update(self.done / max(self.total, 1),
                        f"{self.done}/{self.total} jobs, {self.failed} failed, {rate:.2f} jobs/s, {eta}")


def run(args: argparse.Namespace) -> int:
    _check(args)
    total, invalid = _validate(args.manifest)
    for item in invalid[:MAX_REPORTED]:
        print(f"{args.manifest}:{item.line}: {item.message}", file=sys.stderr)
    if len(invalid) > MAX_REPORTED:
        print(f"{args.manifest}: {len(invalid) - MAX_REPORTED} more invalid line(s)", file=sys.stderr)
    if invalid and not args.skip_invalid:
        raise UserError(f"{len(invalid)} invalid line(s) in {args.manifest}; nothing ran "
                        "(fix them, or --skip-invalid to run the rest)")
    args.output.mkdir(exist_ok=True)
    if not os.access(args.output, os.W_OK):
        raise UserError(f"{args.output}: cannot write into this folder")
    done = finished(args.output) if args.resume else set()
    results = Results(args.output, fresh=not args.resume)
    for item in invalid:
        results.add(row(item.line, item.output, ERROR, code="bad_params", message=item.message))
    todo = total - len(done)
    progress = _Progress(todo, args.quiet)
    jobs = (item for item in read_manifest(args.manifest)
            if isinstance(item, BatchJob) and item.output not in done)
    if done:
        print(f"esm batch: resuming: {len(done)} of {total} job(s) already done", file=sys.stderr)
    from esm_cli.batch import cluster  # imports ray: only here, never for esm synth or the daemon

    started = cluster.connect(args.address)
    try:
        batch = cluster.Batch(args.output, cluster.plan(args.workers, args.device), results,
                              lambda: progress.update(results))
        batch.run(jobs)
    except KeyboardInterrupt:
        progress.bar.close()
        print(f"esm batch: interrupted; {results.counts[OK]} job(s) finished, "
              f"{results.counts[CANCELLED]} cancelled; run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        progress.bar.close()
        results.close()
        if started:
            cluster.shutdown()
    counts = results.counts
    print(f"esm batch: {counts[OK]} ok, {counts[ERROR]} error(s) of {todo + len(invalid)} "
          f"({args.output / RESULTS})", file=sys.stderr)
    return 1 if counts[ERROR] else 0
