"""glibc's allocator settings (esm_daemon.memory): a freed big tensor's memory is reused
without faulting its pages in again, also in a thread (where the daemon runs its jobs), and
goes back to the system on release. Each case runs in its own process: the settings are
process-wide."""
from __future__ import annotations

import json
import os
import subprocess
import sys

# In a worker thread: a 64 MiB tensor (above glibc's 32 MiB mmap threshold) is written, freed and
# allocated again; reports the page faults of writing the second one, and the resident memory
# after freeing it, then after release_freed_memory.
PROBE = """
import json, resource, threading
from esm_daemon.memory import keep_freed_memory, release_freed_memory

applied = keep_freed_memory()  # first thing, as esm_cli.main does
import torch

def resident() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()

report = {"applied": applied}

def job() -> None:
    torch.empty(16 << 20).fill_(1.0)  # 64 MiB, freed at once
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    second = torch.empty(16 << 20)
    second.fill_(2.0)
    report["faults"] = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before
    del second
    report["kept"] = resident()
    release_freed_memory()
    report["released"] = resident()

torch.set_num_threads(1)  # every page written by this thread, so its own fault count sees them all
worker = threading.Thread(target=job)
worker.start()
worker.join()
print(json.dumps(report))
"""
PAGES = (64 << 20) // 4096


def probe(**env: str) -> dict[str, int]:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                          env={**os.environ, **env})
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_freed_memory_is_reused_in_a_thread_and_released_on_request() -> None:
    kept = probe()
    assert kept["applied"] is True  # glibc (the project's platforms)
    assert kept["faults"] < PAGES // 10  # the freed block was reused, its pages still mapped
    assert kept["kept"] - kept["released"] > (48 << 20)  # ... and handed back on release


def test_the_system_allocator_stays_when_asked() -> None:
    system = probe(ESM_SYSTEM_MALLOC="1")
    assert system["applied"] is False
    assert system["faults"] > PAGES // 2  # glibc's mmap: a fresh mapping, every page faulted in again
