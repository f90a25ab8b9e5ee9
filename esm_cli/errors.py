"""Errors the CLI reports as one line (no traceback)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


class UserError(Exception):
    """Something the user can fix; printed as one line. exit_code 2 = bad usage/input."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@contextmanager
def user_errors() -> Iterator[None]:
    """Turns the engine's input errors into UserError (imports torch lazily)."""
    from esm_api.params import ParamError
    from esm_core import Cancelled, ImageError, SizeError

    try:
        yield
    except (ParamError, ImageError, SizeError) as error:
        raise UserError(str(error)) from None
    except Cancelled as error:
        raise UserError(str(error), exit_code=1) from None
    except MemoryError:
        raise UserError("out of memory: try a smaller --size", exit_code=1) from None
