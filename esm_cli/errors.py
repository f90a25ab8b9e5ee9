"""Errors the CLI reports as one line (no traceback)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator


class UserError(Exception):
    """Something the user can fix; printed as one line. exit_code 2 = bad usage/input."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def ping_daemon(endpoint: str, timeout_s: float = 0.5) -> dict[str, Any] | None:
    """``esm_client.autostart.ping``; a daemon that refuses this client (``unauthorised``: another
    user's) is a UserError."""
    from esm_client.autostart import ping
    from esm_client.client import DaemonError

    try:
        return ping(endpoint, timeout_s)
    except DaemonError as error:
        raise UserError(f"the daemon at {endpoint} refuses this client: {error.message}", exit_code=1) from None


@contextmanager
def user_errors() -> Iterator[None]:
    """Turns every ESM error (parameters, images, sizes, devices, cancellation, a daemon's
    refusal) into a UserError: exit status 2 for what the job asks (esm_contract.errors.
    USAGE_CODES), else 1."""
    from esm_contract.errors import USAGE_CODES, EsmError

    try:
        yield
    except EsmError as error:
        raise UserError(error.message, exit_code=2 if error.code in USAGE_CODES else 1) from None
    except MemoryError:
        raise UserError("out of memory: try a smaller --size", exit_code=1) from None
