"""Runs a job (mode, params, named images) through a daemon when one answers, else in this
process: the one path that `esm synth`, `esm fill` and `esm variants` share.

`--daemon` insists on a daemon (starting one in the background when none answers);
`--no-daemon` never asks one. The flags come from ``esm_cli.options.add_daemon_options``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from esm_contract import params as P
from esm_client.runtime import default_endpoint
from esm_contract.jobs import Job, ModeParams, output_size
from esm_cli.checks import check_fits, evaluations
from esm_cli.errors import UserError, ping_daemon, user_errors
from esm_cli.progressbar import ProgressBar

if TYPE_CHECKING:
    import numpy as np

START_TIMEOUT_S = 120.0


def run_job(args: argparse.Namespace, job: Job[np.ndarray], label: str | None = None) -> list[np.ndarray]:
    """Runs ``job`` (uint8 HxWxC images); returns the result images. Raises UserError for
    anything the user can act on."""
    use_daemon = getattr(args, "daemon", None)
    endpoint = default_endpoint(getattr(args, "endpoint", None))
    bar = ProgressBar(label or job.mode, quiet=getattr(args, "quiet", False))
    try:
        if use_daemon or (use_daemon is None and ping_daemon(endpoint) is not None):
            return _via_daemon(endpoint, bool(use_daemon), job, bar)
        check_in_process(args, job.params, job.images, results=job.result_count)
        return _in_process(getattr(args, "device", "auto"), job, bar)
    finally:
        bar.close()


def check_in_process(args: argparse.Namespace, params: ModeParams, images: Mapping[str, np.ndarray],
                     results: int = 1, runs: int | None = None) -> None:
    """esm_cli.checks.check_fits for a job of ``results`` images run in this process, ``runs``
    syntheses one after another (default: the images, in batches of ``params.batch``)."""
    if getattr(args, "device", "auto") in ("cuda", "mps"):
        return  # the estimate is the CPU's; a GPU's memory is the GPU's to refuse
    width, height = _output_size(params, images)
    check_fits(args.command, width * height, evaluations(params.phases, params.iterations),
               getattr(params, "matching", "") == "exact", runs if runs is not None else results,
               min(results, getattr(params, "batch", 1)), getattr(args, "force", False))


def _output_size(params: ModeParams, images: Mapping[str, np.ndarray]) -> tuple[int, int]:
    return output_size(params, ((image.shape[1], image.shape[0]) for image in images.values()))


def prepare_memory(params: ModeParams, images: Mapping[str, np.ndarray]) -> None:
    """Sets the allocator up for an in-process job by its output size (esm_core.memory)."""
    from esm_core.memory import prepare_for_job

    width, height = _output_size(params, images)
    prepare_for_job(width * height)


def wrote(path: Path) -> None:
    """Every command that writes an image says where (also with --quiet, also in a pipe)."""
    print(f"wrote {path}", flush=True)


def _detail(phase: int, phases: int, step: int, steps: int, loss: float | None) -> str:
    text = f"phase {phase + 1}/{phases} step {step}/{steps}"
    return text if loss is None else f"{text} loss {loss:.4g}"


def _in_process(device: str, job: Job[np.ndarray], bar: ProgressBar) -> list[np.ndarray]:
    prepare_memory(job.params, job.images)
    with user_errors():
        from esm_core import Engine

        return Engine(device).run(
            job, progress=lambda p: bar.update(p.fraction, _detail(p.phase, p.phases, p.step, p.steps, p.loss)))


def _via_daemon(endpoint: str, start: bool, job: Job[np.ndarray], bar: ProgressBar) -> list[np.ndarray]:
    """The job through the daemon; this path imports numpy but never torch."""
    from esm_client.autostart import ensure_daemon
    from esm_client.client import Client, DaemonUnavailable
    from esm_core.images import from_array, to_array

    with user_errors():
        try:
            if start:
                ensure_daemon(endpoint, [sys.executable, "-m", "esm_cli.main", "daemon", "start",
                                         "--endpoint", endpoint], START_TIMEOUT_S)
            with Client(endpoint) as client:
                results = client.run(
                    job.mode, P.to_dict(job.params), {name: from_array(image) for name, image in job.images.items()},
                    on_progress=lambda p: bar.update(p.fraction, _detail(p.phase, p.phases, p.step, p.steps, p.loss)))
        except DaemonUnavailable as error:
            raise UserError(f"{error} (or use --no-daemon)", exit_code=1) from None
    return [to_array(image).copy() for image in results]
