"""How a daemon is configured, and the checks that refuse a start before torch is imported."""
from __future__ import annotations

from dataclasses import dataclass, field

from esm_client import protocol as P

from . import keys as K
from . import paths


class StartError(Exception):
    """The daemon cannot start (endpoint in use, keys missing, ...); the message says why."""


@dataclass(frozen=True)
class DaemonConfig:
    endpoint: str = P.DEFAULT_ENDPOINT
    device: str = "auto"
    cache_bytes: int = 1 << 30
    limits: P.Limits = field(default_factory=P.Limits)
    keys_dir: str | None = None  # CURVE keys; required when the endpoint is not loopback


def check_security(config: DaemonConfig) -> K.ServerKeys | None:
    """Loopback needs nothing; any other interface needs CURVE keys, or we refuse."""
    if P.is_loopback(config.endpoint):
        return None
    try:
        return K.load_server(paths.keys_dir(config.keys_dir))
    except K.KeysError as error:
        raise StartError(f"refusing to listen on {config.endpoint}, which other machines can reach, "
                         f"without CURVE keys: {error}") from None
