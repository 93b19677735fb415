"""Avro -> Arrow in C (``decode_batch``) gives the dict path's RecordBatch exactly.

The reference is the dict path: decode each value to a dict, then
``io.arrow.to_record_batch`` with ``io.arrow.avro_to_arrow_schema``. Compared on every
bundled schema (seeded synthetic ZTF/LSST alerts), every sample alert and an edge-type
schema; schemas equal with metadata, values equal NaN-aware with identical Python
types, C batches valid (``validate(full=True)``). Bad values raise BatchDecodeError
with their index in both paths.
"""

from __future__ import annotations

import copy
import datetime
import decimal
import importlib
import math
from typing import Any

import fastavro
import pyarrow as pa
import pytest

import fink_client
from fink_client import arrowbatch, codec, fastdecode, schemas
from fink_client.arrowbatch import BatchDecodeError, BatchDecoder
from fink_client.errors import DecodeError, SchemaError
from fink_client.io import arrow
from tests.helpers import (
    c_buildable,
    needs_c,
    same,
    sample_groups,
    schemaless,
    synthetic_payloads,
)
from tests.unit.test_codec_equality import EDGE_SCHEMA, _Gen


def test_arrow_builder_is_in_the_built_extension() -> None:
    """The equality tests below must not pass on the fallback alone."""
    if not c_buildable():
        pytest.skip("no C compiler on this machine: the dict path is the only path")
    module = importlib.import_module("fink_client._fastdecode")
    assert hasattr(module.Reader, "decode_arrow")
    assert BatchDecoder(SMALL).in_c


def assert_same_batch(got: pa.RecordBatch, ref: pa.RecordBatch) -> None:
    got.validate(full=True)
    assert got.schema.equals(ref.schema, check_metadata=True), f"{got.schema}\n!=\n{ref.schema}"
    assert got.num_rows == ref.num_rows
    same(got.to_pylist(), ref.to_pylist())
    # null patterns, column by column (to_pylist would hide a null-vs-placeholder mix-up
    # only if values matched; this checks the validity bitmaps directly)
    for i in range(got.num_columns):
        assert got.column(i).null_count == ref.column(i).null_count, got.schema.field(i).name


def check(schema_json: dict, payloads: list[bytes]) -> pa.RecordBatch:
    decoder = BatchDecoder(schema_json)
    assert decoder.in_c, "expected the C Arrow builder"
    got = decoder.decode(payloads)
    assert_same_batch(got, decoder.decode_via_dicts(payloads))
    # and the reference is what io.arrow gives from the dicts of codec
    read = codec.compile_reader(codec.parse_schema(schema_json))
    arrow_schema = arrow.avro_to_arrow_schema(schema_json)
    ref = arrow.to_record_batch([read(p) for p in payloads], arrow_schema)
    assert_same_batch(got, ref)
    return got


SAMPLE_GROUPS = sample_groups()


@needs_c
@pytest.mark.parametrize("name,schema_json,payloads", SAMPLE_GROUPS,
                         ids=[g[0] for g in SAMPLE_GROUPS])
def test_sample_alerts_equal_dict_path(name: str, schema_json: dict,
                                       payloads: list[bytes]) -> None:
    got = check(schema_json, payloads)
    assert got.num_rows == len(payloads)


@needs_c
def test_samples_of_one_schema_in_one_batch() -> None:
    """All the samples of a schema together (many rows, list offsets across rows)."""
    by_schema: dict[str, tuple[dict, list[bytes]]] = {}
    for _name, schema_json, payloads in SAMPLE_GROUPS:
        key = fastavro.schema.to_parsing_canonical_form(schema_json)
        by_schema.setdefault(key, (schema_json, []))[1].extend(payloads)
    assert len(by_schema) >= 3  # ZTF raw, Fink ZTF, Fink LSST
    for schema_json, payloads in by_schema.values():
        check(schema_json, payloads)


@needs_c
@pytest.mark.parametrize("schema_name", sorted(schemas.bundled()))
def test_synthetic_alerts_equal_dict_path(schema_name: str) -> None:
    """Seeded synthetic alerts (fink_client.synth) of every bundled ZTF and LSST schema."""
    schema_json = schemas.load(schema_name)
    for seed in (0, 1):
        check(schema_json, synthetic_payloads(schema_json, 25, seed))


# -- edge types -----------------------------------------------------------------------

EDGE = copy.deepcopy(EDGE_SCHEMA)
# uuid: fastavro gives uuid.UUID objects, which io.arrow's conversion refuses; C gives
# the string. Left out of the equality check (the C path is a superset there).
# A map of ["null", "double", "string"] has no Arrow type: ["null", "double"] here.
EDGE["fields"] = [f for f in EDGE["fields"] if f["name"] != "u"] + [
    {"name": "tmi", "type": {"type": "int", "logicalType": "time-millis"}},
    {"name": "tmu", "type": ["null", {"type": "long", "logicalType": "time-micros"}]},
    {"name": "fdec", "type": {"type": "fixed", "name": "f16", "size": 16,
                              "logicalType": "decimal", "precision": 38, "scale": 5}},
    {"name": "recs", "type": {"type": "array", "items": ["null", "sub"]}},
    {"name": "mapa", "type": ["null", {"type": "map", "values": {"type": "array",
                                                                 "items": "string"}}]},
    {"name": "only_null", "type": ["null"]},
    {"name": "nulls", "type": {"type": "array", "items": "null"}},
    {"name": "bytes_n", "type": ["bytes", "null"]},
]


