"""The C fast path of ``fink_client.codec`` gives exactly fastavro's dicts (NaN-aware).

Checked on every bundled schema, every sample alert and seeded synthetic alerts; both
paths must raise on truncated payloads and on trailing bytes; schemas the fast path
refuses must fall back to fastavro.
"""

from __future__ import annotations

import datetime
import decimal
import io
import math
import random
import struct
import uuid
from typing import Any

import fastavro
import pytest

from fink_client import codec, fastdecode, schemas
from tests.helpers import needs_c, same, sample_groups, schemaless, synthetic_payloads

# -- seeded random records with edge values (extreme ints, -0.0, inf, NaN, unicode) --

class _Gen:
    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.named: dict[str, Any] = {}

    def value(self, schema: Any, depth: int = 0) -> Any:
        r = self.rnd
        if isinstance(schema, list):
            return self.value(r.choice(schema), depth)
        if isinstance(schema, str):
            if schema in self.named:
                return self.value(self.named[schema], depth)
            schema = {"type": schema}
        t = schema["type"]
        if isinstance(t, (dict, list)):
            return self.value(t, depth)
        if t in ("record", "error", "enum", "fixed") and "name" in schema:
            self.named.setdefault(schema["name"], schema)
        lt = schema.get("logicalType")
        if lt in ("timestamp-micros", "timestamp-millis"):
            return r.randint(0, 2**40)
        if t == "null":
            return None
        if t == "boolean":
            return r.random() < 0.5
        if t == "int":
            return r.choice([0, -1, 1, 2**31 - 1, -(2**31), r.randint(-1000, 1000)])
        if t == "long":
            return r.choice([0, -1, 2**63 - 1, -(2**63), r.randint(-(2**40), 2**40)])
        if t in ("float", "double"):
            v = r.choice([0.0, -0.0, math.nan, math.inf, -math.inf, r.uniform(-1e6, 1e6)])
            if t == "float" and math.isfinite(v):
                v = struct.unpack("<f", struct.pack("<f", v))[0]
            return v
        if t == "bytes":
            return r.randbytes(r.choice([0, 1, 17, 3000]))
        if t == "string":
            return "".join(r.choice("abcXYZ09_é€😀") for _ in range(r.randint(0, 12)))
        if t == "array":
            n = 0 if depth > 3 else r.randint(0, 4)
            return [self.value(schema["items"], depth + 1) for _ in range(n)]
        if t == "map":
            n = 0 if depth > 3 else r.randint(0, 3)
            return {f"k{i}": self.value(schema["values"], depth + 1) for i in range(n)}
        if t == "enum":
            return r.choice(schema["symbols"])
        if t == "fixed":
            return r.randbytes(schema["size"])
        if t in ("record", "error"):
            return {f["name"]: self.value(f["type"], depth + 1) for f in schema["fields"]}
        return self.value(self.named[t], depth)


def sample_payloads() -> list[tuple[str, Any, bytes]]:
    """``(file name, parsed schema, payload)`` of every bundled sample alert."""
    out = []
    for name, schema_json, payloads in sample_groups():
        parsed = codec.parse_schema(schema_json)
        out.extend((name, parsed, payload) for payload in payloads)
    return out


SAMPLE_PAYLOADS = sample_payloads()


def check_equal(parsed: Any, payload: bytes) -> None:
    fast = codec.compile_reader(parsed)
    assert fast.__class__.__name__ == "Reader", "expected the C fast path"
    same(fast(payload), codec.fastavro_reader(parsed)(payload))
    same(fast(memoryview(payload)), codec.fastavro_reader(parsed)(payload))


@needs_c
@pytest.mark.parametrize("name,parsed,payload", SAMPLE_PAYLOADS,
                         ids=[p[0] for p in SAMPLE_PAYLOADS])
def test_sample_alerts_identical(name: str, parsed: Any, payload: bytes) -> None:
    check_equal(parsed, payload)


@needs_c
@pytest.mark.parametrize("schema_name", sorted(schemas.bundled()))
def test_synthetic_alerts_identical(schema_name: str) -> None:
    schema_json = schemas.load(schema_name)
    parsed = codec.parse_schema(schema_json)
    for seed in range(3):
        for payload in synthetic_payloads(schema_json, 5, seed):
            check_equal(parsed, payload)


EDGE_SCHEMA = {
    "type": "record", "name": "edge", "namespace": "t",
    "fields": [
        {"name": "e", "type": {"type": "enum", "name": "colour", "symbols": ["R", "G", "B"]}},
        {"name": "e2", "type": ["null", "colour"]},
        {"name": "f", "type": {"type": "fixed", "name": "four", "size": 4}},
        {"name": "m", "type": {"type": "map", "values": ["null", "double", "string"]}},
        {"name": "a", "type": {"type": "array", "items": {"type": "array", "items": "int"}}},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "tm", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]},
        {"name": "d", "type": {"type": "int", "logicalType": "date"}},
        {"name": "u", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "dec", "type": {"type": "bytes", "logicalType": "decimal", "precision": 6,
                                 "scale": 2}},
        {"name": "odd", "type": {"type": "string", "logicalType": "no-such-type"}},
        {"name": "b", "type": "boolean"},
        {"name": "nul", "type": "null"},
        {"name": "sub", "type": {"type": "record", "name": "sub", "fields": [
            {"name": "x", "type": "float"}]}},
        {"name": "sub2", "type": ["null", "sub"]},
    ],
}


