"""Where the daemon keeps its files: the runtime folder (esm_client.runtime: the pid/endpoint
record and the secret), state (log) and config (CURVE keys) folders from platformdirs, one
record, secret and log per endpoint."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import platformdirs

from esm_client.runtime import APP, file_name, runtime_dir, secret_path

KEYS_DIR_ENV = "ESM_KEYS_DIR"


def record_path(endpoint: str) -> Path:
    return runtime_dir() / file_name(endpoint, "json")


def log_path(endpoint: str) -> Path:
    return Path(platformdirs.user_state_dir(APP)) / file_name(endpoint, "log")


def keys_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """CURVE keys: --keys-dir, else $ESM_KEYS_DIR, else the user's config folder."""
    return Path(explicit or os.environ.get(KEYS_DIR_ENV) or Path(platformdirs.user_config_dir(APP)) / "curve")


def private_runtime_dir() -> Path:
    """The runtime folder, created if need be; a PermissionError unless only this user can
    read it and no other user can replace it (the secret is kept there)."""
    folder = runtime_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name != "posix":
        return folder  # a Windows profile folder is its user's
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise PermissionError(f"the runtime folder {folder} is not a folder of this user's")
    if info.st_mode & 0o077:
        folder.chmod(0o700)  # ours: an older esm created it with the umask's mode
    parent = folder.parent.stat()
    if parent.st_mode & 0o002 and not parent.st_mode & stat.S_ISVTX:
        raise PermissionError(f"{folder.parent} lets other users replace the runtime folder {folder}")
    return folder


def write_secret(endpoint: str, secret: bytes) -> Path:
    """Writes the daemon's secret, readable by this user only from the start (created with
    mode 0600, never through the umask), replacing a stale one of a killed daemon at once."""
    private_runtime_dir()
    path = secret_path(endpoint)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(secret)
    os.replace(tmp, path)
    return path


def remove_secret(endpoint: str, secret: bytes) -> None:
    """Removes the secret if it is ours (a newer daemon may have replaced it)."""
    path = secret_path(endpoint)
    try:
        if path.read_bytes() == secret:
            path.unlink()
    except OSError:
        pass


def write_record(endpoint: str, record: dict[str, Any]) -> Path:
    path = record_path(endpoint)
    private_runtime_dir()
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
