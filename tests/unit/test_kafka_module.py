"""fink_client._kafka and the librdkafka error translation in fink_client.errors, on real
confluent-kafka error objects and clients (no broker: a closed port answers nothing)."""

from __future__ import annotations

import socket
import time

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka import KafkaError as RdKafkaError

from fink_client import _kafka, errors
from fink_client.config import SASL_MECHANISM, kafka_config
from fink_client.errors import (
    AuthenticationError,
    BrokerUnreachableError,
    ConfigError,
    GroupAuthorizationError,
    KafkaError,
    TopicAuthorizationError,
    UnknownTopicError,
    translate_kafka_error,
)


@pytest.mark.parametrize(("code", "typed"), [
    (RdKafkaError._AUTHENTICATION, AuthenticationError),
    (RdKafkaError.SASL_AUTHENTICATION_FAILED, AuthenticationError),
    (RdKafkaError.TOPIC_AUTHORIZATION_FAILED, TopicAuthorizationError),
    (RdKafkaError.GROUP_AUTHORIZATION_FAILED, GroupAuthorizationError),
    (RdKafkaError.UNKNOWN_TOPIC_OR_PART, UnknownTopicError),
    (RdKafkaError._UNKNOWN_TOPIC, UnknownTopicError),
    (RdKafkaError._UNKNOWN_PARTITION, UnknownTopicError),
    (RdKafkaError._ALL_BROKERS_DOWN, BrokerUnreachableError),
    (RdKafkaError._TRANSPORT, BrokerUnreachableError),
    (RdKafkaError._RESOLVE, BrokerUnreachableError),
])
def test_each_librdkafka_error_gets_its_typed_error(code: int, typed: type) -> None:
    got = translate_kafka_error(RdKafkaError(code), servers="h:1", topic="t", partition=2,
                                group="g")
    assert type(got) is typed
    if typed in (TopicAuthorizationError, UnknownTopicError):
        assert (got.topic, got.partition) == ("t", 2)


def test_other_errors_keep_librdkafka_name() -> None:
    got = translate_kafka_error(RdKafkaError(RdKafkaError.OFFSET_OUT_OF_RANGE), topic="t")
    assert type(got) is KafkaError and got.code == "OFFSET_OUT_OF_RANGE" and got.topic == "t"


def test_the_old_import_path_still_works() -> None:
    from fink_client.consumer import translate_kafka_error as old

    assert old is errors.translate_kafka_error


def test_one_sasl_setting_for_consumers_and_producers() -> None:
    user = {"username": "u", "password": "p", "group_id": "g", "bootstrap.servers": "h:1"}
    consumer, producer = kafka_config(user), _kafka.producer_config(user)
    keys = ("security.protocol", "sasl.mechanisms", "sasl.username", "sasl.password")
    assert [consumer[k] for k in keys] == [producer[k] for k in keys] == [
        "SASL_PLAINTEXT", SASL_MECHANISM, "u", "p"]
    assert not {"username", "password", "group_id"} & producer.keys()


def test_unknown_librdkafka_key_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError) as info:
        _kafka.Client(Producer, {"bootstrap.servers": "h:1", "no.such.key": 1}, timeout=1)
    assert info.value.field == "no.such.key"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_retry_gives_up_with_a_typed_error_at_the_deadline() -> None:
    seen: list = []
    client = _kafka.Client(Consumer, {"bootstrap.servers": f"127.0.0.1:{_closed_port()}",
                                      "group.id": "g", "error_cb": seen.append}, timeout=1.5)
    start = time.monotonic()
    try:
        with pytest.raises(BrokerUnreachableError, match="while listing topics"):
            client.retry("listing topics", client.kafka.list_topics)
    finally:
        client.close()
    assert time.monotonic() - start < 10
    assert seen, "the caller's own error_cb still gets librdkafka's errors"
