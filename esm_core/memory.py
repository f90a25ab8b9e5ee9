"""Process-wide settings of glibc's allocator, for syntheses on the CPU (the daemon's and the
CLI's in-process runs; ``esm_cli.main`` applies them first thing, so this module imports only
the standard library).

glibc serves every block above 32 MiB (a 512x512 feature map of 48 channels is 48 MiB) with a
fresh ``mmap`` and unmaps it when it is freed, so every loss evaluation faults the pages of its
big tensors in again: 1.5 M page faults and about 3 s of system time in a 7 s synthesis at
512x512. ``tune_allocator`` gives all threads one heap (the other threads' heaps cannot hold
blocks above 64 MiB, and the daemon runs its jobs in a worker thread); ``prepare_for_job`` then
makes glibc keep freed memory in that heap for reuse, for outputs up to
``KEEP_FREED_UP_TO_PIXELS`` (7.0 -> 5.5 s at 512x512 in a thread). Larger jobs, and whatever
runs without ``prepare_for_job``, map and unmap big blocks as glibc does by default: the heap's
layout costs memory on big jobs (2048x2048: 8.0 GiB peak against 5.4).
``release_freed_memory`` hands what the heap keeps back to the system, after each daemon job.
docs/performance.md has the measurements. Elsewhere than glibc all three do nothing.
``estimate_peak_bytes`` is what the daemon refuses jobs by before any work.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from functools import cache

DISABLE_ENV = "ESM_SYSTEM_MALLOC"  # set to 1 to leave glibc's allocator as it is
KEEP_FREED_UP_TO_PIXELS = 1024 * 1024  # 1024x1024: 2.4-2.7 GiB peak against 2.3; 2048x2048: +2.6 GiB
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -3, -4, -8  # mallopt's (malloc.h)
_MMAP_THRESHOLD = 32 << 20  # glibc's largest (what its sliding threshold settles at for these jobs)
_MMAP_MAX = 65536  # glibc's default number of mapped blocks
_KEEP = {_M_MMAP_MAX: 0, _M_TRIM_THRESHOLD: 1 << 30}  # no mapped blocks; up to 1 GiB kept at the heap's top
_MAP = {_M_MMAP_MAX: _MMAP_MAX, _M_TRIM_THRESHOLD: 2 * _MMAP_THRESHOLD}  # glibc's behaviour (its sliding trim)
_applied = False


@cache
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # only glibc has it (and mallopt's parameters as above)
    except (OSError, AttributeError):
        return None
    return libc


def _set(settings: dict[int, int]) -> bool:
    libc = _glibc()
    return libc is not None and all(libc.mallopt(parameter, value) == 1 for parameter, value in settings.items())


def tune_allocator() -> bool:
    """One heap for all threads, big blocks mapped as by default until ``prepare_for_job``
    (see the module's text). Call once, first thing: a thread that allocated before keeps a
    heap of its own, which a later thread may inherit when it ends. Returns whether the
    settings apply (glibc, and ``$ESM_SYSTEM_MALLOC`` not set to 1)."""
    global _applied
    if os.environ.get(DISABLE_ENV) == "1":
        return False
    # a fixed mmap threshold: setting the trim threshold stops glibc from sliding it up itself
    _applied = _set({_M_ARENA_MAX: 1, _M_MMAP_THRESHOLD: _MMAP_THRESHOLD, **_MAP})
    return _applied


def prepare_for_job(output_pixels: int) -> bool:
    """Before a job: keep freed memory if its output has at most ``KEEP_FREED_UP_TO_PIXELS``,
    else map big blocks afresh (less memory, more page faults). Does nothing unless
    ``tune_allocator`` applied. Returns whether freed memory is kept for this job."""
    keep = output_pixels <= KEEP_FREED_UP_TO_PIXELS
    return _applied and _set(_KEEP if keep else _MAP) and keep


def release_freed_memory() -> None:
    """Returns the heap's free pages to the system (the process's resident memory falls back)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


# Peak memory of a job above the idle daemon, from docs/performance.md's measurements (CPU,
# fast matching, 512x512 exemplars): 1024x1024 2.40 GiB, 2048x2048 5.50 GiB peak resident, so
# about 1.1 KiB per pixel plus a fixed part (exact matching's score slices stay within 256 MiB).
BYTES_PER_PIXEL = 1100
FIXED_BYTES = 512 << 20


def estimate_peak_bytes(output_pixels: int, input_pixels: int) -> int:
    """A job's estimated peak memory: used to refuse, before any work, jobs that cannot fit."""
    return FIXED_BYTES + BYTES_PER_PIXEL * (output_pixels + input_pixels)


def physical_memory_bytes() -> int:
    """The machine's memory (0 where the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0
