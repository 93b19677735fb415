"""Helpers shared by the unit, integration and CLI tests (the fault suite has its own)."""

from __future__ import annotations

import io
import json
import math
import os
import shlex
import shutil
import sys
import sysconfig
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka import Producer

import fink_client
from fink_client import codec, fastdecode, synth
from fink_client.consumer import AlertConsumer
from fink_client.replay import replay

SAMPLES = Path(fink_client.__file__).parent / "data" / "samples"


def _finkctl_command() -> list[str]:
    """The ``finkctl`` installed beside the interpreter running the tests.

    Never the bare name: a ``finkctl`` on the machine's PATH (an earlier install) would make
    the tests pass on one machine and fail on a new one.
    """
    script = Path(sys.executable).with_name("finkctl")
    if not script.is_file():
        raise RuntimeError(f"{script} is missing: install the package into this interpreter's "
                           "environment first (bin/bootstrap.sh test)")
    return [str(script)]


FINKCTL: list[str] = _finkctl_command()


def source_alerts(*folders: Path) -> dict[int, dict]:
    """fastavro's reading of every sample file in ``folders``, by candid."""
    out = {}
    for folder in folders:
        for path in sorted(folder.rglob("*.avro")):
            with open(path, "rb") as fh:
                for record in fastavro.reader(fh):
                    out[record["candid"]] = record
    return out


def publish(kafka: Any, topic: str, *folders: Path) -> int:
    """Replay the sample files of ``folders`` to ``topic`` in Fink's wire format."""
    return replay(list(folders), topic, {"bootstrap.servers": kafka.admin_servers})


def publish_transfer(kafka: Any, name: str, schema: dict, alerts: list[dict]) -> None:
    """Create data-transfer topic ``name`` as Fink does: the schema is the key of the first
    message of ``<name>_schema``; the values are schemaless Avro without a key.
    """
    kafka.create_topic(name)
    kafka.create_topic(f"{name}_schema")
    producer = Producer({"bootstrap.servers": kafka.admin_servers})
    producer.produce(f"{name}_schema", key=json.dumps(schema).encode(), value=b"")
    assert producer.flush(30) == 0
    parsed = codec.parse_schema(schema)
    for alert in alerts:
        producer.produce(name, value=schemaless(parsed, alert))
    assert producer.flush(30) == 0


def schemaless(parsed: Any, record: dict) -> bytes:
    """``record`` in Avro's schemaless encoding, by fastavro (the reference encoder);
    ``parsed`` is a parsed schema (:func:`fink_client.codec.parse_schema`)."""
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, record)
    return buf.getvalue()


def synthetic_payloads(schema_json: dict, n: int, seed: int) -> list[bytes]:
    """``n`` seeded synthetic alerts of ``schema_json`` (:mod:`fink_client.synth`),
    schemaless-encoded."""
    parsed = codec.parse_schema(schema_json)
    return [schemaless(parsed, r) for r in synth.generate(schema_json, n, seed)]


def sample_groups() -> list[tuple[str, dict, list[bytes]]]:
    """``(file name, writer schema, schemaless payloads)`` of every bundled sample file."""
    out = []
    for path in sorted(SAMPLES.rglob("*.avro")):
        with open(path, "rb") as fh:
            reader = fastavro.reader(fh)
            parsed = codec.parse_schema(reader.writer_schema)
            out.append((path.name, reader.writer_schema, [schemaless(parsed, r) for r in reader]))
    return out


def drain(consumer: AlertConsumer, expected: int, timeout: float = 30) -> list:
    """Consume until ``expected`` alerts came or ``timeout`` seconds passed."""
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        got.extend(consumer.consume(num_alerts=expected - len(got), timeout=2))
    return got


def unique_group() -> str:
    """A consumer group id no other test uses."""
    return f"g-{uuid.uuid4().hex[:8]}"


def raised_within(fn: Any, seconds: float = 30) -> BaseException | None:
    """Run ``fn`` in a thread; return the exception it raised (None if it returned), and
    fail the test if it is still running after ``seconds`` (a hang)."""
    box: list[BaseException | None] = [None]

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            box[0] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"still running after {seconds} s (a hang)"
    return box[0]


# -- the C fast path ---------------------------------------------------------------------
def c_compiler() -> str | None:
    """Path of the C compiler setuptools would use (``$CC``, Python's ``CC``, or ``cc``)."""
    for candidate in (os.environ.get("CC"), sysconfig.get_config_var("CC"), "cc"):
        if candidate:
            found = shutil.which(shlex.split(candidate)[0])
            if found:
                return found
    return None


def python_headers() -> bool:
    """Whether ``Python.h`` is installed (the extension cannot build without it)."""
    return (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file()


def c_buildable() -> bool:
    """Whether this machine can build the C extensions (a compiler and ``Python.h``)."""
    return c_compiler() is not None and python_headers()


#: Marks a test of the C fast path. It is skipped only on a machine that cannot build the
#: extension; where it can, a missing extension makes the test fail, never skip
#: (tests/unit/test_packaging.py also fails there, naming the build).
needs_c = pytest.mark.skipif(
    not fastdecode.available() and not c_buildable(),
    reason="no C compiler or Python.h: the C extension cannot be built here",
)


def same(a: Any, b: Any, path: str = "$") -> None:
    """Assert deep equality with identical types at every level, NaN equal to NaN.

    Lists and tuples (Avro maps as Arrow gives them: lists of pairs) are compared item by
    item; ``path`` names where the first difference is.
    """
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, float):
        assert (math.isnan(a) and math.isnan(b)) or a == b, f"{path}: {a!r} != {b!r}"
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{path}: keys differ"
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{path}: lengths {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"
