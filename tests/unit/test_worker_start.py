"""Start-up of the transfer workers: they join the group together
(``Shared.start_together``), and their preparation never imports pandas."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading

from fink_client.transfer_worker import Shared


def _shared(workers: int) -> Shared:
    return Shared(multiprocessing.get_context("spawn"), workers)


def test_a_prepared_worker_waits_for_the_others_then_all_go() -> None:
    shared = _shared(2)
    first = threading.Thread(target=shared.start_together, kwargs={"patience": 60})
    first.start()
    first.join(0.3)
    assert first.is_alive()  # the other worker is not ready yet: it waits
    second = threading.Thread(target=shared.start_together, kwargs={"patience": 60})
    second.start()
    for t in (first, second):
        t.join(10)
        assert not t.is_alive()  # both ready: both go
    assert shared.ready.value == 2


def test_a_missing_worker_holds_the_others_back_only_for_the_patience() -> None:
    shared = _shared(3)  # one of them never comes (died at start-up)
    done = threading.Thread(target=shared.start_together, kwargs={"patience": 0.2})
    done.start()
    done.join(10)
    assert not done.is_alive()
    assert shared.ready.value == 1


def test_a_stop_ends_the_wait() -> None:
    shared = _shared(2)
    waiting = threading.Thread(target=shared.start_together, kwargs={"patience": 60})
    waiting.start()
    shared.stop.set()
    waiting.join(10)
    assert not waiting.is_alive()


PREPARE = """
import io, sys, tempfile
import fastavro
from fink_client import codec, schemas, synth
from fink_client.transfer_worker import BatchWriter, Job
schema = schemas.load("avro_schema_ftransfer_ztf_2026-03-23")
parsed = codec.parse_schema(schema)
values = []
for alert in synth.generate(schema, 20, seed=3):
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, alert)
    values.append(buf.getvalue())
for fmt, by in (("parquet", "none"), ("parquet", "time"), ("avro", "none")):
    job = Job(topic="ftransfer_ztf_t", config={}, out=tempfile.mkdtemp(), fmt=fmt,
              partition_by=by, schema=schema, ends={}, batch_size=1000, dead_letter=None,
              limit=None)
    writer = BatchWriter(job)
    writer.prepare()
    assert writer.write(0, [(i, v, None) for i, v in enumerate(values)])[0] == 20
print("pandas" in sys.modules)
"""


def test_a_worker_never_imports_pandas() -> None:
    """pandas costs a worker ~0.2 s of start-up and is of no use to it (run in a fresh
    interpreter: the test process has pandas already)."""
    out = subprocess.run([sys.executable, "-c", PREPARE], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
