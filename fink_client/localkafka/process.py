"""Process helpers for the broker JVM: liveness checks and stopping by pid.

They work on any pid (not only our children) so that ``finkctl broker stop`` can stop a
broker started by an earlier command. The JVM is always started as the leader of its own
session, so its process group id equals its pid and signalling the group reaches every
thread and any child it may have.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def _proc_state(pid: int) -> str | None:
    """State letter from ``/proc/<pid>/stat`` (``Z`` for a zombie), or None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: the state follows the last ')'.
    return stat.rsplit(")", 1)[-1].split()[0]


def pid_alive(pid: int) -> bool:
    """True if ``pid`` is a running process (zombies, which only await reaping, are dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return _proc_state(pid) not in ("Z", "X")


def pid_is_kafka(pid: int) -> bool:
    """True if ``pid`` is alive and (where ``/proc`` tells) runs ``kafka.Kafka``.

    Guards against a recycled pid: a state file must never make us signal a stranger.
    """
    if not pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (not Linux): trust the liveness check
    return b"kafka.Kafka" in cmdline.split(b"\0")


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def stop_pid(pid: int, timeout: float = 20.0) -> bool:
    """Stop the process group led by ``pid``: SIGTERM, wait ``timeout`` s, then SIGKILL.

    SIGTERM lets Kafka shut down cleanly (its logs then need no recovery at next start).
    Returns True if SIGKILL was needed.
    """
    if not pid_alive(pid):
        return False
    _signal_group(pid, signal.SIGTERM)
    if _wait_dead(pid, timeout):
        return False
    _signal_group(pid, signal.SIGKILL)
    _wait_dead(pid, 10.0)
    return True
