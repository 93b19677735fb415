"""Bad input gets a typed error naming what was wrong (no broker needed here)."""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

import pytest

from fink_client import config
from fink_client.consumer import AlertConsumer
from fink_client.errors import AlertError, ConfigError, SchemaError
from fink_client.io import AlertReader, JsonLinesWriter
from fink_client.testing import assert_alerts_equal
from tests.helpers import SAMPLES, raised_within

FINK = SAMPLES / "ztf" / "fink"
LSST = SAMPLES / "lsst"
CONFIG = {"group_id": "g", "bootstrap.servers": "127.0.0.1:1", "connect_timeout": 1}




# -- consumer arguments ---------------------------------------------------------------------
def test_bad_topic_pattern_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError) as info:
        AlertConsumer(["^([bad"], CONFIG)
    assert "^([bad" in str(info.value) and info.value.field == "topics"


@pytest.mark.parametrize("topics", [None, 42, [], [None], ["ok", ""]])
def test_bad_topics_are_config_errors(topics) -> None:
    with pytest.raises(ConfigError) as info:
        AlertConsumer(topics, CONFIG)
    assert info.value.field == "topics"


@pytest.mark.parametrize("cfg", [None, "group_id=g", ["group_id"]])
def test_config_that_is_not_a_dict_is_a_config_error(cfg) -> None:
    with pytest.raises(ConfigError, match="config must be a dict"):
        AlertConsumer(["t"], cfg)


@pytest.mark.parametrize("value", [math.nan, math.inf, -1, 0, "soon", None, True])
def test_connect_timeout_must_be_finite_and_positive(value) -> None:
    with pytest.raises(ConfigError) as info:
        config.connect_timeout({"connect_timeout": value})
    assert info.value.field == "connect_timeout"


def test_nan_connect_timeout_fails_at_once_instead_of_hanging() -> None:
    exc = raised_within(lambda: AlertConsumer(["t"], dict(CONFIG, connect_timeout=math.nan)))
    assert isinstance(exc, ConfigError) and exc.field == "connect_timeout"


@pytest.mark.parametrize("value,expected", [(None, math.inf), (-1, math.inf), (0, 0.0),
                                            (2.5, 2.5), ("3", 3.0)])
def test_poll_timeouts(value, expected) -> None:
    assert config.seconds(value, "timeout", forever_below_zero=True) == expected


@pytest.mark.parametrize("value", [math.nan, math.inf, "x", [1]])
def test_bad_poll_timeouts(value) -> None:
    with pytest.raises(ConfigError, match="timeout"):
        config.seconds(value, "timeout", forever_below_zero=True)


def test_secret_keys_cover_librdkafka_sensitive_values() -> None:
    for key in ("sasl.password", "ssl.key.password", "ssl.key.pem", "ssl_key",
                "ssl.keystore.password", "sasl.oauthbearer.config",
                "sasl.oauthbearer.client.secret", "password"):
        assert config.is_secret_key(key), key
    for key in ("ssl.key.location", "ssl.certificate.pem", "session.timeout.ms"):
        assert not config.is_secret_key(key), key
    assert config.redact({"ssl.key.pem": "-----BEGIN", "ssl_key": "k"}) == {
        "ssl.key.pem": "***", "ssl_key": "***"}


# -- files ------------------------------------------------------------------------------------
def test_to_arrow_on_mixed_surveys_names_both_files(tmp_path: Path) -> None:
    for src in (FINK, LSST):
        for path in src.rglob("*.avro"):
            shutil.copy(path, tmp_path / path.name)
    reader = AlertReader(tmp_path)
    with pytest.raises(SchemaError) as info:
        reader.to_arrow()
    text = str(info.value)
    assert "cannot be one table" in text and "ZTF" in text and "LSST" in text
    assert "fink-broker-sample-alert" in text and "58804293150441522" in text
    assert len(reader.to_list()) == 10  # each alert still readable as a dict


