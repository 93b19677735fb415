"""Container messages (value = a whole Avro Object Container, as raw ZTF streams send):
decoded by the compiled fast path to exactly fastavro's dicts, header schema parsed once
per distinct header, every codec, corrupt framing refused with a typed error.
"""

from __future__ import annotations

import io
from pathlib import Path

import fastavro
import pytest

from fink_client import codec, wire
from fink_client.errors import DecodeError
from fink_client.testing import assert_alerts_equal

SAMPLES = Path(codec.__file__).resolve().parent / "data" / "samples"
RAW_ZTF = sorted((SAMPLES / "ztf").glob("raw*/*.avro"))


def fastavro_records(value: bytes) -> list[dict]:
    return list(fastavro.reader(io.BytesIO(value)))


def rewrite(value: bytes, codec_name: str, sync: bytes | None = None) -> bytes:
    reader = fastavro.reader(io.BytesIO(value))
    buf = io.BytesIO()
    fastavro.writer(buf, reader.writer_schema, list(reader), codec=codec_name,
                    sync_marker=sync or b"")
    return buf.getvalue()


def test_raw_ztf_samples_exist() -> None:
    assert len(RAW_ZTF) >= 4


@pytest.mark.parametrize("path", RAW_ZTF, ids=lambda p: p.name)
def test_every_raw_ztf_sample_equals_fastavro(path: Path) -> None:
    value = path.read_bytes()
    assert value.startswith(wire.CONTAINER_MAGIC)
    [ref] = fastavro_records(value)
    assert_alerts_equal(wire.Decoder().decode(value), ref)


@pytest.mark.parametrize("codec_name", ["deflate", "snappy", "zstandard"])
def test_compressed_containers(codec_name: str) -> None:
    decoder = wire.Decoder()
    for path in RAW_ZTF:
        value = rewrite(path.read_bytes(), codec_name)
        [ref] = fastavro_records(value)
        assert_alerts_equal(decoder.decode(value), ref)


def test_schema_parsed_once_per_header(monkeypatch: pytest.MonkeyPatch) -> None:
    """Containers differ by their sync marker; the schema is compiled once all the same."""
    compiled = []
    real = wire.Decoder._compile

    def counting(schema_json: object) -> codec.Reader:
        compiled.append(1)
        return real(schema_json)

    monkeypatch.setattr(wire.Decoder, "_compile", staticmethod(counting))
    decoder = wire.Decoder()
    value = RAW_ZTF[0].read_bytes()
    variants = [rewrite(value, "null", bytes([i]) * 16) for i in range(5)]
    assert len({v[-16:] for v in variants}) == 5
    for v in variants:
        assert_alerts_equal(decoder.decode(v), fastavro_records(value)[0])
    assert len(compiled) == 1
    decoder.decode(rewrite(value, "deflate"))  # another codec: another header
    assert len(compiled) == 2


def corruptions() -> dict[str, bytes]:
    value = RAW_ZTF[0].read_bytes()
    snappy = rewrite(value, "snappy")
    reader = fastavro.reader(io.BytesIO(value))
    two = io.BytesIO()
    fastavro.writer(two, reader.writer_schema, list(reader) * 2)
    empty = io.BytesIO()
    fastavro.writer(empty, reader.writer_schema, [])
    return {
        "truncated": value[: len(value) - 100],
        "bad sync": value[:-1] + bytes([value[-1] ^ 1]),
        "bad snappy crc": snappy[:-17] + bytes([snappy[-17] ^ 1]) + snappy[-16:],
        "two records": two.getvalue(),
        "no record": empty.getvalue(),
        "truncated header": value[:200],
        "bad schema": value.replace(b'"type"', b'"tipe"', 1),
    }


@pytest.mark.parametrize("name", list(corruptions()))
def test_corrupt_containers_raise_decode_error(name: str) -> None:
    value = corruptions()[name]
    with pytest.raises(DecodeError) as info:
        wire.Decoder().decode(value, topic="ztf_raw", partition=0, offset=5)
    assert info.value.offset == 5 and info.value.raw_value == value
