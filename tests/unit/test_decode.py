"""Decoding payloads in every wire format, against fastavro's reading of the source files."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import fastavro
import pytest

import fink_client
from fink_client import codec, schemas
from fink_client.errors import DecodeError, SchemaError
from fink_client.testing import assert_alerts_equal
from fink_client.wire import Decoder

SAMPLES = Path(fink_client.__file__).parent / "data" / "samples"
SAMPLE_FILES = sorted(SAMPLES.rglob("*.avro"))


def read_sample(path: Path) -> tuple[dict, dict]:
    with open(path, "rb") as fh:
        reader = fastavro.reader(fh)
        (record,) = list(reader)
        return reader.writer_schema, record


def schemaless(schema: dict, record: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, codec.parse_schema(schema), record)
    return buf.getvalue()


def test_samples_are_bundled() -> None:
    assert len(SAMPLE_FILES) == 24


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_fink_key_schema_format(path: Path) -> None:
    schema, record = read_sample(path)
    alert = fink_client.decode(schemaless(schema, record), json.dumps(schema).encode())
    assert_alerts_equal(alert, record)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_container_value(path: Path) -> None:
    _, record = read_sample(path)
    assert_alerts_equal(fink_client.decode(path.read_bytes()), record)


def test_user_schema_overrides_detection(tmp_path: Path) -> None:
    schema, record = read_sample(SAMPLE_FILES[0])
    avsc = tmp_path / "alert.avsc"
    avsc.write_text(json.dumps(schema))
    payload = schemaless(schema, record)
    assert_alerts_equal(fink_client.decode(payload, b"ignored", schema=str(avsc)), record)
    assert_alerts_equal(fink_client.decode(payload, schema=schema), record)


def test_version_string_key_uses_bundled_schema() -> None:
    sample = SAMPLES / "ztf" / "fink" / "fink-broker-sample-alert-1.avro"
    _, record = read_sample(sample)
    schema = schemas.for_version("0.2")
    assert schema is not None
    # Fill the fields of that old schema that the sample lacks with nulls.
    full = {f["name"]: record.get(f["name"]) for f in schema["fields"]}
    alert = fink_client.decode(schemaless(schema, full), b"0.2")
    assert alert["objectId"] == record["objectId"]
    assert alert["candid"] == record["candid"]


def test_confluent_framing_with_resolver() -> None:
    schema, record = read_sample(SAMPLE_FILES[0])
    value = b"\x00" + struct.pack(">I", 42) + schemaless(schema, record)
    decoder = Decoder(id_resolver=lambda i: schema if i == 42 else None)
    assert_alerts_equal(decoder.decode(value), record)
    with pytest.raises(DecodeError):
        Decoder(id_resolver=lambda i: None).decode(value)


def test_schema_parsed_once_per_key(monkeypatch: pytest.MonkeyPatch) -> None:
    schema, record = read_sample(SAMPLE_FILES[0])
    key, value = json.dumps(schema).encode(), schemaless(schema, record)
    calls = []
    real = codec.parse_schema
    monkeypatch.setattr(codec, "parse_schema", lambda s: calls.append(1) or real(s))
    decoder = Decoder()
    for _ in range(5):
        decoder.decode(value, key)
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("value", "key", "match"),
    [
        (b"", None, "empty"),
        (b"\x01\x02\x03garbage", b"not-a-schema", "cannot find the schema"),
        (b"\x02\x00\x00", b'{"type":"record","name":"x","fields":[{"name":"a","type":"long"}]}',
         "bytes left"),
        (b"\x02", b'{"type": "record", "name": "x"', "bad schema"),
    ],
)
def test_bad_payloads_raise_typed_errors(value: bytes, key: bytes | None, match: str) -> None:
    with pytest.raises(DecodeError, match=match) as info:
        Decoder().decode(value, key, topic="t", partition=3, offset=17)
    err = info.value
    assert (err.topic, err.partition, err.offset) == ("t", 3, 17)
    assert err.raw_value == value
    assert "partition 3 offset 17" in str(err)


def test_truncated_payload_raises() -> None:
    schema, record = read_sample(SAMPLE_FILES[0])
    payload = schemaless(schema, record)
    with pytest.raises(DecodeError, match="undecodable"):
        fink_client.decode(payload[: len(payload) // 2], json.dumps(schema).encode())


def test_bad_user_schema_file(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="not found"):
        Decoder(schema=str(tmp_path / "missing.avsc"))


def test_confluent_framing_resolves_bundled_ids_by_default() -> None:
    raw = SAMPLES / "ztf" / "raw" / "ZTF19acihgng.avro"
    schema, record = read_sample(raw)
    schema_id = schemas.id_of("ztf_alert_3.3")
    value = b"\x00" + struct.pack(">I", schema_id) + schemaless(schema, record)
    assert_alerts_equal(Decoder().decode(value), record)


def test_topic_schema_wins_over_confluent_guess() -> None:
    """A schemaless value that happens to start with byte 0 is not taken as Confluent."""
    schema, record = read_sample(SAMPLE_FILES[0])
    payload = schemaless(schema, record)
    decoder = Decoder(topic_schemas={"ftransfer_ztf_x": schema})
    assert_alerts_equal(decoder.decode(payload, topic="ftransfer_ztf_x"), record)
