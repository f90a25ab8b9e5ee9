"""What the GIMP and the Krita plug-in share, so they behave alike: the installer's
configuration and the endpoint to use, the quality presets, the parameters' ranges (from
esm_contract.schema), the fill's margin, and the text of an error. Standard library and the contract only (no host-app imports, no pyzmq or msgpack: a
plug-in can report a broken installation with it): each
plug-in's host adapter calls these.
"""
from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from esm_contract.errors import DaemonError, DaemonUnavailable, JobCancelled, JobFailed
from esm_contract.params import PRESETS
from esm_contract.schema import Param

from .runtime import DEFAULT_ENDPOINT, ENDPOINT_ENV

class PluginError(Exception):
    """A failure with a message written for the user (both plug-ins show only these)."""


CONFIG_NAME = "esm-plugin.json"  # written by `esm install-plugin` (esm_cli.plugin_install.common)
START_TIMEOUT_S = 120.0  # a daemon's first start imports torch; slow disks take a while
DEFAULT_PRESET = "balanced"  # the blog's setting
MIN_CONTEXT = 16  # pixels of surroundings sent around a hole, at least


@dataclass(frozen=True)
class PluginConfig:
    """How a plug-in reaches the daemon: the endpoint ($ESM_ENDPOINT, else the installer's,
    else the default) and the command that starts a daemon there (the installer's start
    command with ``--endpoint ENDPOINT`` appended; empty when unknown)."""

    endpoint: str = DEFAULT_ENDPOINT
    start_command: list[str] = field(default_factory=list)
    start_timeout_s: float = START_TIMEOUT_S
    problem: str = ""  # why the recorded configuration could not be used, if it could not
    base_command: list[str] = field(default_factory=list, repr=False)  # as recorded, without --endpoint

    @classmethod
    def load(cls, path: Path, app: str) -> PluginConfig:
        """The configuration that ``esm install-plugin APP`` recorded in ``path`` (the
        plug-in's CONFIG_NAME)."""
        problem = ""
        try:
            recorded = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(recorded, dict):
                raise ValueError("not a JSON object")
        except FileNotFoundError:
            recorded = {}
            problem = f"{path} is missing (install the plug-in with: esm install-plugin {app})"
        except (OSError, ValueError) as error:
            recorded = {}
            problem = f"{path} is unreadable ({error}); reinstall with: esm install-plugin {app}"
        command = recorded.get("start_command") or []
        if not (isinstance(command, list) and all(isinstance(part, str) for part in command)):
            command, problem = [], f"{path}: start_command must be a list of strings"
        endpoint = str(os.environ.get(ENDPOINT_ENV) or recorded.get("endpoint") or DEFAULT_ENDPOINT)
        return cls(endpoint, problem=problem, base_command=list(command)).at(endpoint)

    def at(self, endpoint: str) -> PluginConfig:
        """This configuration for another endpoint (e.g. one a user typed in)."""
        command = [*self.base_command, "--endpoint", endpoint] if self.base_command else []
        return PluginConfig(endpoint, command, self.start_timeout_s, self.problem, self.base_command)

    def start_hint(self) -> str:
        """What happens about a daemon that does not answer, for a status line."""
        if self.start_command:
            return f"A job starts one with: {shlex.join(self.start_command)}"
        if self.problem:
            return f"Start one with 'esm daemon start'; {self.problem}."
        return "Start one with 'esm daemon start'."


def preset_fields(preset: str) -> dict[str, int]:
    """The phases and iterations of a quality preset (esm_contract.params.PRESETS)."""
    if preset not in PRESETS:
        raise PluginError(f"Unknown quality preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    phases, iterations = PRESETS[preset]
    return {"phases": phases, "iterations": iterations}


def ui_range(param: Param) -> tuple[float, float]:
    """The range a plug-in offers for a number parameter (esm_contract.schema): its bounds,
    ``ui_high`` where it has no upper one."""
    high = param.high if param.high is not None else param.ui_high
    assert param.low is not None and high is not None, f"{param.name} needs a range for the plug-ins"
    return param.low, high


def fill_margin(hole_width: int, hole_height: int, requested: int = 0) -> int:
    """Pixels of surroundings both plug-ins send around a hole, and the fill's ``context``:
    ``requested`` when above 0, else as many as the hole's longer side, at least MIN_CONTEXT
    (enough surroundings for the style, no more)."""
    return requested if requested > 0 else max(MIN_CONTEXT, hole_width, hole_height)


def describe(error: BaseException, config: PluginConfig | None = None) -> str:
    """One sentence for the user about a failed job or connection."""
    if isinstance(error, JobCancelled):
        return "Cancelled."
    if isinstance(error, DaemonUnavailable):
        text = error.message[:1].upper() + error.message[1:]
        return f"{text}. {config.problem}." if config is not None and config.problem else f"{text}."
    if isinstance(error, JobFailed):
        return f"The ESM daemon could not finish the job: {error.message}"
    if isinstance(error, DaemonError):
        return f"The ESM daemon refused the job: {error.message}"
    return f"{type(error).__name__}: {error}"
