"""Synthetic LSST alerts through the real embedded Kafka broker, in every LSST wire format."""

from __future__ import annotations

import uuid

import pytest

from fink_client import schemas, synth
from fink_client.consumer import AlertConsumer
from fink_client.replay import publish
from fink_client.testing import assert_alerts_equal
from fink_client.transfer import fetch_side_schema
from tests.helpers import drain, publish_transfer, unique_group

pytestmark = pytest.mark.integration

N = 25


@pytest.mark.parametrize("name", ["fink_lsst_alert_7.4", "avro_schema_ftransfer_lsst_2026-03-18"])
@pytest.mark.parametrize("wire", ["fink", "confluent"])
def test_synthetic_lsst_alerts_round_trip(kafka, topic, alice_config, wire: str,
                                          name: str) -> None:
    schema = schemas.load(name)
    alerts = list(synth.generate(schema, N, seed=11))
    key = "alertId" if "alertId" in alerts[0] else "diaSourceId"
    assert any(a[key] > 2**53 for a in alerts)
    schema_id = schemas.id_of(name)
    sent = publish(((schema, a) for a in alerts), topic,
                   {"bootstrap.servers": kafka.admin_servers}, wire=wire, schema_id=schema_id)
    assert sent == N
    with AlertConsumer([topic], alice_config(unique_group()),
                       id_resolver=schemas.confluent_resolver()) as consumer:
        got = drain(consumer, N)
    assert len(got) == N
    expected = {a[key]: a for a in alerts}
    for got_topic, alert in got:
        assert got_topic == topic
        assert_alerts_equal(alert, expected[alert[key]])


def test_data_transfer_topic_with_side_schema_topic(kafka, alice_config) -> None:
    name = f"ftransfer_lsst_2026-03-18_{uuid.uuid4().hex[:6]}"
    schema = schemas.load("avro_schema_ftransfer_lsst_2026-03-18")
    alerts = list(synth.generate(schema, N, seed=12))
    publish_transfer(kafka, name, schema, alerts)

    cfg = alice_config(unique_group())
    assert fetch_side_schema({"bootstrap.servers": kafka.admin_servers,
                              "group.id": unique_group()}, name) == schema
    with AlertConsumer([name], cfg) as consumer:
        got = drain(consumer, N)
    assert len(got) == N
    expected = {a["diaSourceId"]: a for a in alerts}
    for _, alert in got:
        assert_alerts_equal(alert, expected[alert["diaSourceId"]])