def _text_cutouts(schema: dict, alerts: list[dict]) -> tuple[dict, list[dict]]:
    """Same field names at every depth; cutouts as text instead of bytes (the two are
    indistinguishable once in JSON, where bytes are base64 text)."""
    schema = copy.deepcopy(schema)
    for f in schema["fields"]:
        if f["name"].startswith("cutout"):
            for sub in f["type"]["fields"]:
                if sub["name"] == "stampData":
                    sub["type"] = ["string", "null"]
    out = []
    for alert in alerts:
        a = copy.deepcopy(alert)
        for name in ("cutoutScience", "cutoutTemplate", "cutoutDifference"):
            a[name]["stampData"] = f"text cutout of {a['candid']}"
        out.append(a)
    return schema, out


def _rename_magpsf(schema: dict, alerts: list[dict]) -> tuple[dict, list[dict]]:
    """Same top-level field names; ``candidate.magpsf`` renamed."""
    schema = copy.deepcopy(schema)
    cand = next(f for f in schema["fields"] if f["name"] == "candidate")
    for sub in cand["type"]["fields"]:
        if sub["name"] == "magpsf":
            sub["name"] = "magpsf_renamed"
    out = []
    for alert in alerts:
        a = copy.deepcopy(alert)
        a["candidate"]["magpsf_renamed"] = a["candidate"].pop("magpsf")
        out.append(a)
    return schema, out


def _write_two_schemas(folder: Path, variant) -> list[dict]:
    """Two files per schema variant in ``folder``; the alerts written, in order."""
    reader = AlertReader(FINK)
    schema, alerts = reader.schema, reader.to_list()
    other_schema, other_alerts = variant(schema, alerts)
    assert {f["name"] for f in schema["fields"]} == {f["name"] for f in other_schema["fields"]}
    with JsonLinesWriter(folder, schema) as w:
        w.write(alerts[:2])
    with JsonLinesWriter(folder, other_schema) as w:
        w.write(other_alerts[2:])
    assert len(list(folder.glob("_schema-*.avsc"))) == 2
    return alerts[:2] + other_alerts[2:]


@pytest.mark.parametrize("variant", [_text_cutouts, _rename_magpsf])
def test_json_lines_reader_uses_the_schema_each_file_was_written_with(
        variant, tmp_path: Path) -> None:
    written = _write_two_schemas(tmp_path, variant)
    got = {a["candid"]: a for a in AlertReader(tmp_path)}
    for expected in written:
        assert_alerts_equal(got[expected["candid"]], expected)


def test_json_lines_without_links_are_paired_by_their_full_structure(tmp_path: Path) -> None:
    """Files from other tools have no link file: the schema their first alert conforms to
    at every depth is taken (the nested rename tells the two schemas apart)."""
    written = _write_two_schemas(tmp_path, _rename_magpsf)
    for link in tmp_path.glob("_*.jsonl.schema"):
        link.unlink()
    got = {a["candid"]: a for a in AlertReader(tmp_path)}
    for expected in written:
        assert_alerts_equal(got[expected["candid"]], expected)


def test_json_lines_without_links_and_ambiguous_schemas_is_a_typed_error(
        tmp_path: Path) -> None:
    _write_two_schemas(tmp_path, _text_cutouts)
    for link in tmp_path.glob("_*.jsonl.schema"):
        link.unlink()
    with pytest.raises(SchemaError, match="several schema files"):
        AlertReader(tmp_path).to_list()


def test_json_lines_matching_no_side_schema_is_a_typed_error(tmp_path: Path) -> None:
    reader = AlertReader(FINK)
    with JsonLinesWriter(tmp_path, reader.schema) as w:
        (path,) = w.write(reader.to_list()[:1])
    for link in tmp_path.glob("_*.jsonl.schema"):
        link.unlink()
    lsst_schema = AlertReader(LSST).schema
    for side in tmp_path.glob("_schema-*.avsc"):
        side.write_text(json.dumps(lsst_schema))
    with pytest.raises(AlertError) as info:
        AlertReader(tmp_path).to_list()
    assert isinstance(info.value, SchemaError) and info.value.path == str(path)
