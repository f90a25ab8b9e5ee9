"""Process-wide settings of glibc's allocator, for syntheses on the CPU (the daemon's and the
CLI's in-process runs; ``esm_cli.main`` applies them first thing, so this module imports only
the standard library).

glibc serves every block above 32 MiB (a 512x512 feature map of 48 channels is 48 MiB) with a
fresh ``mmap`` and unmaps it when it is freed, so every loss evaluation faults the pages of its
big tensors in again: 1.5 M page faults and about 3 s of system time in a 7 s synthesis at
512x512. ``keep_freed_memory`` makes glibc keep freed memory in its heap for reuse instead, with
one heap for all threads (the other threads' heaps cannot hold blocks above 64 MiB, and the
daemon runs its jobs in a worker thread): 7.0 -> 5.5 s in a thread, the same peak memory
(docs/performance.md). ``release_freed_memory`` hands what the heap keeps back to the system,
after each daemon job. Elsewhere than glibc both do nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from functools import cache

DISABLE_ENV = "ESM_SYSTEM_MALLOC"  # set to 1 to leave glibc's allocator as it is
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8  # mallopt parameters (malloc.h)
KEEP_FREED_BYTES = 1 << 30  # freed memory at the heap's top kept for reuse between evaluations


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


def keep_freed_memory() -> bool:
    """Keeps freed memory in one heap for reuse (see the module's text). Call once, first
    thing: a thread that allocated before keeps a heap of its own, which a later thread may
    inherit when it ends. Returns whether the settings apply (glibc, and ``$ESM_SYSTEM_MALLOC``
    not set to 1)."""
    libc = _glibc()
    if libc is None or os.environ.get(DISABLE_ENV) == "1":
        return False
    return all(libc.mallopt(parameter, value) == 1 for parameter, value in
               ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, KEEP_FREED_BYTES), (_M_ARENA_MAX, 1)))


def release_freed_memory() -> None:
    """Returns the heap's free pages to the system (the process's resident memory falls back)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
