"""AlertConsumer against the real embedded Kafka broker (SCRAM users, ACLs)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import fastavro
import pytest

from fink_client.consumer import AlertConsumer, AlertError
from fink_client.errors import (
    AuthenticationError,
    BrokerUnreachableError,
    TopicAuthorizationError,
    UnknownTopicError,
)
from fink_client.testing import assert_alerts_equal
from tests.helpers import SAMPLES, drain, publish, source_alerts
from tests.helpers import unique_group as group

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_every_decoded_alert_equals_its_source_file(kafka, topic, alice_config) -> None:
    """Real Fink wire format through Kafka, compared field by field with fastavro."""
    expected = {}
    for sub in ("ztf/raw", "ztf/raw-datasim", "ztf/fink"):
        expected.update(source_alerts(SAMPLES / sub))
    n = publish(kafka, topic, SAMPLES / "ztf")
    assert n == len(expected) == 18
    with AlertConsumer([topic], alice_config(group())) as consumer:
        got = drain(consumer, n)
    assert len(got) == n
    for t, alert in got:
        assert t == topic
        assert_alerts_equal(alert, expected[alert["candid"]])


def test_lsst_samples_round_trip(kafka, topic, alice_config) -> None:
    folder = SAMPLES / "lsst"
    expected = {}
    for path in sorted(folder.rglob("*.avro")):
        with open(path, "rb") as fh:
            for record in fastavro.reader(fh):
                expected[record["alertId"]] = record
    publish(kafka, topic, folder)
    with AlertConsumer([topic], alice_config(group())) as consumer:
        got = drain(consumer, len(expected))
    assert sorted(a["alertId"] for _, a in got) == sorted(expected)
    for _, alert in got:
        assert_alerts_equal(alert, expected[alert["alertId"]])


def test_poll_on_empty_topic_returns_none_none(kafka, topic, alice_config) -> None:
    with AlertConsumer([topic], alice_config(group())) as consumer:
        start = time.monotonic()
        assert consumer.poll(timeout=2) == (None, None)
        assert time.monotonic() - start < 10


def test_poll_returns_topic_and_alert(kafka, topic, alice_config) -> None:
    publish(kafka, topic, SAMPLES / "ztf" / "fink")
    with AlertConsumer([topic], alice_config(group())) as consumer:
        got_topic, alert = consumer.poll(timeout=20)
    assert got_topic == topic
    assert alert["objectId"].startswith("ZTF")


def test_consume_honours_num_alerts(kafka, topic, alice_config) -> None:
    publish(kafka, topic, SAMPLES / "ztf" / "raw-datasim")  # 10 alerts
    with AlertConsumer([topic], alice_config(group())) as consumer:
        first = consumer.consume(num_alerts=3, timeout=20)
        assert len(first) == 3
        rest = drain(consumer, 7)
        assert len(rest) == 7
        assert consumer.consume(num_alerts=5, timeout=1) == []
    ids = [a["candid"] for _, a in first + rest]
    assert len(set(ids)) == 10


def test_same_group_resumes_new_group_gets_everything(kafka, topic, alice_config) -> None:
    publish(kafka, topic, SAMPLES / "ztf" / "raw-datasim")
    gid = group()
    with AlertConsumer([topic], alice_config(gid)) as consumer:
        first = drain(consumer, 10)
    assert len(first) == 10
    with AlertConsumer([topic], alice_config(gid)) as consumer:
        assert consumer.consume(num_alerts=10, timeout=3) == []
    with AlertConsumer([topic], alice_config(group())) as consumer:
        again = drain(consumer, 10)
    assert sorted(a["candid"] for _, a in again) == sorted(a["candid"] for _, a in first)


def test_partial_consumption_commits_only_what_was_handed_out(kafka, topic, alice_config) -> None:
    publish(kafka, topic, SAMPLES / "ztf" / "raw-datasim")
    gid = group()
    with AlertConsumer([topic], alice_config(gid)) as consumer:
        first = consumer.consume(num_alerts=4, timeout=20)
    assert len(first) == 4
    with AlertConsumer([topic], alice_config(gid)) as consumer:
        rest = drain(consumer, 6)
    assert len(rest) == 6
    assert not {a["candid"] for _, a in first} & {a["candid"] for _, a in rest}


def test_scram_login_and_plain_listener_config(kafka, topic) -> None:
    publish(kafka, topic, SAMPLES / "ztf" / "fink")
    config = {"username": "alice", "password": kafka.users["alice"], "group_id": group(),
              "bootstrap.servers": kafka.bootstrap_servers}
    with AlertConsumer([topic], config) as consumer:
        assert consumer._kafka_config["sasl.mechanisms"] == "SCRAM-SHA-512"
        assert consumer.poll(timeout=20)[0] == topic


def test_wrong_password_raises_authentication_error(kafka, topic) -> None:
    config = {"username": "alice", "password": "wrong", "group_id": group(),
              "bootstrap.servers": kafka.bootstrap_servers}
    start = time.monotonic()
    with pytest.raises(AuthenticationError, match="finkctl auth") as info:
        AlertConsumer([topic], config)
    assert time.monotonic() - start < 30
    assert "wrong" not in str(info.value)


def test_topic_without_read_acl_raises_authorisation_error(kafka, topic) -> None:
    config = {"username": "bob", "password": kafka.users["bob"], "group_id": group(),
              "bootstrap.servers": kafka.bootstrap_servers}
    with pytest.raises(TopicAuthorizationError) as info:
        AlertConsumer([topic], config)
    assert info.value.topic == topic
    assert isinstance(info.value, AlertError)


def test_unknown_topic_lists_available_ones(kafka, topic, alice_config) -> None:
    with pytest.raises(UnknownTopicError, match="does not exist; available:") as info:
        AlertConsumer([f"{topic}-nope"], alice_config(group()))
    assert topic in str(info.value)


def test_unreachable_server_raises_within_bounded_time() -> None:
    config = {"group_id": group(), "bootstrap.servers": "127.0.0.1:1", "connect_timeout": 3}
    start = time.monotonic()
    with pytest.raises(BrokerUnreachableError, match=re.escape("127.0.0.1:1")):
        AlertConsumer(["rrlyr"], config)
    assert time.monotonic() - start < 15


def _readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("<!-- section:api -->")[1].split("<!-- /section:api -->")[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_snippets_run_verbatim(kafka, alice_config) -> None:
    """Each README API snippet runs with only servers and credentials substituted."""
    for name in ("rrlyr", "ebwuma"):
        if name not in kafka.admin().list_topics(timeout=10).topics:
            kafka.create_topic(name)
    publish(kafka, "rrlyr", SAMPLES / "ztf" / "fink")
    publish(kafka, "ebwuma", SAMPLES / "ztf" / "raw")
    blocks = _readme_python_blocks()
    assert len(blocks) >= 3
    # A payload obtained elsewhere, for the decode snippet.
    with AlertConsumer(["rrlyr"], alice_config(group())) as c:
        c._fetch(1, 20)
        msg = c._buffer[0]
    for block in blocks:
        code = (block.replace('"username": "..."', '"username": "alice"')
                .replace('"password": "..."', f'"password": "{kafka.users["alice"]}"')
                .replace('"host:port"', f'"{kafka.bootstrap_servers}"')
                .replace('"client_group"', f'"{group()}"'))
        namespace: dict = {"value": msg.value(), "key": msg.key()}
        exec(compile(code, "README.md", "exec"), namespace)
        if "alerts" in namespace and "consumer" in namespace:
            assert namespace["alerts"], "README consume snippet got no alert"
            t, alert = namespace["topic"], namespace["alert"]
            assert t in ("rrlyr", "ebwuma") and alert["objectId"].startswith("ZTF")
        if "alert" in namespace and "consumer" not in namespace:
            assert namespace["alert"]["candid"] > 0
