"""AlertConsumer.consume_arrow against the real embedded broker.

Each batch equals what ``consume`` gives for the same messages, converted with
io.arrow; batches end where the schema changes; an undecodable message is the next
call's DecodeError (with topic/partition/offset); offsets are stored only when the
caller comes back or closes, so a consumer killed with a batch in hand gets it again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from confluent_kafka import Producer

from fink_client.arrowbatch import TOPIC_KEY, BatchDecoder
from fink_client.consumer import AlertConsumer
from fink_client.errors import DecodeError
from fink_client.io.arrow import avro_schema_of
from fink_client.replay import Encoder, read_records
from tests.helpers import SAMPLES
from tests.helpers import unique_group as group
from tests.unit.test_arrow_decode import assert_same_batch

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def send(kafka: Any, topic: str, messages: list[tuple[bytes, bytes | None]]) -> None:
    producer = Producer({"bootstrap.servers": kafka.admin_servers})
    for value, key in messages:
        producer.produce(topic, value=value, key=key)
    assert producer.flush(30) == 0


def messages_of(folder: Path, wire: str = "fink", **kw: Any) -> list[tuple[bytes, bytes | None]]:
    encoder = Encoder(wire, **kw)
    return [encoder.encode(schema, record) for schema, record in read_records([folder])]


def arrow_batches(consumer: AlertConsumer, expected: int, timeout: float = 60) -> list:
    import time

    got: list[pa.RecordBatch] = []
    deadline = time.monotonic() + timeout
    while sum(b.num_rows for b in got) < expected and time.monotonic() < deadline:
        batch = consumer.consume_arrow(100, timeout=2)
        if batch is not None:
            got.append(batch)
    return got


def without_topic(batch: pa.RecordBatch) -> pa.RecordBatch:
    meta = {k: v for k, v in (batch.schema.metadata or {}).items() if k != TOPIC_KEY}
    return batch.replace_schema_metadata(meta)


def test_batches_equal_consume_dicts_converted(kafka, topic, alice_config) -> None:
    """ZTF raw, Fink ZTF and LSST alerts (Fink wire), Confluent-framed and container
    messages: every batch equals consume()'s dicts of the same messages via io.arrow."""
    messages = (messages_of(SAMPLES / "ztf" / "raw-datasim")
                + messages_of(SAMPLES / "ztf" / "fink")
                + messages_of(SAMPLES / "lsst")
                + messages_of(SAMPLES / "ztf" / "raw", wire="confluent", schema_id=10)
                + messages_of(SAMPLES / "ztf" / "raw", wire="container"))
    send(kafka, topic, messages)
    n = len(messages)
    with AlertConsumer([topic], alice_config(group())) as consumer:
        deliveries = []
        while len(deliveries) < n:
            got = consumer.consume_messages(n - len(deliveries), timeout=10)
            assert got, "consume timed out"
            deliveries.extend(got)
    with AlertConsumer([topic], alice_config(group())) as consumer:
        batches = arrow_batches(consumer, n)
        assert consumer.consume_arrow(10, timeout=1) is None
    assert sum(b.num_rows for b in batches) == n
    # one batch per run of one schema: 10 raw-datasim, 4 Fink ZTF, 6 LSST, 4 + 4 raw ZTF
    # (the container messages carry the same schema, but another wire format)
    assert len(batches) >= 5
    at = 0
    for batch in batches:
        assert batch.schema.metadata[TOPIC_KEY] == topic.encode()
        rows = deliveries[at:at + batch.num_rows]
        at += batch.num_rows
        expected = BatchDecoder(avro_schema_of(batch.schema)).from_records(
            [d.alert for d in rows])
        assert_same_batch(without_topic(batch), expected)


def test_bad_message_is_the_next_calls_error_then_the_rest(kafka, topic, alice_config) -> None:
    good = messages_of(SAMPLES / "ztf" / "raw-datasim")[:5]
    value, key = good[3]
    send(kafka, topic, [*good[:3], (value[: len(value) // 2], key), *good[3:]])
    with AlertConsumer([topic], alice_config(group())) as consumer:
        # num_alerts = what is there, so that no call waits for its timeout
        first = consumer.consume_arrow(6, timeout=20)
        assert first is not None and first.num_rows == 3
        with pytest.raises(DecodeError) as info:
            consumer.consume_arrow(3, timeout=20)
        assert (info.value.topic, info.value.partition, info.value.offset) == (topic, 0, 3)
        assert info.value.raw_value == value[: len(value) // 2]
        rest = consumer.consume_arrow(2, timeout=20)
        assert rest is not None and rest.num_rows == 2
    with AlertConsumer([topic], alice_config(group()), on_error="skip") as consumer:
        batches = arrow_batches(consumer, 5)
    assert [b.num_rows for b in batches] == [3, 2]


def test_offsets_stored_when_coming_back_or_closing(kafka, topic, alice_config) -> None:
    send(kafka, topic, messages_of(SAMPLES / "ztf" / "raw-datasim"))
    gid = group()
    with AlertConsumer([topic], alice_config(gid)) as consumer:
        first = consumer.consume_arrow(4, timeout=20)
        assert first is not None and first.num_rows == 4
    with AlertConsumer([topic], alice_config(gid)) as consumer:
        rest = arrow_batches(consumer, 6)
    candids = [c for b in rest for c in b.column("candid").to_pylist()]
    assert len(candids) == 6
    assert not set(candids) & set(first.column("candid").to_pylist())


CHILD = r"""
import json, os, signal, sys, time
from fink_client.consumer import AlertConsumer
cfg = json.loads(sys.argv[1])
c = AlertConsumer([sys.argv[2]], cfg)
batch = None
while batch is None:
    batch = c.consume_arrow(4, timeout=5)
print(json.dumps(batch.column("candid").to_pylist()), flush=True)
time.sleep(1.5)  # several auto-commit intervals: anything stored would be committed
os.kill(os.getpid(), signal.SIGKILL)  # dies holding the batch: never came back
"""


def test_killed_with_a_batch_in_hand_gets_it_again(kafka, topic, alice_config) -> None:
    send(kafka, topic, messages_of(SAMPLES / "ztf" / "raw-datasim"))
    # the dead member's partition is reassigned once its session times out; commits are
    # frequent, so a batch whose offsets were stored too early would be lost
    cfg = {**alice_config(group()), "session.timeout.ms": 6000,
           "auto.commit.interval.ms": 200}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg), topic],
                          capture_output=True, timeout=120, cwd=ROOT, env=dict(os.environ))
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    held = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert len(held) == 4
    with AlertConsumer([topic], cfg) as consumer:
        again = arrow_batches(consumer, 10)
    candids = [c for b in again for c in b.column("candid").to_pylist()]
    assert set(held) <= set(candids)  # nothing lost
    assert len(candids) == 10
