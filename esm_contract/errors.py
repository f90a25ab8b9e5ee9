"""One error hierarchy for every part of ESM. Each error carries the protocol error code
(docs/protocol.md) that describes it, so the daemon replies with ``error.code``, a client
raises the same classes from a reply, and the CLI and the plug-ins choose their exit status
or wording by code, never by class lists or class names."""
from __future__ import annotations

# Error codes (the "code" field of an error reply).
UNAUTHORISED = "unauthorised"  # the request's signature is not made with the daemon's secret
BAD_MESSAGE = "bad_message"  # not a msgpack map, wrong field types, frames not as described
BAD_VERSION = "bad_version"  # "v" is not a protocol version this daemon speaks
UNKNOWN_OP = "unknown_op"
TOO_LARGE = "too_large"  # header, image or output over the daemon's limits
BAD_PARAMS = "bad_params"  # the job does not validate (esm_contract.jobs / esm_contract.params)
BUSY = "busy"  # the job queue is full
TOO_MANY_CLIENTS = "too_many_clients"  # max_clients other connections are active
UNKNOWN_JOB = "unknown_job"  # cancel of a job that is not this client's or already ended
FORBIDDEN = "forbidden"  # shutdown from a non-local peer
SHUTTING_DOWN = "shutting_down"
JOB_FAILED = "job_failed"  # the engine raised; message says what
OUT_OF_MEMORY = "out_of_memory"
CANCELLED = "cancelled"  # used by clients for a cancelled job (the daemon sends type "cancelled")
UNAVAILABLE = "unavailable"  # used by clients: no daemon answered

# Codes of errors the user causes and can fix by changing the job (the CLI exits 2 on these).
USAGE_CODES = frozenset({BAD_PARAMS, TOO_LARGE})


class EsmError(Exception):
    """Base of every ESM error: ``message`` for people, ``code`` (one of the codes above)
    for programs. Subclasses set their class's code; a few take it per instance."""

    code = JOB_FAILED

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ParamError(EsmError, ValueError):
    """A parameter is out of range or of the wrong kind; the message names it."""

    code = BAD_PARAMS


class ProtocolError(EsmError, ValueError):
    """A request the daemon refuses: it breaks the protocol or the limits, or cannot be
    served now; ``code`` says which."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code)


class DaemonError(EsmError):
    """Client side: the daemon refused or failed a request; ``code`` is the reply's."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code)


class DaemonUnavailable(DaemonError):
    """No daemon answered at the endpoint (or it went silent mid-job)."""

    def __init__(self, message: str) -> None:
        super().__init__(UNAVAILABLE, message)


class JobFailed(DaemonError):
    """An accepted job ended in an error (engine failure, out of memory, ...)."""


class JobCancelled(DaemonError):
    """The job was cancelled (by this client, by the daemon shutting down, ...)."""

    def __init__(self, message: str = "the job was cancelled") -> None:
        super().__init__(CANCELLED, message)
