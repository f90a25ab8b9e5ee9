"""Where the daemon keeps its files: runtime (pid/endpoint record), state (log) and config
(CURVE keys) folders from platformdirs, one record and log per endpoint."""
from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import platformdirs

APP = "esm"
KEYS_DIR_ENV = "ESM_KEYS_DIR"


def _slug(endpoint: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", endpoint).strip("_")


def runtime_dir() -> Path:
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset; its fallback is fine
        warnings.simplefilter("ignore")
        return Path(platformdirs.user_runtime_dir(APP))


def record_path(endpoint: str) -> Path:
    return runtime_dir() / f"daemon-{_slug(endpoint)}.json"


def log_path(endpoint: str) -> Path:
    return Path(platformdirs.user_state_dir(APP)) / f"daemon-{_slug(endpoint)}.log"


def keys_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """CURVE keys: --keys-dir, else $ESM_KEYS_DIR, else the user's config folder."""
    return Path(explicit or os.environ.get(KEYS_DIR_ENV) or Path(platformdirs.user_config_dir(APP)) / "curve")


def write_record(endpoint: str, record: dict[str, Any]) -> Path:
    path = record_path(endpoint)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(path)
    return path


def read_record(endpoint: str) -> dict[str, Any] | None:
    try:
        return json.loads(record_path(endpoint).read_text())
    except (OSError, ValueError):
        return None


def remove_record(endpoint: str, pid: int) -> None:
    """Removes the record if it is ours (a newer daemon may have replaced it)."""
    record = read_record(endpoint)
    if record is not None and record.get("pid") == pid:
        record_path(endpoint).unlink(missing_ok=True)
