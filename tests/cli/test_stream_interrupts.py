"""``finkctl stream --save`` interrupted in the middle of a file write, for real.

800 full-size Fink alerts (~54 KB each) make one Avro file, written either through
dicts (``FINK_CLIENT_NO_FASTPATH=1``: fastavro's Cython writer, seconds long; a
KeyboardInterrupt raised inside it used to come out as a ``SystemError``, exit 1) or by
the default pass-through, in its background thread while the main thread reads on (its
write, milliseconds long, made to last by ``FAULT_WRITE_SECONDS`` of
``tests/faults/scripts/finkctl_throttled.py``). The test waits for the hidden
temporary file to appear, then:

* sends SIGINT twice (a stop, then, once it was heard, an abort): exit 130 at once, no
  traceback, the temporary file removed, nothing committed, a rerun gets every alert;
* or kills the process with ``kill -9``: the temporary file stays behind, and the next
  run removes it (its process is dead) but keeps a live process's one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from fink_client.io import AlertReader
from tests.cli.test_finkctl import finkctl
from tests.faults.helpers import (
    encode_all,
    kill9,
    publish_spread,
    python_cmd,
    unique_alerts,
    wait_for,
)
from tests.helpers import FINKCTL

pytestmark = pytest.mark.integration

N = 800


@pytest.fixture(scope="module")
def big_topic(kafka) -> str:
    """One partition of N unique, full-size Fink ZTF alerts."""
    name = kafka.create_topic(f"big-{uuid.uuid4().hex[:8]}")
    publish_spread(encode_all(unique_alerts(N, cutout_bytes=10**6)), name,
                   kafka.admin_servers, 1)
    return name


def _temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp")) if folder.exists() else []


@pytest.fixture(params=["dicts", "passthrough"])
def writing(request: pytest.FixtureRequest) -> tuple[list[str], dict[str, str]]:
    """How the interrupted run writes: the command and its extra environment."""
    if request.param == "dicts":
        return FINKCTL, {"FINK_CLIENT_NO_FASTPATH": "1"}
    return python_cmd("finkctl_throttled.py"), {"FAULT_WRITE_SECONDS": "60"}


def _start_writing(topic: str, out: Path, env: dict, writing: tuple[list[str], dict[str, str]],
                   stderr: Path) -> subprocess.Popen:
    """A ``finkctl stream --save`` run (its stderr into the file ``stderr``), returned
    once its Avro temp file exists."""
    cmd, extra = writing
    with open(stderr, "wb") as err:
        proc = subprocess.Popen(
            [*cmd, "stream", topic, "--save", str(out), "--format", "avro",
             "--batch-size", str(N)],
            env={**env, **extra}, stdout=subprocess.DEVNULL, stderr=err)
    seen = wait_for(lambda: bool(_temps(out)) or proc.poll() is not None, 90, step=0.002)
    if not seen or proc.poll() is not None:
        proc.kill()
        proc.wait(30)
        pytest.fail(f"no temporary file appeared: {stderr.read_text()[-3000:]}")
    return proc


def _committed(env: dict, topic: str) -> int | None:
    r = finkctl("offsets", topic, "--json", env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["offsets"][0]["committed"]


def test_second_ctrl_c_during_a_write_aborts_with_130(big_topic, env: dict, tmp_path: Path,
                                                       writing) -> None:
    out, stderr = tmp_path / "out", tmp_path / "stderr.txt"
    proc = _start_writing(big_topic, out, env, writing, stderr)
    try:
        proc.send_signal(signal.SIGINT)  # stop: finish the current file...
        # ...no: abort now, once the first one was heard (two signals that land while
        # the main thread waits in librdkafka's consume count as one for Python)
        assert wait_for(lambda: "Ctrl-C again" in stderr.read_text(), 30, step=0.002), (
            stderr.read_text())
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    err = stderr.read_text()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "SystemError" not in err, err
    assert "aborted" in err
    assert not _temps(out)  # the abort removed its temporary file
    assert not list(out.glob("*.avro"))  # the file was not finished
    assert _committed(env, big_topic) is None  # nothing committed
    r = finkctl("stream", big_topic, "--until-end", "--save", str(tmp_path / "again"),
                env=env, timeout=180)
    assert r.returncode == 0, r.stderr
    assert len(list(AlertReader(tmp_path / "again"))) == N


def test_next_run_removes_temp_files_of_killed_runs(big_topic, env: dict, tmp_path: Path,
                                                   writing) -> None:
    out = tmp_path / "out"
    proc = _start_writing(big_topic, out, env, writing, tmp_path / "stderr.txt")
    kill9(proc)
    left = _temps(out)
    assert left and all(f".{proc.pid}.tmp" in p.name for p in left)  # kill -9 leaves it
    # a temp file of a live process (this test's) must survive the cleaning
    alive = out / f".other.avro.{os.getpid()}.tmp"
    alive.write_bytes(b"being written")
    r = finkctl("stream", big_topic, "--until-end", "--save", str(out), env=env, timeout=180)
    assert r.returncode == 0, r.stderr
    assert not any(p.exists() for p in left)
    assert alive.exists()
    assert len(list(AlertReader(out))) == N
