"""``io.atomic.remove_open_temps``: the immediate abort of a process (a second Ctrl-C)
removes the temporary files of every thread, and no thread creates one afterwards.

It marks the whole process as aborting, so it runs in a child interpreter.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = r'''
import errno, sys, threading, time
from pathlib import Path
from fink_client.io.atomic import atomic_write, remove_open_temps

folder = Path(sys.argv[1])
opened, finished, errors = threading.Event(), threading.Event(), []

def writer():  # a background writer: files one after the other, each slow to write
    n = 0
    while True:
        n += 1
        try:
            with atomic_write(folder / f"f{n}.avro") as fh:
                opened.set()
                fh.write(b"x" * 1000)
                time.sleep(0.01)
            finished.set()
        except OSError as exc:
            errors.append(exc)
            if exc.errno == errno.ECANCELED:
                return

t = threading.Thread(target=writer, daemon=True)
t.start()
assert finished.wait(10)  # at least one file done: it must survive the abort
opened.clear()
assert opened.wait(10)  # and the next one open: its temp file must go
remove_open_temps()
t.join(10)
assert not t.is_alive(), "the writer kept creating files"
assert errors and errors[-1].errno == errno.ECANCELED, errors
print(sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp")))
'''


def test_abort_removes_every_threads_temp_file_and_no_new_one_starts(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
    assert not list(tmp_path.glob(".*.tmp"))
    assert list(tmp_path.glob("f*.avro"))  # files finished before the abort stay