for _f in EDGE["fields"]:
    if _f["name"] == "m":
        _f["type"] = {"type": "map", "values": ["null", "double"]}


def edge_records(n: int) -> list[dict]:
    out = []
    for seed in range(n):
        rec = _Gen(seed).value(EDGE)
        gen = _Gen(seed + 1000).rnd
        rec["ts"] = datetime.datetime(2024, 1, 2, 3, 4, 5, seed, tzinfo=datetime.timezone.utc)
        if seed % 3 == 0:
            rec["tm"] = datetime.datetime(1999, 12, 31, 23, 59, 59, 999000,
                                          tzinfo=datetime.timezone.utc)
        rec["d"] = datetime.date(2020, 2, 29) + datetime.timedelta(days=seed - 5)
        rec["dec"] = decimal.Decimal(gen.randint(-999999, 999999)).scaleb(-2)
        rec["fdec"] = decimal.Decimal(gen.randint(-(10**37), 10**37)).scaleb(-5)
        rec["tmi"] = datetime.time(gen.randint(0, 23), 59, 58, 123000)
        rec["tmu"] = None if seed % 2 else datetime.time(1, 2, 3, gen.randint(0, 999999))
        out.append(rec)
    return out


@needs_c
def test_edge_types_equal_dict_path() -> None:
    """Enums, fixed, maps with null/NaN values, nested arrays, nullable structs, all
    temporal logical types, decimals (bytes and fixed), null-only unions."""
    parsed = codec.parse_schema(EDGE)
    records = edge_records(40)
    records[0]["m"] = {"a": 1.5, "b": None, "é": -0.0, "n": math.nan}
    records[0]["sub2"] = None
    records[1]["sub2"] = {"x": math.nan}
    got = check(EDGE, [schemaless(parsed, r) for r in records])
    assert got.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert got.schema.field("fdec").type == pa.decimal128(38, 5)
    assert got.column("sub2").null_count >= 1
    assert math.isnan(got.column("sub2").to_pylist()[1]["x"])  # NaN kept, not null


@needs_c
def test_int64_extremes_exact_and_empty_batch() -> None:
    schema = {"type": "record", "name": "r", "fields": [
        {"name": "l", "type": "long"}, {"name": "i", "type": ["null", "int"]}]}
    parsed = codec.parse_schema(schema)
    rows = [{"l": 2**63 - 1, "i": 2**31 - 1}, {"l": -(2**63), "i": -(2**31)},
            {"l": 2**53 + 1, "i": None}]
    got = check(schema, [schemaless(parsed, r) for r in rows])
    assert got.column("l").to_pylist() == [2**63 - 1, -(2**63), 2**53 + 1]
    empty = fink_client.decode_batch([], schema)
    assert empty.num_rows == 0
    assert empty.schema.equals(arrow.avro_to_arrow_schema(schema), check_metadata=True)


def test_public_decode_batch_accepts_json_text_and_dict() -> None:
    schema_json = schemas.load("distribution_schema_fink_ztf_2.7_3.10.1")
    payloads = synthetic_payloads(schema_json, 3, 5)
    import json

    a = fink_client.decode_batch(payloads, schema_json)
    b = fink_client.decode_batch([memoryview(p) for p in payloads], json.dumps(schema_json))
    assert_same_batch(a, b)
    assert a.num_rows == 3


# -- errors ---------------------------------------------------------------------------

SMALL = {"type": "record", "name": "r", "fields": [
    {"name": "s", "type": ["null", "string"]},
    {"name": "i", "type": "int"},
    {"name": "a", "type": {"type": "array", "items": "double"}},
    {"name": "dec", "type": {"type": "bytes", "logicalType": "decimal", "precision": 4,
                             "scale": 1}},
]}


def _small(parsed: Any, **over: Any) -> bytes:
    rec = {"s": "ok", "i": 1, "a": [1.0, math.nan], "dec": decimal.Decimal("1.5")}
    rec.update(over)
    return schemaless(parsed, rec)


BAD_VALUES = {
    "truncated": lambda good: good[:-3],
    "trailing": lambda good: good + b"\x00",
    "empty": lambda good: b"",
    "union branch": lambda good: b"\x04" + good[1:],
    "invalid utf-8": lambda good: b"\x02\x04\xff\xfe" + good[4:],
    "huge array count": lambda good: good[:5] + b"\xfe\xff\xff\xff\x0f",
    "int out of range": lambda good: good[:4] + b"\x80\x80\x80\x80\x20" + good[5:],
    "decimal over precision": lambda good: good[:-3] + b"\x04\x7f\xff",
}