@needs_c
def test_edge_types_identical() -> None:
    parsed = codec.parse_schema(EDGE_SCHEMA)
    rec = {
        "e": "G", "e2": "B", "f": b"\x00\x01\x02\x03",
        "m": {"a": 1.5, "b": None, "é": "x", "n": math.nan}, "a": [[1, 2], [], [-3]],
        "ts": datetime.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc),
        "tm": None, "d": datetime.date(2020, 2, 29), "u": str(uuid.UUID(int=12345)),
        "dec": decimal.Decimal("1234.56"), "odd": "plain", "b": True, "nul": None,
        "sub": {"x": 0.25}, "sub2": {"x": math.nan},
    }
    check_equal(parsed, schemaless(parsed, rec))
    for seed in range(20):
        record = _Gen(seed).value(EDGE_SCHEMA)
        record.update(ts=rec["ts"], d=rec["d"], u=rec["u"], dec=rec["dec"])
        check_equal(parsed, schemaless(parsed, record))


def test_multi_block_and_negative_count_arrays() -> None:
    """Writers may split arrays in blocks, with a negative count and a byte size."""
    parsed = codec.parse_schema({"type": "record", "name": "r", "fields": [
        {"name": "a", "type": {"type": "array", "items": "long"}},
        {"name": "m", "type": {"type": "map", "values": "long"}}]})
    # a: block of 2 (count -2, size 2), then block of 1, then end; m: block of 1, end
    payload = bytes([3, 2, 2, 4, 2, 6, 0, 2, 2]) + b"k" + bytes([8, 0])
    ref = codec.fastavro_reader(parsed)(payload)
    assert ref == {"a": [1, 2, 3], "m": {"k": 4}}
    same(codec.compile_reader(parsed)(payload), ref)


# -- strictness ---------------------------------------------------------------------

READERS = {
    "fastavro": codec.fastavro_reader,
    "fast": lambda parsed: fastdecode.build_reader(parsed, codec.TrailingBytesError),
}


@pytest.mark.parametrize("which", sorted(READERS))
def test_truncated_and_trailing_raise(which: str) -> None:
    if which == "fast" and not fastdecode.available():
        pytest.skip("C extension not built")
    _, parsed, payload = SAMPLE_PAYLOADS[0]
    read = READERS[which](parsed)
    read(payload)
    cuts = sorted({1, 2, 10, len(payload) // 2, len(payload) - 1000, len(payload) - 1})
    for cut in cuts:
        with pytest.raises((EOFError, ValueError, IndexError)):  # fastavro: IndexError too
            read(payload[:cut])
    with pytest.raises(codec.TrailingBytesError):
        read(payload + b"\x00")
    with pytest.raises((EOFError, ValueError, IndexError)):  # fastavro: IndexError too
        read(b"")


@needs_c
def test_truncation_everywhere_small_record() -> None:
    """Every prefix of a small record raises in both paths."""
    parsed = codec.parse_schema(EDGE_SCHEMA)
    rec = _Gen(1).value(EDGE_SCHEMA)
    rec.update(u="00000000-0000-0000-0000-000000000000", dec=decimal.Decimal("0.01"))
    payload = schemaless(parsed, rec)
    fast, ref = READERS["fast"](parsed), READERS["fastavro"](parsed)
    for cut in range(len(payload)):
        for read in (fast, ref):
            with pytest.raises(Exception):  # noqa: B017 - any error, as long as it raises
                read(payload[:cut])


@needs_c
def test_bad_data_raises() -> None:
    parsed = codec.parse_schema({"type": "record", "name": "r", "fields": [
        {"name": "u", "type": ["null", "string"]}]})
    fast = codec.compile_reader(parsed)
    with pytest.raises(ValueError):
        fast(b"\x04")  # union branch 2 of 2
    with pytest.raises(UnicodeDecodeError):
        fast(b"\x02\x02\xff")  # invalid UTF-8, as fastavro
    with pytest.raises(ValueError):
        fast(b"\x02\x01")  # negative length
    with pytest.raises(ValueError):
        fast(b"\x02" + b"\xff" * 11)  # overlong varint
    arrays = codec.compile_reader(codec.parse_schema({"type": "record", "name": "r", "fields": [
        {"name": "a", "type": {"type": "array", "items": "double"}}]}))
    with pytest.raises(EOFError):  # a count that cannot fit is refused before allocating
        arrays(b"\xfe\xff\xff\xff\x0f")


# -- fallback -----------------------------------------------------------------------

RECURSIVE = {"type": "record", "name": "node", "fields": [
    {"name": "value", "type": "long"},
    {"name": "next", "type": ["null", "node"]}]}


def test_fallback_for_refused_schema() -> None:
    parsed = codec.parse_schema(RECURSIVE)
    assert codec.fast_reader(parsed) is None
    read = codec.compile_reader(parsed)
    assert read.__class__.__name__ != "Reader"
    payload = schemaless(parsed, {"value": 1, "next": {"value": 2, "next": None}})
    assert read(payload) == {"value": 1, "next": {"value": 2, "next": None}}
    with pytest.raises(codec.TrailingBytesError):
        read(payload + b"\x00")


def test_fallback_when_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINK_CLIENT_NO_FASTPATH", "1")
    parsed = SAMPLE_PAYLOADS[0][1]
    read = codec.compile_reader(parsed)
    assert read.__class__.__name__ != "Reader"
    read(SAMPLE_PAYLOADS[0][2])


def test_fallback_without_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the C extension failed to build, compile_reader still works (fastavro)."""
    monkeypatch.setattr(fastdecode, "_CReader", None)
    _, parsed, payload = SAMPLE_PAYLOADS[0]
    read = codec.compile_reader(parsed)
    assert read.__class__.__name__ != "Reader"
    same(read(payload), fastavro.schemaless_reader(io.BytesIO(payload), parsed, None))
