"""Errors the CLI reports as one line (no traceback)."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Iterator


class UserError(Exception):
    """Something the user can fix; printed as one line. exit_code 2 = bad usage/input."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def ping_daemon(endpoint: str, timeout_s: float = 0.5) -> dict[str, Any] | None:
    """``esm_api.autostart.ping``; a daemon that refuses this client (``unauthorised``: another
    user's) is a UserError."""
    from esm_api.autostart import ping
    from esm_api.client import DaemonError

    try:
        return ping(endpoint, timeout_s)
    except DaemonError as error:
        raise UserError(f"the daemon at {endpoint} refuses this client: {error.message}", exit_code=1) from None


@contextmanager
def user_errors() -> Iterator[None]:
    """Turns the engine's input errors into UserError. Imports no torch: the engine's own
    errors are looked up only once the engine is loaded (nothing else raises them)."""
    from esm_api.params import ParamError
    from esm_core.images import ImageError

    try:
        yield
    except (ParamError, ImageError) as error:
        raise UserError(str(error)) from None
    except MemoryError:
        raise UserError("out of memory: try a smaller --size", exit_code=1) from None
    except Exception as error:
        if "esm_core.engine" not in sys.modules:
            raise
        from esm_core import Cancelled, DeviceError, SizeError

        if isinstance(error, (SizeError, DeviceError)):
            raise UserError(str(error)) from None
        if isinstance(error, Cancelled):
            raise UserError(str(error), exit_code=1) from None
        raise
