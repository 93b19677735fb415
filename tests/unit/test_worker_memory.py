"""``transfer_worker.keep_freed_memory``: the workers' malloc tuning (see its docstring)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest


def test_transfer_workers_keep_freed_memory_on_glibc() -> None:
    """The worker's malloc tuning applies on this (glibc) machine; run in a child so that
    the test process keeps its own allocator settings."""
    out = subprocess.run(
        [sys.executable, "-c", "from fink_client.transfer_worker import keep_freed_memory;"
         "print(keep_freed_memory())"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(platform.libc_ver()[0] == "glibc")


_REFILLS = """
import ctypes, resource, sys, threading
from fink_client.transfer_worker import keep_freed_memory
if sys.argv[1] == "tuned":
    assert keep_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
SIZE, COUNT, ROUNDS = 24 << 20, 4, 6
faults = []

def fill_and_free():  # what a librdkafka broker thread does with its fetch buffers
    for _ in range(ROUNDS):
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        bufs = [libc.malloc(SIZE) for _ in range(COUNT)]
        for b in bufs:
            ctypes.memset(b, 1, SIZE)
        for b in bufs:
            libc.free(b)
        faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)

t = threading.Thread(target=fill_and_free)
t.start()
t.join()
print(max(faults[1:]))
"""


def _refill_faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", _REFILLS, mode], capture_output=True,
                         text=True, check=True)
    return int(out.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc tuning")
def test_a_threads_freed_buffers_are_reused_not_faulted_in_again() -> None:
    """A thread that fills and frees 96 MB of buffers again and again (librdkafka's fetches)
    gets its freed pages back once the worker's tuning applies; glibc's default gives its
    emptied thread heaps back to the kernel, so every refill faults most pages in again."""
    pages = 4 * (24 << 20) // 4096
    assert _refill_faults("default") > pages // 2
    assert _refill_faults("tuned") < pages // 20
