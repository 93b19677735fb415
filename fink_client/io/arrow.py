"""Avro schema -> Arrow schema, and alert dicts <-> Arrow record batches, without inference.

Arrow types come from the Avro schema only, never from values, so that a batch where
a column is all null still has that column's real type and every file written with
one Avro schema has the same Arrow schema (pyarrow.dataset reads them as one table).

Mapping:

=====================  ===========================================================
Avro                   Arrow
=====================  ===========================================================
null                   null
boolean                bool
int / long             int32 / int64 (never float, even when nulls are present)
float / double         float32 / float64 (NaN stays NaN, distinct from null)
bytes / fixed          binary / fixed_size_binary(size)
string / enum          string
record                 struct (field order kept)
array                  list
map                    map<string, value>
[null, T] / [T, null]  T, nullable
timestamp-millis/us    timestamp[ms|us, UTC]
date / time-*          date32 / time32[ms] / time64[us]
decimal                decimal128(precision, scale)
=====================  ===========================================================

Non-null Avro types give non-nullable Arrow fields. Unions of several non-null types
have no Parquet equivalent and raise :class:`SchemaError` naming the field.
pyarrow accepts a null (or a missing key) in a non-nullable field, and Parquet would
then store zeros in its place: :func:`to_record_batch` refuses such alerts instead
(:func:`null_violation` finds them, vectorised).
The Avro schema JSON is kept in the Arrow schema metadata under ``avro.schema``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fink_client.avroschema import PRIMITIVES, NamedTypes, full_name, namespace_of
from fink_client.errors import SchemaError

AVRO_SCHEMA_KEY = b"avro.schema"

_PRIMITIVES: dict[str, pa.DataType] = dict(zip(PRIMITIVES, (
    pa.null(), pa.bool_(), pa.int32(), pa.int64(), pa.float32(), pa.float64(), pa.binary(),
    pa.string(),
), strict=True))

_LOGICAL: dict[tuple[str, str], pa.DataType] = {
    ("long", "timestamp-micros"): pa.timestamp("us", tz="UTC"),
    ("long", "timestamp-millis"): pa.timestamp("ms", tz="UTC"),
    ("int", "date"): pa.date32(),
    ("int", "time-millis"): pa.time32("ms"),
    ("long", "time-micros"): pa.time64("us"),
}


class _Converter:
    """Walks one Avro schema, remembering named types for later references."""

    def __init__(self) -> None:
        self.named: NamedTypes[pa.DataType] = NamedTypes()

    def convert(
        self, schema: Any, path: str, namespace: str | None = None
    ) -> tuple[pa.DataType, bool]:
        """(Arrow type, nullable) of an Avro type found at ``path``."""
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return _PRIMITIVES[schema], schema == "null"
            named = self.named.get(schema, namespace)
            if named is not None:
                return named, False
            raise SchemaError(f"unknown Avro type {schema!r}", field=path or None)
        if isinstance(schema, list):
            branches = [b for b in schema if b != "null"]
            if len(branches) == 1:
                typ, _ = self.convert(branches[0], path, namespace)
                return typ, True
            if not branches:
                return pa.null(), True
            raise SchemaError(
                "unions of several non-null types have no Parquet/Arrow equivalent",
                field=path or None,
            )
        kind = schema["type"]
        logical = schema.get("logicalType")
        if isinstance(kind, (list, dict)):
            return self.convert(kind, path, namespace)
        if logical == "decimal" and kind in ("bytes", "fixed"):
            return pa.decimal128(int(schema["precision"]), int(schema.get("scale", 0))), False
        if isinstance(kind, str) and (kind, logical) in _LOGICAL:
            return _LOGICAL[(kind, logical)], False
        if kind == "record" or kind == "error":
            name = full_name(schema, namespace)
            ns = namespace_of(name)
            fields = []
            for f in schema["fields"]:
                sub = f"{path}.{f['name']}" if path else f["name"]
                typ, nullable = self.convert(f["type"], sub, ns)
                fields.append(pa.field(f["name"], typ, nullable=nullable))
            typ = pa.struct(fields)
            self.named.add(name, typ)  # after its fields: a recursive record is unknown
            return typ, False
        if kind == "enum":
            self.named.define(schema, namespace, pa.string())
            return pa.string(), False
        if kind == "fixed":
            typ = pa.binary(int(schema["size"]))
            self.named.define(schema, namespace, typ)
            return typ, False
        if kind == "array":
            item, nullable = self.convert(schema["items"], f"{path}[]", namespace)
            return pa.list_(pa.field("element", item, nullable=nullable)), False
        if kind == "map":
            value, nullable = self.convert(schema["values"], f"{path}{{}}", namespace)
            return pa.map_(pa.string(), pa.field("value", value, nullable=nullable)), False
        if kind in _PRIMITIVES:
            return _PRIMITIVES[kind], kind == "null"
        raise SchemaError(f"unsupported Avro type {kind!r}", field=path or None)


def avro_to_arrow_schema(avro_schema: Mapping[str, Any]) -> pa.Schema:
    """Arrow schema of records written with the Avro record schema ``avro_schema``.

    The Avro JSON is stored in the schema metadata (key ``avro.schema``) so that a
    reader can recover it.
    """
    if not isinstance(avro_schema, Mapping) or avro_schema.get("type") != "record":
        raise SchemaError("the top level of an alert schema must be an Avro record")
    struct, _ = _Converter().convert(avro_schema, "")
    fields = [struct.field(i) for i in range(struct.num_fields)]
    text = json.dumps(avro_schema, separators=(",", ":"))
    return pa.schema(fields, metadata={AVRO_SCHEMA_KEY: text.encode()})


def _children(typ: pa.DataType) -> list[pa.Field]:
    """The fields nested in ``typ``: a struct's, a list's item, a map's key and value."""
    if pa.types.is_struct(typ):
        return [typ.field(i) for i in range(typ.num_fields)]
    if pa.types.is_list(typ):
        return [typ.value_field]
    if pa.types.is_map(typ):
        return [typ.key_field, typ.item_field]
    return []


