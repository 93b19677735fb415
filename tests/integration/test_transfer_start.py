"""``transfer.commit_start_offsets``: the start of a new group committed before the workers
start, against the embedded broker: only where the group never committed, never over an
active group's progress, never when the user asked for another ``auto.offset.reset``."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, Producer

from fink_client import config as _config
from fink_client.offsets import OffsetsClient
from fink_client.transfer import commit_start_offsets
from tests.conftest import sasl_config

PARTITIONS = 4  # partition 3 stays empty


def _topic(kafka) -> str:
    name = f"ftransfer_ztf_2026-03-23_{uuid.uuid4().hex[:6]}"
    kafka.create_topic(name, partitions=PARTITIONS)
    producer = Producer({"bootstrap.servers": kafka.admin_servers})
    for i in range(9):
        producer.produce(name, value=b"x%d" % i, partition=i % (PARTITIONS - 1))
    assert producer.flush(30) == 0
    return name


def _committed(oc: OffsetsClient, topic: str) -> dict[int, int | None]:
    return {r.partition: r.committed for r in oc.describe([topic])}


def test_commits_the_beginning_only_where_the_group_never_committed(kafka) -> None:
    topic, cfg = _topic(kafka), sasl_config(kafka, "alice")
    with OffsetsClient(cfg) as oc:
        oc.commit({(topic, 1): 2})
        done = commit_start_offsets(oc, _config.kafka_config(cfg), oc.describe([topic]))
        assert done == {(topic, 0): 0, (topic, 2): 0}
        # partition 1 keeps its progress; the empty partition 3 is left alone
        assert _committed(oc, topic) == {0: 0, 1: 2, 2: 0, 3: None}
        # a second call finds nothing left to start
        assert commit_start_offsets(oc, _config.kafka_config(cfg), oc.describe([topic])) == {}


def test_refused_while_the_group_has_a_member(kafka) -> None:
    """Another machine's workers are in the group: their progress is not rewound."""
    topic, cfg = _topic(kafka), sasl_config(kafka, "alice")
    member = Consumer({**_config.kafka_config(cfg), "enable.auto.commit": False})
    try:
        member.subscribe([topic])
        deadline = time.monotonic() + 30
        while not member.assignment() and time.monotonic() < deadline:
            member.poll(0.2)
        assert member.assignment(), "the member never got its partitions"
        with OffsetsClient(cfg) as oc:
            report = oc.describe([topic])
            assert commit_start_offsets(oc, _config.kafka_config(cfg), report) == {}
            assert _committed(oc, topic) == {p: None for p in range(PARTITIONS)}
    finally:
        member.close()


def test_nothing_when_the_user_starts_elsewhere(kafka) -> None:
    topic = _topic(kafka)
    cfg = {**sasl_config(kafka, "alice"), "auto.offset.reset": "latest"}
    with OffsetsClient(cfg) as oc:
        assert commit_start_offsets(oc, _config.kafka_config(cfg), oc.describe([topic])) == {}
        assert _committed(oc, topic) == {p: None for p in range(PARTITIONS)}
