"""Helpers shared by the integration and CLI tests (the fault suite has its own)."""

from __future__ import annotations

import io
import json
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import Producer

import fink_client
from fink_client import codec
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
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, parsed, alert)
        producer.produce(name, value=buf.getvalue())
    assert producer.flush(30) == 0


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