def _map_leaves(typ: pa.DataType, leaf: Callable[[pa.DataType], pa.DataType]) -> pa.DataType:
    """``typ`` with ``leaf`` applied to every type that nests no other, names and
    nullability kept."""
    kids = [f.with_type(_map_leaves(f.type, leaf)) for f in _children(typ)]
    if pa.types.is_struct(typ):
        return pa.struct(kids)
    if pa.types.is_list(typ):
        return pa.list_(kids[0])
    if pa.types.is_map(typ):
        return pa.map_(kids[0], kids[1])
    return leaf(typ)


def _retyped(schema: pa.Schema, old: pa.DataType, new: pa.DataType) -> pa.Schema:
    def swap(typ: pa.DataType) -> pa.DataType:
        return new if typ == old else typ
    return pa.schema([f.with_type(_map_leaves(f.type, swap)) for f in schema],
                     metadata=schema.metadata)


def with_binary_views(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every ``binary`` column (Avro ``bytes``: cutouts), at any depth,
    as ``binary_view``: the layout of batches whose bytes point into the messages
    themselves rather than into a copy (:class:`fink_client.arrowbatch.BatchDecoder`
    with ``views=True``). Parquet stores both alike (``BYTE_ARRAY``)."""
    return _retyped(schema, pa.binary(), pa.binary_view())


def without_binary_views(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every ``binary_view`` column as ``binary`` again (the inverse of
    :func:`with_binary_views`)."""
    return _retyped(schema, pa.binary_view(), pa.binary())


def _has_view(typ: pa.DataType) -> bool:
    return typ == pa.binary_view() or any(_has_view(f.type) for f in _children(typ))


def has_binary_views(schema: pa.Schema) -> bool:
    """True when a column of ``schema``, at any depth, is ``binary_view``."""
    return any(_has_view(f.type) for f in schema)


def _array_bytes(arr: pa.Array) -> int:
    typ = arr.type
    if typ == pa.binary_view():  # the lengths in the views; not the payloads they share
        views = np.frombuffer(arr.buffers()[1], dtype=np.int32).reshape(-1, 4)
        return int(views[arr.offset:arr.offset + len(arr), 0].sum()) + 16 * len(arr)
    if not _has_view(typ):
        return int(arr.nbytes)
    if pa.types.is_struct(typ):
        return sum(_array_bytes(child) for child in arr.flatten()) + len(arr) // 8 + 1
    return _array_bytes(arr.flatten()) + 4 * len(arr) + len(arr) // 8 + 1  # list, map


def as_binary(table: pa.Table) -> pa.Table:
    """``table`` with its ``binary_view`` columns copied as ``binary`` (``table`` itself
    when it has none): what Arrow kernels without views support (``take``)."""
    if not has_binary_views(table.schema):
        return table
    return table.cast(without_binary_views(table.schema))


def is_run(rows: Sequence[int] | np.ndarray) -> bool:
    """True when ``rows`` are consecutive row numbers (``n, n+1, ...``): a slice."""
    return bool(np.all(np.diff(rows) == 1))


def take_rows(table: pa.Table, rows: pa.Array) -> pa.Table:
    """``table.take(rows)`` (``rows``: an int64 array without nulls), also for
    ``binary_view`` columns, which Arrow's ``take`` does not handle: consecutive rows are
    a slice (no copy), other rows are taken from the table with its bytes columns copied
    as ``binary``."""
    # read from the buffer: to_numpy() and Python scalars import pandas (~0.2 s)
    index = np.frombuffer(rows.buffers()[1], dtype=np.int64)[rows.offset:rows.offset + len(rows)]
    if len(index) == 0:
        return table.slice(0, 0)
    if is_run(index):
        return table.slice(int(index[0]), len(index))
    return as_binary(table).take(rows)


def data_bytes(table: pa.Table) -> int:
    """Bytes of the values of ``table``, as ``Table.nbytes`` but counting a
    ``binary_view`` column by the values it holds rather than the whole buffers it
    points into (shared by every column and row of a batch of views)."""
    if not has_binary_views(table.schema):
        return int(table.nbytes)
    return sum(_array_bytes(chunk) for column in table.columns for chunk in column.chunks)


def avro_schema_of(arrow_schema: pa.Schema) -> dict[str, Any] | None:
    """The Avro schema stored in an Arrow schema's metadata, or ``None``."""
    meta = arrow_schema.metadata or {}
    text = meta.get(AVRO_SCHEMA_KEY)
    return json.loads(text) if text else None


def _has_required(field: pa.Field) -> bool:
    """True when ``field`` or anything below it is non-nullable."""
    if not field.nullable:
        return True
    typ = field.type
    if pa.types.is_struct(typ):
        return any(_has_required(typ.field(i)) for i in range(typ.num_fields))
    if pa.types.is_map(typ):
        return _has_required(typ.item_field)
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        return _has_required(typ.value_field)
    return False


def _violation(arr: pa.Array, field: pa.Field, path: str,
               rows: pa.Array) -> tuple[int, str] | None:
    """First ``(row, path)`` where ``arr`` (one element per ``rows`` entry) breaks the
    nullability of ``field`` or of a field below it."""
    if not _has_required(field):
        return None
    if arr.null_count:
        valid = arr.is_valid()
        if not field.nullable:
            return rows[pc.index(valid, False).as_py()].as_py(), path
        arr, rows = arr.filter(valid), rows.filter(valid)  # below a null, nothing counts
    typ = field.type
    if pa.types.is_struct(typ):
        for i, child in enumerate(arr.flatten()):
            sub = typ.field(i)
            bad = _violation(child, sub, f"{path}.{sub.name}", rows)
            if bad is not None:
                return bad
    elif pa.types.is_map(typ) or pa.types.is_list(typ) or pa.types.is_large_list(typ):
        # No nulls left here: the items of slot i are child[offsets[i]:offsets[i + 1]].
        offsets = arr.offsets.to_numpy()
        child = arr.items if pa.types.is_map(typ) else arr.values
        items = child.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
        parents = rows.take(pa.array(np.repeat(np.arange(len(arr)), np.diff(offsets))))
        sub = typ.item_field if pa.types.is_map(typ) else typ.value_field
        return _violation(items, sub, f"{path}{{}}" if pa.types.is_map(typ) else f"{path}[]",
                          parents)
    return None


def null_violation(batch: pa.RecordBatch) -> tuple[int, str] | None:
    """``(row, field path)`` of the first null or missing value in a field that the
    schema declares non-nullable (e.g. ``candidate`` of a ZTF alert), or ``None``."""
    rows = pa.array(range(batch.num_rows), type=pa.int64())
    for i, field in enumerate(batch.schema):
        bad = _violation(batch.column(i), field, field.name, rows)
        if bad is not None:
            return bad
    return None


def to_record_batch(alerts: Iterable[Mapping[str, Any]], schema: pa.Schema) -> pa.RecordBatch:
    """Record batch of ``alerts`` typed by ``schema`` (from :func:`avro_to_arrow_schema`).

    Values are converted to the declared types; nothing is inferred and nothing is
    invented. Raises :class:`SchemaError` naming the problem (and, for a null or
    missing value where the schema allows none, the field and the alert's row) when an
    alert does not fit its schema.
    """
    rows = alerts if isinstance(alerts, list) else list(alerts)
    try:
        batch = pa.RecordBatch.from_pylist(rows, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
        raise SchemaError(f"alert does not match its Arrow schema: {exc}") from exc
    bad = null_violation(batch)
    if bad is not None:
        row, path = bad
        raise SchemaError(f"alert #{row} of the batch has no value for non-nullable field "
                          f"{path!r} (null or missing)", field=path)
    return batch


def to_alerts(data: pa.Table | pa.RecordBatch) -> list[dict[str, Any]]:
    """Alert dicts back from Arrow data (maps become dicts again)."""
    return data.to_pylist(maps_as_pydicts="strict")
