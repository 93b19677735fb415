"""How transfer workers are started (:func:`fink_client.transfer.worker_context`): forked by
a server that imported their modules once, with their command's environment, and aware of
their command's death although they are not its children."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from fink_client.transfer import stop_worker_server, stop_workers, worker_context
from fink_client.transfer_worker import WORKER_MODULES, CommandWatch, adopt_environment

pytestmark = pytest.mark.skipif(
    "forkserver" not in multiprocessing.get_all_start_methods(),
    reason="no forkserver on this platform: workers are spawned there")


def _probe(queue, environ) -> None:  # runs in a worker process
    loaded = [m for m in WORKER_MODULES if m in sys.modules]  # before importing anything
    before = os.environ.get("FINK_CLIENT_PROBE")
    adopt_environment(environ)
    queue.put((loaded, os.getppid(), before, os.environ.get("FINK_CLIENT_PROBE"),
               CommandWatch().gone()))


def _servers() -> list[psutil.Process]:
    return [p for p in psutil.Process().children()
            if "forkserver" in " ".join(p.cmdline())]


def _run_probe(environ: dict[str, str]) -> tuple:
    ctx = worker_context()
    queue = ctx.Queue()
    proc = ctx.Process(target=_probe, args=(queue, environ))
    proc.start()
    try:
        return queue.get(timeout=60)
    finally:
        proc.join(30)


def test_a_worker_is_forked_by_the_server_with_its_modules_already_imported() -> None:
    loaded, parent, _, _, gone = _run_probe(dict(os.environ))
    assert loaded == list(WORKER_MODULES)  # nothing left to import at start-up
    assert parent != os.getpid()  # the server's child, not ours
    assert parent in [p.pid for p in _servers()]
    assert gone is False  # and yet it knows its command (us) is alive


def test_a_worker_takes_the_environment_of_its_command(monkeypatch) -> None:
    worker_context()  # the server runs from now on, with the environment of now
    monkeypatch.setenv("FINK_CLIENT_PROBE", "set after the server started")
    _, _, before, after, _ = _run_probe(dict(os.environ))
    assert before is None  # what the server had: stale
    assert after == "set after the server started"


def test_stopping_the_server_ends_it_and_the_next_transfer_starts_another() -> None:
    worker_context()
    first = [p.pid for p in _servers()]
    assert len(first) == 1
    stop_worker_server()
    assert not psutil.pid_exists(first[0]) or psutil.Process(first[0]).status() == "zombie"
    worker_context()
    second = [p.pid for p in _servers()]
    assert len(second) == 1 and second != first


COMMAND = """
import os, sys, time
from pathlib import Path
from fink_client.transfer import worker_context
from fink_client.transfer_worker import CommandWatch

def watch(marker):
    watch = CommandWatch()
    Path(marker + ".started").write_text(str(os.getppid()))
    deadline = time.monotonic() + 60
    while not watch.gone() and time.monotonic() < deadline:
        time.sleep(0.02)
    Path(marker).write_text("gone" if watch.gone() else "never told")

if __name__ == "__main__":
    ctx = worker_context()
    ctx.Process(target=watch, args=(sys.argv[1],), daemon=False).start()
    while not Path(sys.argv[1] + ".started").exists():
        time.sleep(0.02)
    os.kill(os.getpid(), 9)  # the command dies at once, as with kill -9
"""


def test_a_worker_learns_that_its_command_was_killed(tmp_path: Path) -> None:
    script = tmp_path / "command.py"
    script.write_text(textwrap.dedent(COMMAND))
    marker = tmp_path / "marker"
    proc = subprocess.run([sys.executable, str(script), str(marker)], timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == -9
    assert int((tmp_path / "marker.started").read_text()) != proc.returncode
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text() == "gone"


def _exits_at_once() -> None:
    pass


def _never_exits() -> None:
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(1)


def test_workers_that_do_not_exit_are_killed_after_the_patience(caplog) -> None:
    ctx = worker_context()
    procs = [ctx.Process(target=_exits_at_once), ctx.Process(target=_never_exits),
             ctx.Process(target=_exits_at_once)]
    unstarted = ctx.Process(target=_exits_at_once)  # never started: skipped
    for proc in procs:
        proc.start()
    started = time.monotonic()
    killed = stop_workers([*procs, unstarted], patience=1.0)
    assert time.monotonic() - started < 10
    assert killed == [procs[1]]
    assert [p.exitcode for p in procs] == [0, -9, 0]
    assert "had not exited 1 s after the stop; killed" in caplog.text



def test_the_server_runs_no_thread_but_its_own_and_leaves_our_environment() -> None:
    """A fork of a process with threads may deadlock on a lock one of them held: the
    server's libraries start none (numpy's OpenBLAS and pyarrow's jemalloc would)."""
    before = dict(os.environ)
    stop_worker_server()  # a server started now, with this code
    _run_probe(dict(os.environ))  # returns once the server has imported its modules
    assert _servers()[0].num_threads() == 1
    assert dict(os.environ) == before  # the settings were for the server only
