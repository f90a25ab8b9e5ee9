"""How to reach the daemon: what ``esm install-plugin krita`` recorded next to the plug-in
(``esm-plugin.json``: the endpoint, and the command that starts a daemon once
``--endpoint ENDPOINT`` is appended). $ESM_ENDPOINT, when set, overrides the endpoint."""
from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from esm_api.protocol import DEFAULT_ENDPOINT, ENDPOINT_ENV

CONFIG_NAME = "esm-plugin.json"  # written by esm_cli.plugin_install.common
START_TIMEOUT_S = 120.0  # a daemon's first start imports torch; slow disks take a while


@dataclass(frozen=True)
class DaemonConfig:
    endpoint: str = DEFAULT_ENDPOINT
    start_command: list[str] = field(default_factory=list)
    start_timeout_s: float = START_TIMEOUT_S
    problem: str = ""  # why the recorded configuration could not be used, if it could not

    @classmethod
    def load(cls, folder: Path) -> DaemonConfig:
        path = folder / CONFIG_NAME
        problem = ""
        try:
            recorded = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(recorded, dict):
                raise ValueError("not a JSON object")
        except FileNotFoundError:
            recorded = {}
            problem = f"{path} is missing (install the plug-in with: esm install-plugin krita)"
        except (OSError, ValueError) as error:
            recorded = {}
            problem = f"{path} is unreadable ({error}); reinstall with: esm install-plugin krita"
        command = recorded.get("start_command") or []
        if not (isinstance(command, list) and all(isinstance(part, str) for part in command)):
            command, problem = [], f"{path}: start_command must be a list of strings"
        endpoint = str(os.environ.get(ENDPOINT_ENV) or recorded.get("endpoint") or DEFAULT_ENDPOINT)
        if command:
            command = [*command, "--endpoint", endpoint]
        return cls(endpoint, command, START_TIMEOUT_S, problem)

    def start_hint(self) -> str:
        """What happens about a daemon that does not answer, for the docker's status line."""
        if self.start_command:
            return f"A job starts one with: {shlex.join(self.start_command)}"
        if self.problem:
            return f"Start one with 'esm daemon start'; {self.problem}."
        return "Start one with 'esm daemon start'."
