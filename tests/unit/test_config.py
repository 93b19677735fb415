"""Config mapping: fink-client keys -> librdkafka keys (pure logic)."""

from __future__ import annotations

import re
import warnings

import pytest

from fink_client import config
from fink_client.consumer import AlertConsumer
from fink_client.errors import ConfigError


def test_scram_credentials_map_to_sasl_keys() -> None:
    out = config.kafka_config(
        {"username": "u", "password": "p", "group_id": "g", "bootstrap.servers": "h:1"}
    )
    assert out["security.protocol"] == "SASL_PLAINTEXT"
    assert out["sasl.mechanisms"] == "SCRAM-SHA-512"
    assert out["sasl.username"] == "u"
    assert out["sasl.password"] == "p"
    assert out["group.id"] == "g"
    assert out["bootstrap.servers"] == "h:1"
    assert "username" not in out and "group_id" not in out


def test_without_credentials_is_plaintext() -> None:
    out = config.kafka_config({"group_id": "g", "bootstrap.servers": "h:1"})
    assert "security.protocol" not in out
    assert "sasl.username" not in out


def test_defaults_earliest_and_manual_offset_store() -> None:
    out = config.kafka_config({"group_id": "g"})
    assert out["auto.offset.reset"] == "earliest"
    assert out["enable.auto.offset.store"] is False
    assert out["bootstrap.servers"] == config.DEFAULT_SERVERS["ztf"]


def test_user_overrides_pass_through() -> None:
    out = config.kafka_config(
        {"group_id": "g", "auto.offset.reset": "latest", "session.timeout.ms": 7000}
    )
    assert out["auto.offset.reset"] == "latest"
    assert out["session.timeout.ms"] == 7000


def test_group_id_is_mandatory() -> None:
    with pytest.raises(ConfigError, match="group_id") as info:
        config.kafka_config({"username": "u", "password": "p"})
    assert info.value.field == "group_id"


def test_username_without_password() -> None:
    with pytest.raises(ConfigError, match="no password"):
        config.kafka_config({"username": "u", "group_id": "g"})


def test_unknown_survey_without_servers() -> None:
    with pytest.raises(ConfigError, match=re.escape("bootstrap.servers")):
        config.kafka_config({"group_id": "g", "survey": "lsst"})


def test_unknown_key_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="usernmae") as info:
        AlertConsumer(["t"], {"group_id": "g", "usernmae": "x", "bootstrap.servers": "h:1"})
    assert info.value.field == "usernmae"


def test_bad_connect_timeout() -> None:
    with pytest.raises(ConfigError, match="connect_timeout"):
        config.connect_timeout({"connect_timeout": "soon"})
    assert config.connect_timeout({}) == config.DEFAULT_CONNECT_TIMEOUT


def test_redact_hides_secrets() -> None:
    red = config.redact({"sasl.password": "s3cr3t", "password": "x", "group.id": "g"})
    assert red == {"sasl.password": "***", "password": "***", "group.id": "g"}


# -- upstream fink-client's spellings (docs/migrating.md) ------------------------------


def test_upstream_group_dot_id_is_our_group_id() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same meaning: no deprecation warning
        out = config.kafka_config({"group.id": "g", "bootstrap.servers": "h:1"})
    assert out["group.id"] == "g"
    same = config.kafka_config({"group.id": "g", "group_id": "g", "bootstrap.servers": "h:1"})
    assert same["group.id"] == "g"


def test_two_different_groups_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="two consumer groups") as info:
        config.kafka_config({"group.id": "a", "group_id": "b"})
    assert info.value.field == "group.id"
    with pytest.raises(ConfigError, match="two consumer groups"):
        AlertConsumer(["t"], {"group.id": "a", "group_id": "b", "bootstrap.servers": "h:1"})


def test_survey_selects_the_default_server() -> None:
    for survey in ("ztf", "ZTF", " ztf "):
        out = config.kafka_config(config.with_survey({"group_id": "g"}, survey))
        assert out["bootstrap.servers"] == config.DEFAULT_SERVERS["ztf"]
    assert "survey" not in out  # a fink-client key, never passed to librdkafka


def test_lsst_has_no_public_default_server() -> None:
    assert "lsst" in config.SURVEYS and "lsst" not in config.DEFAULT_SERVERS
    with pytest.raises(ConfigError, match="Fink LSST account") as info:
        config.kafka_config(config.with_survey({"group_id": "g"}, "lsst"))
    assert info.value.field == "bootstrap.servers"
    out = config.kafka_config(config.with_survey({"group_id": "g",
                                                  "bootstrap.servers": "h:1"}, "lsst"))
    assert out["bootstrap.servers"] == "h:1"


def test_unknown_survey_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="choose one of ztf, lsst") as info:
        config.kafka_config({"group_id": "g", "survey": "elasticc", "bootstrap.servers": "h:1"})
    assert info.value.field == "survey"


def test_survey_keyword_and_key_must_agree() -> None:
    assert config.with_survey({"survey": "LSST"}, "lsst") == {"survey": "lsst"}
    assert config.with_survey({"group_id": "g"}, None) == {"group_id": "g"}
    with pytest.raises(ConfigError, match="give it once"):
        config.with_survey({"survey": "ztf"}, "lsst")
    with pytest.raises(ConfigError, match="give it once"):
        AlertConsumer(["t"], {"group_id": "g", "survey": "ztf"}, survey="lsst")


def test_consumer_takes_the_survey_keyword() -> None:
    # Validated before any connection: lsst without servers says what to set.
    with pytest.raises(ConfigError, match=re.escape("bootstrap.servers")):
        AlertConsumer(["t"], {"group_id": "g"}, survey="lsst")


def test_aio_consumer_checks_the_config_at_construction() -> None:
    from fink_client.aio import AlertConsumer as AsyncAlertConsumer

    with pytest.raises(ConfigError, match="two consumer groups"):
        AsyncAlertConsumer(["t"], {"group.id": "a", "group_id": "b"})
    with pytest.raises(ConfigError, match="Fink LSST account"):
        AsyncAlertConsumer(["t"], {"group_id": "g"}, survey="lsst")
    with pytest.raises(ConfigError, match="auto_store"):
        AsyncAlertConsumer(["t"], {"group_id": "g"}, auto_store=True)


def test_aio_bad_call_arguments_fail_before_connecting() -> None:
    import asyncio

    from fink_client.aio import AlertConsumer as AsyncAlertConsumer

    consumer = AsyncAlertConsumer(["t"], {"group_id": "g", "bootstrap.servers": "127.0.0.1:1"})
    with pytest.raises(ConfigError, match="timeout"):
        asyncio.run(consumer.poll(float("nan")))
    with pytest.raises(ConfigError, match="num_alerts"):
        asyncio.run(consumer.consume(0, timeout=1))
    assert "not started" in repr(consumer)  # nothing tried to reach the server
