"""``transfer_worker.worker_kafka_config``: a worker's librdkafka settings, the client's
with the worker's own defaults, and what the user set always winning."""

from __future__ import annotations

from fink_client.config import CLIENT_DEFAULTS
from fink_client.transfer_worker import WORKER_DEFAULTS, worker_kafka_config

BASE = {"bootstrap.servers": "localhost:9092", "group_id": "g"}


def test_a_partition_may_fill_a_whole_fetch_by_default() -> None:
    kcfg = worker_kafka_config(BASE)
    assert kcfg["max.partition.fetch.bytes"] == CLIENT_DEFAULTS["fetch.max.bytes"]
    assert kcfg["fetch.max.bytes"] == CLIENT_DEFAULTS["fetch.max.bytes"]
    assert kcfg["max.partition.fetch.bytes"] != CLIENT_DEFAULTS["max.partition.fetch.bytes"]
    for key, value in WORKER_DEFAULTS.items():
        assert kcfg[key] == value, key
    assert kcfg["group.id"] == "g" and kcfg["bootstrap.servers"] == "localhost:9092"


def test_a_smaller_fetch_chosen_by_the_user_bounds_the_partition_share() -> None:
    kcfg = worker_kafka_config({**BASE, "fetch.max.bytes": 8 << 20})
    assert kcfg["fetch.max.bytes"] == kcfg["max.partition.fetch.bytes"] == 8 << 20


def test_what_the_user_set_wins() -> None:
    kcfg = worker_kafka_config({**BASE, "max.partition.fetch.bytes": 1 << 20,
                                "heartbeat.interval.ms": 500})
    assert kcfg["max.partition.fetch.bytes"] == 1 << 20
    assert kcfg["heartbeat.interval.ms"] == 500
    assert kcfg["enable.auto.commit"] is False
