"""Runs a job (mode, params, named images) through a daemon when one answers, else in this
process: the one path that `esm synth`, `esm fill` and `esm variants` share.

`--daemon` insists on a daemon (starting one in the background when none answers);
`--no-daemon` never asks one. The flags come from ``esm_cli.options.add_daemon_options``.
"""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, Mapping

from esm_api import params as P
from esm_api.protocol import BAD_PARAMS, TOO_LARGE, default_endpoint
from esm_cli.errors import UserError
from esm_cli.progressbar import ProgressBar

if TYPE_CHECKING:
    import numpy as np

START_TIMEOUT_S = 120.0


def run_job(args: argparse.Namespace, mode: str, params: Any, images: Mapping[str, np.ndarray],
            label: str | None = None) -> list[np.ndarray]:
    """Runs ``mode`` with ``params`` (an esm_api.params dataclass) on uint8 HxWxC ``images``;
    returns the result images. Raises UserError for anything the user can act on."""
    from esm_api.autostart import ping

    use_daemon = getattr(args, "daemon", None)
    endpoint = default_endpoint(getattr(args, "endpoint", None))
    bar = ProgressBar(label or mode, enabled=False if getattr(args, "quiet", False) else None)
    try:
        if use_daemon or (use_daemon is None and ping(endpoint) is not None):
            return _via_daemon(endpoint, bool(use_daemon), mode, params, images, bar)
        return _in_process(getattr(args, "device", "auto"), mode, params, images, bar)
    finally:
        bar.close()


def prepare_memory(params: Any, images: Mapping[str, np.ndarray]) -> None:
    """Sets the allocator up for an in-process job by its output size (esm_daemon.memory)."""
    from esm_api.jobs import output_size
    from esm_daemon.memory import prepare_for_job

    width, height = output_size(params, ((image.shape[1], image.shape[0]) for image in images.values()))
    prepare_for_job(width * height)


def _detail(phase: int, phases: int, step: int, steps: int, loss: float | None) -> str:
    text = f"phase {phase + 1}/{phases} step {step}/{steps}"
    return text if loss is None else f"{text} loss {loss:.4g}"


def _in_process(device: str, mode: str, params: Any, images: Mapping[str, np.ndarray],
                bar: ProgressBar) -> list[np.ndarray]:
    from esm_cli.errors import user_errors
    from esm_core import Engine

    prepare_memory(params, images)
    with user_errors():
        return Engine(device).run(
            mode, P.to_dict(params), images,
            progress=lambda p: bar.update(p.fraction, _detail(p.phase, p.phases, p.step, p.steps, p.loss)))


def _via_daemon(endpoint: str, start: bool, mode: str, params: Any, images: Mapping[str, np.ndarray],
                bar: ProgressBar) -> list[np.ndarray]:
    from esm_api.autostart import ensure_daemon
    from esm_api.client import Client, DaemonError, DaemonUnavailable, JobCancelled, JobFailed
    from esm_daemon.arrays import from_array, to_array

    try:
        if start:
            ensure_daemon(endpoint, [sys.executable, "-m", "esm_cli.main", "daemon", "start", "--endpoint", endpoint],
                          START_TIMEOUT_S)
        with Client(endpoint) as client:
            results = client.run(
                mode, P.to_dict(params), {name: from_array(image) for name, image in images.items()},
                on_progress=lambda p: bar.update(p.fraction, _detail(p.phase, p.phases, p.step, p.steps, p.loss)))
    except JobCancelled as error:
        raise UserError(str(error), exit_code=1) from None
    except DaemonUnavailable as error:
        raise UserError(f"{error} (or use --no-daemon)", exit_code=1) from None
    except JobFailed as error:
        raise UserError(str(error), exit_code=2 if error.code == BAD_PARAMS else 1) from None
    except DaemonError as error:
        raise UserError(str(error), exit_code=2 if error.code in (BAD_PARAMS, TOO_LARGE) else 1) from None
    return [to_array(image).copy() for image in results]
