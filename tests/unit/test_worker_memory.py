"""``transfer_worker.keep_freed_memory``: the workers' malloc tuning (see its docstring)."""

from __future__ import annotations

import platform
import subprocess
import sys


def test_transfer_workers_keep_freed_memory_on_glibc() -> None:
    """The worker's malloc tuning applies on this (glibc) machine; run in a child so that
    the test process keeps its own allocator settings."""
    out = subprocess.run(
        [sys.executable, "-c", "from fink_client.transfer_worker import keep_freed_memory;"
         "print(keep_freed_memory())"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(platform.libc_ver()[0] == "glibc")
