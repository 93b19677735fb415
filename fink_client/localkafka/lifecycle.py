"""The broker JVM as a process: format its storage, launch it, wait until ready, stop it.

The JVM runs in its own session (process group) and is stopped with SIGTERM, then
SIGKILL; an ``atexit`` hook and, on Linux, a parent-death signal make sure no JVM
survives the Python process that started it (unless it is *detached*).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol

from fink_client.errors import BrokerError
from fink_client.localkafka.config import admin_client_config, cluster_id, jvm_flags
from fink_client.localkafka.process import stop_pid

# Child-side shim (Linux): ask the kernel to SIGKILL the JVM when its parent dies, then
# exec java. Runs in a fresh interpreter, so no fork-with-threads hazard of preexec_fn.
_PDEATHSIG_SHIM = (
    "import ctypes,os,signal,sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGKILL)\n"  # 1 = PR_SET_PDEATHSIG
    "if os.getppid() != int(sys.argv[1]): os._exit(3)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


class _Launcher:
    """Spawns child processes from one long-lived thread.

    Linux's parent-death signal fires when the *thread* that forked the child exits, not
    the process. Spawning from a thread that lives as long as the process (a daemon
    thread started on first use) makes the signal mean "the Python process died",
    whichever thread called :meth:`LocalKafka.start`.
    """

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], Any], Future[Any]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _run(self) -> None:
        while True:
            fn, fut = self._jobs.get()
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn())
                except BaseException as exc:
                    fut.set_exception(exc)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the launcher thread and return its result (or raise its error)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="localkafka-launcher",
                                                daemon=True)
                self._thread.start()
        fut: Future[Any] = Future()
        self._jobs.put((fn, fut))
        return fut.result()


_LAUNCHER = _Launcher()


class _Stoppable(Protocol):
    def stop(self) -> None: ...


# Every running, non-detached broker, so that the atexit hook can stop them.
_RUNNING: weakref.WeakSet[_Stoppable] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for owner in list(_RUNNING):
        with contextlib.suppress(Exception):
            owner.stop()


def stop_at_exit(owner: _Stoppable, *, enabled: bool = True) -> None:
    """Call ``owner.stop()`` when the interpreter exits (or, ``enabled=False``, no more)."""
    if enabled:
        _RUNNING.add(owner)
    else:
        _RUNNING.discard(owner)


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file ("" if unreadable)."""
    try:
        data = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(data[-lines:])


class BrokerJvm:
    """The JVM of one broker whose files (see :func:`config.write_config`) are in ``log_dir``.

    ``java`` and ``jars`` come from :mod:`fink_client.localkafka.jars`; ``heap`` is
    ``-Xmx``; a ``detached`` JVM gets no parent-death signal and may outlive us.
    """

    def __init__(self, log_dir: Path, java: str, jars: Path, heap: str, *, detached: bool) -> None:
        self.log_dir = log_dir
        self._java = java
        self._jars = jars
        self._heap = heap
        self._detached = detached
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """Pid of the JVM, or None when not launched."""
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        """True while the JVM is alive."""
        return self._proc is not None and self._proc.poll() is None

    def format(self, scram_args: list[str]) -> None:
        """Format the storage with a new cluster id and the ``--add-scram`` users."""
        cmd = [
            self._java, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            *jvm_flags(self.log_dir), "-cp", f"{self._jars}/*", "kafka.tools.StorageTool",
            "format", "--config", str(self.log_dir / "server.properties"),
            "--cluster-id", cluster_id(), *scram_args,
        ]  # fmt: skip
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, check=False)
        if proc.returncode != 0:
            out = (proc.stdout + proc.stderr).decode(errors="replace").strip()[-3000:]
            raise BrokerError(f"formatting the Kafka storage failed:\n{out}")

    def launch(self, admin_servers: str, deadline: float) -> None:
        """Start the JVM and return once ``admin_servers`` answers; stop it on failure."""
        cmd = [
            self._java, f"-Xmx{self._heap}", "-Xms64m", "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20", *jvm_flags(self.log_dir), "-cp", f"{self._jars}/*",
            "kafka.Kafka", str(self.log_dir / "server.properties"),
        ]  # fmt: skip
        if sys.platform.startswith("linux") and not self._detached:
            cmd = [sys.executable, "-I", "-S", "-c", _PDEATHSIG_SHIM, str(os.getpid()), *cmd]
        with open(self.log_dir / "jvm.out", "ab") as out:
            # Own session: signals to our terminal's process group do not reach the JVM and
            # stop() can signal the whole group. No inherited pipes: the JVM must never hold
            # a caller's stdout open (a detached broker would hang `subprocess.run`).
            self._proc = _LAUNCHER.call(
                lambda: subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                )
            )
        try:
            self._wait_ready(admin_servers, deadline)
        except BaseException:
            self.stop(timeout=5)
            raise

    def _wait_ready(self, admin_servers: str, deadline: float) -> None:
        """Poll the admin listener until the broker answers a metadata request."""
        from confluent_kafka.admin import AdminClient

        probe = AdminClient(admin_client_config(admin_servers, fast=True))
        while True:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                raise BrokerError(
                    f"the Kafka broker exited during start (exit code {code}); "
                    f"log in {self.log_dir}:\n{self.log_tail()}"
                )
            try:
                probe.list_topics(timeout=1.0)
                return
            except Exception:  # KafkaException while the broker is not listening yet
                if time.monotonic() > deadline:
                    raise BrokerError(
                        f"the Kafka broker was not ready in time; log in {self.log_dir}:\n"
                        f"{self.log_tail()}"
                    ) from None
                time.sleep(0.1)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the JVM's process group, SIGKILL after ``timeout`` s, and reap it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            stop_pid(proc.pid, timeout)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)  # reap it: no zombie left behind

    def log_tail(self) -> str:
        """The end of ``jvm.out`` and ``logs/server.log``, for error messages."""
        parts = []
        for path in (self.log_dir / "jvm.out", self.log_dir / "logs" / "server.log"):
            text = tail(path)
            if text:
                parts.append(f"--- {path.name} ---\n{text}")
        return "\n".join(parts) or "(no log written)"