@pytest.mark.parametrize("path", ["c", "dicts"])
@pytest.mark.parametrize("what", sorted(BAD_VALUES))
def test_bad_value_raises_batch_decode_error_with_index(path: str, what: str) -> None:
    if path == "c":
        assert fastdecode.available() or not c_buildable()
    parsed = codec.parse_schema(SMALL)
    good = _small(parsed)
    assert good[:4] == b"\x02\x04ok"
    bad = BAD_VALUES[what](good)
    values = [good, good, bad, good]
    decoder = BatchDecoder(SMALL)
    decode = decoder.decode if path == "c" else decoder.decode_via_dicts
    decode([good, good])  # the good ones decode
    with pytest.raises(BatchDecodeError) as info:
        decode(values)
    err = info.value
    assert isinstance(err, DecodeError)
    assert err.index == 2
    assert err.raw_value == bad
    assert "batch index 2" in str(err)
    # the builder is left clean: the next batch is right
    assert_same_batch(decode([good]), decoder.decode_via_dicts([good]))


@pytest.mark.parametrize("path", ["c", "dicts"])
def test_decode_valid_keeps_good_rows_and_reports_each_bad_one(
        path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if path == "dicts":
        monkeypatch.setenv("FINK_CLIENT_NO_FASTPATH", "1")
    parsed = codec.parse_schema(SMALL)
    goods = [_small(parsed, i=i) for i in range(6)]
    values = [goods[0], b"", goods[1], goods[2], goods[3][:-1], b"\x04", goods[4], goods[5]]
    decoder = BatchDecoder(SMALL)
    assert decoder.in_c == (path == "c" and fastdecode.available())
    table, errors = decoder.decode_valid(values)
    assert table.column("i").to_pylist() == [0, 1, 2, 4, 5]
    assert [e.index for e in errors] == [1, 4, 5]
    assert [e.raw_value for e in errors] == [values[1], values[4], values[5]]
    assert "batch index 4" in str(errors[1])
    clean, none = decoder.decode_valid(goods)
    assert none == [] and clean.num_rows == 6
    empty, none = decoder.decode_valid([])
    assert none == [] and empty.num_rows == 0 and empty.schema == decoder.arrow_schema


def test_schema_without_arrow_equivalent_is_a_schema_error() -> None:
    with pytest.raises(SchemaError):
        fink_client.decode_batch([b""], {"type": "record", "name": "r", "fields": [
            {"name": "x", "type": ["null", "int", "string"]}]})


def test_batch_too_large_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """32-bit Arrow offsets: a column over 2 GiB is refused, never wrapped (simulated)."""
    decoder = BatchDecoder(SMALL)
    assert decoder.in_c or not c_buildable()
    if not decoder.in_c:
        return

    class Huge:
        def decode_arrow(self, payloads: Any) -> Any:
            raise OverflowError("column 's' holds more than 2 GiB")

    monkeypatch.setattr(decoder._c, "_reader", Huge())
    with pytest.raises(arrowbatch.BatchTooLargeError):
        decoder.decode([b""])


# -- fallback -------------------------------------------------------------------------

def test_fallback_without_extension_gives_the_same_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    schema_json = schemas.load("fink_lsst_alert_7.4")
    payloads = synthetic_payloads(schema_json, 5, 3)
    monkeypatch.setattr(fastdecode, "_CReader", None)
    fallback = BatchDecoder(schema_json)
    assert not fallback.in_c
    got = fallback.decode(payloads)
    monkeypatch.undo()
    assert_same_batch(got, BatchDecoder(schema_json).decode(payloads))


def test_fallback_when_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINK_CLIENT_NO_FASTPATH", "1")
    assert not BatchDecoder(SMALL).in_c
    parsed = codec.parse_schema(SMALL)
    assert BatchDecoder(SMALL).decode([_small(parsed)]).num_rows == 1


def test_c_schema_mismatch_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the C builder's exported schema ever differs from io.arrow's, dicts are used."""
    if not fastdecode.available():
        assert not c_buildable()
        return
    parsed = codec.parse_schema(SMALL)
    other = pa.schema([pa.field("s", pa.large_string())])
    with pytest.raises(fastdecode.Unsupported):
        fastdecode.build_arrow_reader(parsed, other, codec.TrailingBytesError)


@needs_c
def test_c_path_keeps_what_dicts_cannot_hold() -> None:
    """uuid strings stay strings; a timestamp beyond datetime's range stays its integer."""
    schema = {"type": "record", "name": "r", "fields": [
        {"name": "u", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}}]}
    # schemaless: string "1234" (len 4), then long 2**62 (zigzag varint)
    z = 2**63
    varint = bytearray()
    while z > 0x7F:
        varint.append((z & 0x7F) | 0x80)
        z >>= 7
    varint.append(z)
    payload = b"\x08" + b"1234" + bytes(varint)
    decoder = BatchDecoder(schema)
    assert decoder.in_c
    got = decoder.decode([payload])
    assert got.column("u").to_pylist() == ["1234"]
    assert got.column("ts").cast(pa.int64()).to_pylist() == [2**62]
    with pytest.raises(BatchDecodeError):
        decoder.decode_via_dicts([payload])
