"""Config mapping: fink-client keys -> librdkafka keys (pure logic)."""

from __future__ import annotations

import re

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
