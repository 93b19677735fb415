"""Readers promise record dicts: an Avro schema whose top level is not a record is a typed
error naming the file, never a non-dict handed out as an alert."""

from __future__ import annotations

import io
import json
from pathlib import Path

import fastavro
import pytest

from fink_client import codec, decode, schemas
from fink_client.errors import DecodeError, FileFormatError, SchemaError
from fink_client.io import AlertReader
from fink_client.replay import read_records


@pytest.fixture
def longs_file(tmp_path: Path) -> Path:
    """A valid Avro container whose records are plain longs."""
    path = tmp_path / "longs.avro"
    with open(path, "wb") as fh:
        fastavro.writer(fh, "long", [1, 2, 3])
    return path


def test_reader_refuses_a_non_record_file(longs_file: Path) -> None:
    with pytest.raises(FileFormatError) as err:
        list(AlertReader(longs_file))
    assert err.value.path == str(longs_file)
    with pytest.raises(FileFormatError, match="not a record schema"):
        AlertReader(longs_file).file_schema(longs_file)


def test_replay_refuses_a_non_record_file(longs_file: Path) -> None:
    with pytest.raises(FileFormatError, match="not a record schema") as err:
        list(read_records([longs_file]))
    assert err.value.path == str(longs_file)


def test_schema_file_must_be_a_record(tmp_path: Path, longs_file: Path) -> None:
    avsc = tmp_path / "string.avsc"
    avsc.write_text(json.dumps("string"))
    for path in (avsc, longs_file):
        with pytest.raises(SchemaError, match="not an Avro record schema") as err:
            schemas.load_file(path)
        assert err.value.path == str(path)


def test_decoding_with_a_non_record_schema_is_a_decode_error() -> None:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema("long"), 7)
    with pytest.raises(ValueError, match="expected an Avro record"):
        codec.fastavro_reader(codec.parse_schema('"long"'))(buf.getvalue())
    container = io.BytesIO()
    fastavro.writer(container, "long", [7])
    with pytest.raises(DecodeError, match="expected an Avro record"):
        decode(container.getvalue())
