"""Batches whose bytes columns are ``binary_view`` into the message values
(``BatchDecoder(schema, views=True)``, used by the Parquet writers of ``finkctl stream
--save`` and ``finkctl transfer``): the same values as the copying decoder, the values
kept alive exactly as long as the batch, and the very same Parquet files.
"""

from __future__ import annotations

import gc
import io
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fink_client import schemas
from fink_client.arrowbatch import BatchDecoder
from fink_client.io import arrow
from fink_client.io.writers import parquet_column_options, write_parquet
from tests.helpers import needs_c, same, sample_groups, synthetic_payloads

GROUPS = sample_groups() + [
    (name, schemas.load(name), synthetic_payloads(schemas.load(name), 40, seed=3))
    for name in ("avro_schema_ftransfer_ztf_2026-03-23", "avro_schema_ftransfer_lsst_2026-03-18")]
IDS = [g[0] for g in GROUPS]


def _plain(batch: pa.RecordBatch | pa.Table) -> pa.Table:
    table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
    return table.cast(arrow.without_binary_views(table.schema))


@needs_c
@pytest.mark.parametrize("name,schema_json,payloads", GROUPS, ids=IDS)
def test_views_hold_the_values_the_copy_holds(name: str, schema_json: dict,
                                              payloads: list[bytes]) -> None:
    copy, views = BatchDecoder(schema_json), BatchDecoder(schema_json, views=True)
    assert views.in_c
    ref, got = copy.decode(payloads), views.decode(payloads)
    got.validate(full=True)
    assert got.schema.equals(arrow.with_binary_views(ref.schema), check_metadata=True)
    assert arrow.has_binary_views(got.schema)  # every alert schema has cutout bytes
    same(got.to_pylist(), ref.to_pylist())
    assert _plain(got).schema.equals(ref.schema, check_metadata=True)
    # counted by their values, not by the whole payloads every view column points into
    assert abs(arrow.data_bytes(pa.Table.from_batches([got]))
               - pa.Table.from_batches([ref]).nbytes) <= 16 * 3 * len(payloads)


@needs_c
@pytest.mark.parametrize("name,schema_json,payloads", GROUPS, ids=IDS)
def test_the_parquet_file_is_byte_for_byte_the_copys(name: str, schema_json: dict,
                                                     payloads: list[bytes]) -> None:
    ref = pa.Table.from_batches([BatchDecoder(schema_json).decode(payloads)])
    got = pa.Table.from_batches([BatchDecoder(schema_json, views=True).decode(payloads)])
    options = parquet_column_options(got.schema, "snappy")
    assert options == parquet_column_options(ref.schema, "snappy")
    files = []
    for table in (ref, got):
        sink = io.BytesIO()
        write_parquet(table, sink, options)
        files.append(sink.getvalue())
    assert files[0] == files[1]
    back = pq.read_table(pa.BufferReader(files[1]))
    assert not arrow.has_binary_views(back.schema)  # readers get binary, as from any file
    same(back.to_pylist(), ref.to_pylist())


@needs_c
def test_the_batch_keeps_its_values_alive_and_then_lets_them_go() -> None:
    _name, schema_json, payloads = GROUPS[-1]  # 40 synthetic LSST alerts
    values = [bytes(bytearray(p)) for p in payloads]  # objects of this test only
    before = [sys.getrefcount(v) for v in values]
    batch = BatchDecoder(schema_json, views=True).decode(values)
    assert all(sys.getrefcount(v) > b for v, b in zip(values, before, strict=True))
    table = pa.Table.from_batches([batch]).slice(1)
    expected = BatchDecoder(schema_json).decode(payloads).to_pylist()[1:]
    del batch, values  # the sliced table alone now holds them
    gc.collect()
    same(table.to_pylist(), expected)
    values = [bytes(bytearray(p)) for p in payloads]
    before = [sys.getrefcount(v) for v in values]
    batch = BatchDecoder(schema_json, views=True).decode(values)
    table = pa.Table.from_batches([batch]).slice(3, 5)
    del batch, table
    gc.collect()
    assert [sys.getrefcount(v) for v in values] == before


@needs_c
def test_values_that_are_not_bytes_are_copied_once_not_pointed_into() -> None:
    _name, schema_json, payloads = GROUPS[0]
    mutable = [bytearray(p) if i % 2 else memoryview(bytearray(p))
               for i, p in enumerate(payloads)]
    batch = BatchDecoder(schema_json, views=True).decode(mutable)
    expected = BatchDecoder(schema_json).decode(payloads).to_pylist()
    for m in mutable:
        m[:] = bytes(len(m))  # overwritten after the decode: the batch must not change
    same(batch.to_pylist(), expected)


@needs_c
def test_a_bad_value_among_views_is_reported_and_the_good_ones_kept() -> None:
    _name, schema_json, payloads = GROUPS[0]
    values = [*payloads, payloads[0][:10], *payloads]
    table, errors = BatchDecoder(schema_json, views=True).decode_valid(values)
    assert [e.index for e in errors] == [len(payloads)]
    ref = BatchDecoder(schema_json).decode(list(payloads) * 2)
    same(table.to_pylist(), ref.to_pylist())
    assert arrow.has_binary_views(table.schema)


def test_schemas_without_bytes_are_unchanged_and_views_round_trip() -> None:
    base = pa.schema([pa.field("a", pa.int64()), pa.field("s", pa.struct([
        pa.field("b", pa.binary()), pa.field("l", pa.list_(pa.binary()))])),
        pa.field("m", pa.map_(pa.string(), pa.binary()))], metadata={b"k": b"v"})
    views = arrow.with_binary_views(base)
    assert arrow.has_binary_views(views) and not arrow.has_binary_views(base)
    assert views.field("s").type.field("b").type == pa.binary_view()
    assert views.field("m").type.item_type == pa.binary_view()
    assert arrow.without_binary_views(views).equals(base, check_metadata=True)
    plain = pa.schema([pa.field("a", pa.int64())])
    assert arrow.with_binary_views(plain).equals(plain)


@needs_c
def test_rows_are_taken_from_views_as_a_slice_or_as_a_copy() -> None:
    _name, schema_json, payloads = GROUPS[-1]
    table, _ = BatchDecoder(schema_json, views=True).decode_valid(payloads)
    ref = BatchDecoder(schema_json).decode(payloads).to_pylist()
    for rows in ([3, 4, 5, 6], [0], [1, 5, 9, 2], [], list(range(len(payloads)))):
        got = arrow.take_rows(table, pa.array(rows, type=pa.int64()))
        same(got.to_pylist(), [ref[i] for i in rows])
        consecutive = rows == list(range(rows[0], rows[0] + len(rows))) if rows else True
        assert arrow.has_binary_views(got.schema) == consecutive, rows  # a slice: no copy
