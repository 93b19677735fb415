"""Avro pass-through (fink_client.io.avro_passthrough): raw values -> container files.

The files must read back with fastavro to exactly the alerts, equal field by field to
what the fastavro-based AvroWriter writes (byte for byte with null and snappy), for
every codec, every bundled sample set and synthetic alerts of every bundled schema; a
corrupt value raises a typed error naming its index and offset and nothing is written.
The validator must refuse exactly what the decoder refuses.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import fastavro
import pytest

from fink_client import codec, fastdecode, schemas, synth
from fink_client.errors import AlertError, ConfigError, DecodeError
from fink_client.io import AvroWriter
from fink_client.io.avro_passthrough import (
    InvalidValueError,
    RawAvroWriter,
    container_bytes,
    prepare,
)
from fink_client.testing import assert_alerts_equal
from tests.helpers import schemaless

SAMPLES = Path(codec.__file__).resolve().parent / "data" / "samples"
SAMPLE_DIRS = sorted(p for p in SAMPLES.glob("*/*") if p.is_dir())
CODECS = ["null", "deflate", "snappy", "zstandard"]


def sample_set(folder: Path) -> tuple[dict, list[dict], list[bytes]]:
    """Writer schema, records and their schemaless encodings of a sample folder."""
    schema, records = None, []
    for path in sorted(folder.glob("*.avro")):
        with open(path, "rb") as fh:
            reader = fastavro.reader(fh)
            schema = reader.writer_schema
            records.extend(reader)
    parsed = codec.parse_schema(schema)
    return schema, records, [schemaless(parsed, r) for r in records]


def read_back(path: Path) -> list[dict]:
    with open(path, "rb") as fh:
        return list(fastavro.reader(fh))


@pytest.mark.parametrize("codec_name", CODECS)
@pytest.mark.parametrize("folder", SAMPLE_DIRS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_samples_equal_fastavro_writer(tmp_path: Path, folder: Path, codec_name: str) -> None:
    schema, records, values = sample_set(folder)
    offsets = list(range(40, 40 + len(values)))
    [ours] = RawAvroWriter(tmp_path / "raw", codec=codec_name).write(
        values, schema, topic="fink_sample", partition=3, offsets=offsets)
    [theirs] = AvroWriter(tmp_path / "dicts", schema, codec=codec_name).write(
        records, topic="fink_sample", partition=3, offsets=offsets)
    assert ours.name == theirs.name == "fink_sample-p3-o000000000040-" \
        f"{offsets[-1]:012d}.avro"
    assert_alerts_equal(read_back(ours), records)
    assert_alerts_equal(read_back(ours), read_back(theirs))
    with open(ours, "rb") as a, open(theirs, "rb") as b:
        ra, rb = fastavro.reader(a), fastavro.reader(b)
        assert ra.writer_schema == rb.writer_schema
        assert ra.metadata == rb.metadata
    if codec_name in ("null", "snappy"):
        assert ours.read_bytes() == theirs.read_bytes()


@pytest.mark.parametrize("codec_name", CODECS)
@pytest.mark.parametrize("name", sorted(schemas.bundled()))
def test_synthetic_every_bundled_schema(tmp_path: Path, name: str, codec_name: str) -> None:
    schema = schemas.load(name)
    parsed = codec.parse_schema(schema)
    records = list(synth.generate(schema, 12, seed=5))
    values = [schemaless(parsed, r) for r in records]
    # a small sync interval: several alerts per block for some, one for others
    writer = RawAvroWriter(tmp_path, codec=codec_name, sync_interval=30_000)
    [path] = writer.write(values, schema, topic="t", partition=0, offsets=range(12))
    assert_alerts_equal(read_back(path), records)
    with open(path, "rb") as fh:
        assert fastavro.reader(fh).metadata["avro.codec"] == codec_name


def test_small_records_share_blocks(tmp_path: Path) -> None:
    schema = {"type": "record", "name": "r", "fields": [{"name": "x", "type": "long"}]}
    values = [schemaless(codec.parse_schema(schema), {"x": i}) for i in range(1000)]
    [path] = RawAvroWriter(tmp_path, codec="deflate").write(
        values, schema, topic="t", partition=0, offsets=range(1000))
    with open(path, "rb") as fh:
        blocks = list(fastavro.block_reader(fh))
    assert len(blocks) == 1 and blocks[0].num_records == 1000
    assert [r["x"] for r in read_back(path)] == list(range(1000))


@pytest.mark.skipif(not fastdecode.available(), reason="C fast path not built")
def test_validator_is_the_c_walk() -> None:
    schema = schemas.load(sorted(schemas.bundled())[0])
    raw = prepare(schema)
    assert raw.validate.__qualname__ == "Reader.validate"


def test_without_the_c_extension_fastavro_validates(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """No C decoder (not built, or a schema it cannot compile): the pass-through still
    copies the bytes, validated by a fastavro decode, and still refuses a corrupt value."""
    monkeypatch.setattr(codec, "fast_reader", lambda parsed: None)
    schema, records, values = sample_set(SAMPLES / "ztf" / "fink")
    raw = prepare(schema)
    assert raw.validate.__qualname__ != "Reader.validate"
    with pytest.raises(InvalidValueError):
        raw.check([values[0][:-3]])
    paths = RawAvroWriter(tmp_path).write(values, schema, topic="t", partition=0,
                                          offsets=list(range(len(values))))
    assert_alerts_equal([a for p in paths for a in read_back(p)], records)


@pytest.mark.parametrize("damage", ["truncate", "trailing", "flip"])
def test_corrupt_value_is_refused_and_nothing_written(tmp_path: Path, damage: str) -> None:
    schema, _records, values = sample_set(SAMPLES / "ztf" / "fink")
    good = values[1]
    if damage == "truncate":
        bad = good[: len(good) // 2]
    elif damage == "trailing":
        bad = good + b"\x00"
    else:  # the first bytes are the objectId string length: make it point past the end
        bad = b"\xfe\xff\xff\x0f" + good[1:]
    batch = [values[0], bad, values[2]]
    writer = RawAvroWriter(tmp_path)
    with pytest.raises(InvalidValueError) as info:
        writer.write(batch, schema, topic="fink_t", partition=1, offsets=[7, 8, 9])
    err = info.value
    assert isinstance(err, DecodeError) and isinstance(err, AlertError)
    assert (err.index, err.offset, err.topic, err.partition) == (1, 8, "fink_t", 1)
    assert err.raw_value == bad
    assert "value #1 (offset 8)" in str(err) and "offset 8" in err.location()
    assert list(tmp_path.iterdir()) == []  # no data file, no temporary file


def test_validator_refuses_exactly_what_the_decoder_refuses() -> None:
    """Fuzzed payloads: validate() raises if and only if the compiled reader raises."""
    rng = random.Random(12)
    outcomes = set()
    for folder in SAMPLE_DIRS:
        schema, _, values = sample_set(folder)
        parsed = codec.parse_schema(schema)
        reader, raw = codec.compile_reader(parsed), prepare(schema)
        for value in values[:2]:
            for _ in range(150):
                buf = bytearray(value)
                for _ in range(rng.randint(1, 4)):
                    buf[rng.randrange(min(len(buf), 400))] = rng.randrange(256)
                if rng.random() < 0.3:
                    buf = buf[: rng.randrange(len(buf))]
                payload = bytes(buf)
                try:
                    reader(payload)
                    decoded = True
                except Exception:
                    decoded = False
                try:
                    raw.validate(payload)
                    valid = True
                except Exception:
                    valid = False
                assert decoded == valid, f"{folder.name}: decode {decoded}, validate {valid}"
                outcomes.add(valid)
    assert outcomes == {True, False}  # the fuzzing hit both accepted and refused payloads


def test_invalid_utf8_is_refused() -> None:
    schema = {"type": "record", "name": "r", "fields": [
        {"name": "s", "type": "string"}, {"name": "m", "type": {"type": "map", "values": "int"}}]}
    raw = prepare(schema)
    raw.validate(b"\x04\xc3\xa9\x02\x02k\x02\x00")  # "é", {"k": 1}
    for bad in (b"\x04\xc3\x28\x00", b"\x06\xed\xa0\x80\x00",  # broken, surrogate
                b"\x04\xc0\x80\x00", b"\x00\x02\x02\xff\x02\x00"):  # overlong, bad key
        with pytest.raises(ValueError):
            codec.compile_reader(codec.parse_schema(schema))(bad)
        with pytest.raises(ValueError):
            raw.validate(bad)


def test_rerun_keeps_identical_file_and_never_overwrites(tmp_path: Path) -> None:
    schema, records, values = sample_set(SAMPLES / "lsst" / "fink-7.4")
    writer = RawAvroWriter(tmp_path, codec="snappy")
    [first] = writer.write(values, schema, topic="t", partition=0, offsets=range(len(values)))
    stat = first.stat()
    [again] = RawAvroWriter(tmp_path, codec="snappy").write(
        values, schema, topic="t", partition=0, offsets=range(len(values)))
    assert again == first and first.stat().st_mtime_ns == stat.st_mtime_ns
    # the same alerts written by the dict writer are recognised too (null codec)
    [dicts] = AvroWriter(tmp_path / "d", schema).write(
        records, topic="t", partition=0, offsets=range(len(values)))
    [raw] = RawAvroWriter(tmp_path / "d").write(
        values, schema, topic="t", partition=0, offsets=range(len(values)))
    assert raw == dicts
    # other alerts under the same offsets go beside, never over
    other = list(reversed(values))
    [beside] = writer.write(other, schema, topic="t", partition=0, offsets=range(len(values)))
    assert beside.name.endswith("~2.avro")
    assert_alerts_equal(read_back(first), records)


def test_rotation_and_options(tmp_path: Path) -> None:
    schema, _records, values = sample_set(SAMPLES / "ztf" / "fink")
    paths = RawAvroWriter(tmp_path, max_records=3).write(
        values, schema, topic="t", partition=0, offsets=range(len(values)))
    assert [len(read_back(p)) for p in paths] == [3, len(values) - 3]
    paths = RawAvroWriter(tmp_path / "b", max_bytes=1).write(
        values, schema, topic="t", partition=0, offsets=range(len(values)))
    assert len(paths) == len(values)
    with pytest.raises(ConfigError, match="unknown Avro codec"):
        RawAvroWriter(tmp_path, codec="lzo")
    with pytest.raises(ConfigError, match="one offset per value"):
        RawAvroWriter(tmp_path).write(values, schema, topic="t", partition=0, offsets=[1])


def test_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The atomic rule: a failure while writing (disk full) leaves neither file nor temp."""
    schema, _, values = sample_set(SAMPLES / "ztf" / "fink")

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        RawAvroWriter(tmp_path).write(values, schema, topic="t", partition=0,
                                      offsets=range(len(values)))
    assert list(tmp_path.iterdir()) == []


def test_container_bytes_decodes_with_wire_decoder() -> None:
    """A one-alert pass-through container is a valid container message too."""
    from fink_client.wire import Decoder

    schema, records, values = sample_set(SAMPLES / "ztf" / "fink")
    for codec_name in CODECS:
        blob = container_bytes(prepare(schema, codec_name), values[:1], sync_marker=b"s" * 16)
        assert_alerts_equal(Decoder().decode(blob), records[0])
