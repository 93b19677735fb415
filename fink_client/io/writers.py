"""Alert writers: Avro container, Parquet and JSON-lines files, written atomically.

Use::

    from fink_client.io import open_writer

    with open_writer("parquet", "out/", schema) as writer:   # "avro" | "parquet" | "json"
        paths = writer.write(alerts, topic=msg_topic, partition=p, offsets=[...])
        # every path is durable (flushed, fsynced, renamed) when write() returns:
        # commit the Kafka offsets now.

``schema`` is the Avro schema of the alerts (dict, JSON text or .avsc/.avro path); it
may also be given per call (``write(alerts, schema=...)``) when the stream changes
schema. Avro and Parquet need one; JSON lines use it only to write ``_schema-*.avsc``
beside the data so that :class:`~fink_client.io.AlertReader` restores the exact values.

Files: one per ``write()`` call, split further when ``max_records`` or ``max_bytes``
(estimated from the Avro encoding of the alerts) is exceeded. Names are unique and
deterministic:

- with ``topic``/``partition``/``offsets`` (one offset per alert, one partition per
  call): ``<topic>-p<partition>-o<first>-<last>.<ext>`` (offsets zero-padded to 12
  digits so that names sort in offset order);
- otherwise, one alert: ``<objectId>_<alertId>.<ext>`` (ZTF ``objectId_candid``; the
  stem of :func:`fink_client.survey.file_stem`, as the alert's PNG);
  several: ``<objectId>_<alertId>+<n-1>-<digest>.<ext>`` where the digest covers every
  alert id (or the full content when the alerts have no survey id).

Alerts that do not match the schema (a null or missing value where the schema allows
none, a value of the wrong type) raise :class:`SchemaError` naming the field and the
alert (topic/partition/offset when given): nothing is written for that call, no value
is invented (Parquet would otherwise store zeros for a null non-nullable record).
:meth:`AlertWriter.check` tells which alerts of a batch are the bad ones.

Reruns never overwrite a different alert: when the target name exists, the existing
file is read back and compared with the batch (JSON: byte for byte; Avro, Parquet:
NaN-aware record equality). Identical -> the write is skipped and the existing path
returned. Different -> the batch goes to ``<name>~2.<ext>`` (then ``~3``...), so
nothing is lost and nothing is overwritten.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, cast

import fastavro

from fink_client import codec, survey
from fink_client.avroschema import PRIMITIVES, NamedTypes, namespace_of
from fink_client.compare import alerts_equal
from fink_client.errors import ConfigError, SchemaError
from fink_client.io import arrow as arrow_io
from fink_client.io import jsonlines
from fink_client.io.atomic import atomic_write, clean_stale_temps
from fink_client.io.direct import DirectFile

FORMATS = ("avro", "parquet", "json")
_ENCODE_ERRORS = (TypeError, ValueError, AttributeError, KeyError, OverflowError)
_AVRO_TYPES = dict(zip(PRIMITIVES, (  # what fastavro accepts for each primitive
    lambda v: v is None,
    lambda v: isinstance(v, bool),
    lambda v: isinstance(v, int),
    lambda v: isinstance(v, int),
    lambda v: isinstance(v, (int, float)),
    lambda v: isinstance(v, (int, float)),
    lambda v: isinstance(v, (bytes, bytearray)),
    lambda v: isinstance(v, str),
), strict=True))


class _Mismatch(Exception):
    """Alert ``row`` of a chunk does not fit the schema (internal to the writers)."""

    def __init__(self, row: int, field: str | None, why: str) -> None:
        super().__init__(why)
        self.row, self.field, self.why = row, field, why


def first_mismatch(value: Any, schema: Any, path: str = "",
                   named: NamedTypes[Any] | None = None,
                   namespace: str | None = None) -> tuple[str, str] | None:
    """``(field path, reason)`` of the first place where ``value`` does not fit the Avro
    ``schema`` (JSON form), or ``None``. Used to name the field of a rejected alert."""
    named = NamedTypes() if named is None else named
    where = path or "(the alert)"
    if isinstance(schema, str):
        if schema in _AVRO_TYPES:
            if _AVRO_TYPES[schema](value):
                return None
            what = "null or missing" if value is None else f"a {type(value).__name__}"
            return where, f"is {what}, the schema wants {schema}"
        full = named.find(schema, namespace)
        if full is None:
            return None  # unknown name: fastavro will say
        schema, namespace = named[full], namespace_of(full)
    if isinstance(schema, list):
        errors = []
        for branch in schema:
            bad = first_mismatch(value, branch, path, named, namespace)
            if bad is None:
                return None
            errors.append(bad)
        non_null = [e for b, e in zip(schema, errors, strict=True) if b != "null"]
        return (non_null or errors)[0]
    kind = schema.get("type")
    inner = namespace  # where the fields of a record are resolved
    if "name" in schema:
        inner = namespace_of(named.define(schema, namespace, schema))
    if schema.get("logicalType") and value is not None:
        return None  # datetime, Decimal...: fastavro converts them
    if isinstance(kind, (list, dict)):
        return first_mismatch(value, kind, path, named, namespace)
    if kind in ("record", "error"):
        if not isinstance(value, Mapping):
            what = "null or missing" if value is None else f"a {type(value).__name__}"
            return where, f"is {what}, the schema wants a record"
        for f in schema["fields"]:
            sub = f"{path}.{f['name']}" if path else f["name"]
            if f["name"] not in value and "default" not in f:
                return sub, "is missing and has no default"
            bad = first_mismatch(value.get(f["name"], f.get("default")), f["type"], sub, named,
                                 inner)
            if bad is not None:
                return bad
        return None
    if kind == "array":
        if not isinstance(value, (list, tuple)):
            return where, f"is a {type(value).__name__}, the schema wants an array"
        for i, item in enumerate(value):
            bad = first_mismatch(item, schema["items"], f"{path}[{i}]", named, namespace)
            if bad is not None:
                return bad
        return None
    if kind == "map":
        if not isinstance(value, Mapping):
            return where, f"is a {type(value).__name__}, the schema wants a map"
        for k, item in value.items():
            bad = first_mismatch(item, schema["values"], f"{path}{{{k}}}", named, namespace)
            if bad is not None:
                return bad
        return None
    if kind == "enum":
        return None if value in schema["symbols"] else (where, f"{value!r} is not a symbol")
    if kind == "fixed":
        ok = isinstance(value, (bytes, bytearray)) and len(value) == schema["size"]
        return None if ok else (where, f"is not {schema['size']} bytes")
    return first_mismatch(value, kind, path, named, namespace)


def _alert_label(alert: Any) -> str:
    """``alert <objectId>/<alert id>`` as far as the (possibly broken) alert tells."""
    if isinstance(alert, Mapping) and "objectId" in alert and "candid" in alert:
        return f"alert {alert['objectId']}/{alert['candid']}"  # ZTF, even without candidate
    try:
        return f"alert {survey.object_id(alert)}/{survey.alert_id(alert)}"
    except (KeyError, TypeError, AttributeError, SchemaError):
        return "alert"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", text)


def _load_schema(schema: Any) -> dict[str, Any] | None:
    if schema is None:
        return None
    from fink_client.wire import load_schema

    return load_schema(schema)


class AlertWriter:
    """Common machinery of the writers: chunking, naming, rerun checks, atomic files."""

    format = ""
    suffix = ""

    def __init__(
        self,
        folder: str | Path,
        schema: Any = None,
        *,
        max_records: int | None = None,
        max_bytes: int | None = None,
    ) -> None:
        if max_records is not None and max_records < 1:
            raise ConfigError("max_records must be at least 1", field="max_records")
        if max_bytes is not None and max_bytes < 1:
            raise ConfigError("max_bytes must be at least 1", field="max_bytes")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(self.folder)  # leftovers of writers killed mid-file
        self.schema = _load_schema(schema)
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.files_written = 0
        self.alerts_written = 0
        self._parsed: dict[str, Any] = {}

    # -- public -------------------------------------------------------------------------
    def write(
        self,
        alerts: Iterable[Mapping[str, Any]],
        *,
        topic: str | None = None,
        partition: int | None = None,
        offsets: Sequence[int] | None = None,
        schema: Any = None,
    ) -> list[Path]:
        """Write ``alerts`` to one or more new files; return their paths once durable.

        ``offsets`` (one per alert) with ``topic`` and ``partition`` name the files after
        the Kafka offsets; ``schema`` overrides the writer's schema for this batch.
        Raises :class:`SchemaError` (field, alert, offset) for an alert that does not
        fit the schema; the files of earlier chunks of this call stay written.
        """
        rows = list(alerts)
        if not rows:
            return []
        schema_json = _load_schema(schema) if schema is not None else self.schema
        if offsets is not None:
            offsets = list(offsets)
            if len(offsets) != len(rows):
                raise ConfigError(
                    f"{len(offsets)} offsets for {len(rows)} alerts: give one offset per alert",
                    field="offsets",
                )
            if topic is None:
                raise ConfigError("offsets need a topic to name the files", field="topic")
        paths = []
        for start, stop in self._chunks(rows, schema_json):
            chunk = rows[start:stop]
            chunk_offsets = offsets[start:stop] if offsets is not None else None
            name = self._name(chunk, topic, partition, chunk_offsets, schema_json)
            try:
                paths.append(self._write_unique(name, chunk, schema_json))
            except _Mismatch as bad:
                raise self._schema_error(chunk[bad.row], bad, topic, partition,
                                         chunk_offsets[bad.row] if chunk_offsets else None,
                                         ) from None
        return paths

    def check(self, alerts: Sequence[Mapping[str, Any]],
              schema: Any = None) -> list[tuple[int, SchemaError]]:
        """``(index, error)`` of each alert of ``alerts`` that this writer cannot write
        with ``schema`` (default: the writer's); slow, one alert at a time."""
        schema_json = _load_schema(schema) if schema is not None else self.schema
        out = []
        for i, alert in enumerate(alerts):
            try:
                self._check_one(alert, schema_json)
            except _Mismatch as bad:
                out.append((i, self._schema_error(alert, bad, None, None, None)))
        return out

    def _check_one(self, alert: Mapping[str, Any], schema_json: dict[str, Any] | None) -> None:
        """Raise :class:`_Mismatch` (row 0) if ``alert`` cannot be written."""

    def _schema_error(self, alert: Any, bad: _Mismatch, topic: str | None,
                      partition: int | None, offset: int | None) -> SchemaError:
        field = bad.field
        return SchemaError(
            f"{_alert_label(alert)} does not match its schema, cannot write it as "
            f"{self.format}: {'field ' + repr(field) + ' ' if field else ''}{bad.why}",
            field=field, topic=topic, partition=partition, offset=offset,
        )

    def _mismatch(self, row: int, alert: Any, schema_json: dict[str, Any] | None,
                  exc: BaseException | None = None) -> _Mismatch:
        found = first_mismatch(alert, schema_json) if schema_json is not None else None
        if found is None:
            return _Mismatch(row, None, f"{type(exc).__name__}: {exc}" if exc else "bad value")
        return _Mismatch(row, *found)

    def close(self) -> None:
        """Nothing is buffered between calls (each write is durable); kept for symmetry."""

    def __enter__(self) -> AlertWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- chunking and naming ------------------------------------------------------------
    def _parsed_schema(self, schema_json: dict[str, Any]) -> Any:
        key = json.dumps(schema_json, sort_keys=True)
        parsed = self._parsed.get(key)
        if parsed is None:
            parsed = self._parsed[key] = codec.parse_schema(schema_json)
        return parsed

    def _size(self, alert: Mapping[str, Any], schema_json: dict[str, Any] | None) -> int:
        """Estimated bytes of one alert on disk (its Avro encoding)."""
        if schema_json is None:
            return len(jsonlines.encode_alert(alert))
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, self._parsed_schema(schema_json), dict(alert))
        return buf.tell()

    def _chunks(
        self, rows: list[Mapping[str, Any]], schema_json: dict[str, Any] | None
    ) -> list[tuple[int, int]]:
        return self._bounds(len(rows), lambda i: self._size(rows[i], schema_json))

    def _bounds(self, n: int, size_of: Callable[[int], int]) -> list[tuple[int, int]]:
        """``(start, stop)`` of each file of ``n`` alerts, the ``i``-th being ``size_of(i)``
        bytes on disk: the rotation rule of ``max_records`` and ``max_bytes``."""
        bounds = []
        start, size = 0, 0
        for i in range(n):
            full = self.max_records is not None and i - start >= self.max_records
            if self.max_bytes is not None:
                item = size_of(i)
                if i > start and size + item > self.max_bytes:
                    full = True
                if full:
                    bounds.append((start, i))
                    start, size = i, 0
                size += item
            elif full:
                bounds.append((start, i))
                start = i
        bounds.append((start, n))
        return bounds

    def _name(
        self,
        chunk: list[Mapping[str, Any]],
        topic: str | None,
        partition: int | None,
        offsets: list[int] | None,
        schema_json: dict[str, Any] | None,
    ) -> str:
        if topic is not None and offsets is not None:
            return _offsets_name(topic, partition, offsets)
        try:
            ids = [(survey.object_id(a), survey.alert_id(a)) for a in chunk]
        except (KeyError, TypeError, SchemaError):
            ids = None
        if ids is None:
            digest = hashlib.sha256()
            for alert in chunk:
                digest.update(jsonlines.encode_alert(alert))
            return f"alerts-{len(chunk)}-{digest.hexdigest()[:16]}"
        base = survey.file_stem(chunk[0])  # the alert's PNG has the same stem
        if len(chunk) == 1:
            return base
        tag = hashlib.sha256(repr(ids).encode()).hexdigest()[:12]
        return f"{base}+{len(chunk) - 1}-{tag}"

    # -- files --------------------------------------------------------------------------
    def _write_unique(
        self, name: str, chunk: list[Mapping[str, Any]], schema_json: dict[str, Any] | None
    ) -> Path:
        self._prepare(schema_json)
        for attempt in range(1, 10_000):
            stem = name if attempt == 1 else f"{name}~{attempt}"
            path = self.folder / f"{stem}{self.suffix}"
            if path.exists():
                if self._same(path, chunk, schema_json):
                    return path
                continue
            try:  # a data file, fsynced at once: past the page cache (io.direct)
                with atomic_write(path, direct=True) as fh:
                    self._write_file(fh, chunk, schema_json, stem)
            except FileExistsError:  # appeared meanwhile (another writer): check it again
                if self._same(path, chunk, schema_json):
                    return path
                continue
            self.files_written += 1
            self.alerts_written += len(chunk)
            return path
        raise FileExistsError(f"too many different files named {name}* in {self.folder}")

    def _same(
        self, path: Path, chunk: list[Mapping[str, Any]], schema_json: dict[str, Any] | None
    ) -> bool:
        """True when ``path`` already holds exactly these alerts."""
        from fink_client.errors import FileFormatError
        from fink_client.io.reader import AlertReader

        try:
            existing = AlertReader(path, schema=schema_json).to_list()
        except FileFormatError:
            return False
        return alerts_equal(existing, [dict(a) for a in chunk])

    def _prepare(self, schema_json: dict[str, Any] | None) -> None:
        """Hook run before writing a file (e.g. side files)."""

    def _write_file(
        self, fh: BinaryIO, chunk: list[Mapping[str, Any]], schema_json: dict[str, Any] | None,
        stem: str,
    ) -> None:
        raise NotImplementedError


def _offsets_name(topic: str, partition: int | None, offsets: Sequence[int]) -> str:
    """``<topic>-p<partition>-o<first>-<last>``: the stem of a file of these offsets."""
    part = -1 if partition is None else partition
    return _safe(f"{topic}-p{part}-o{min(offsets):012d}-{max(offsets):012d}")


PARQUET_COMPRESSION = "snappy"  # ParquetWriter's default codec
_COLUMN_OPTIONS: dict[tuple[bytes, str], dict[str, Any]] = {}
#: Byte-matching codecs without an entropy stage: they find nothing to gain in
#: single-precision floats (see :func:`parquet_column_options`); zstd, gzip and brotli do.
_LZ_CODECS = frozenset({"snappy", "lz4", "lz4_raw"})


def parquet_column_options(arrow_schema: Any, compression: str) -> dict[str, Any]:
    """``pyarrow.parquet.write_table`` options for ``arrow_schema``.

    Bytes columns (cutouts: gzipped FITS, unique per alert) get no dictionary and no
    compression, which would only cost time (1.4x to 2x slower writes measured on ZTF/LSST
    alerts, same size), and no min/max statistics, which no reader can filter images on (a
    third of the time of writing the cutout columns, 26 -> 18 ms per 1,000 alerts). Leaves
    inside a list or a map (the light curve ``prv_candidates`` / ``prvDiaSources``,
    ``mangrove``...) get no statistics either: a row group's min/max over every element of
    every history is not what a reader prunes row groups on (Spark, DuckDB and pyarrow
    filter on top-level and struct columns), and computing them cost ~8 % of writing a ZTF
    table (65 -> 60 ms per 1,000 alerts, median of 20 interleaved rounds). Floating-point
    columns (fluxes, positions, times: nearly all distinct) get no dictionary, which pyarrow
    would build and then give up (5-8 % faster writes; real ZTF/LSST samples 1-2 % smaller,
    synthetic alerts 1.7 % larger). Single-precision ones (``float``: magnitudes, fluxes,
    errors; 36 of the 57 leaves of a ZTF history) get no compression either with snappy or
    lz4 (zstd, gzip and brotli, asked for smaller files, still compress them): snappy gains
    0-10 % on them in the real ZTF samples and nothing in the LSST ones (some grow), ~0.2 %
    of a file, and it cost 10-20 % of writing a ZTF table (66 -> 54-60 ms per 1,000 alerts,
    medians of 25 interleaved rounds). Doubles (``jd``, ``ra``, ``dec``, repeated along a
    history) keep ``compression``: 9-27 % smaller. Strings, integers and booleans get
    ``compression`` and a dictionary. Plain Parquet settings, per column path, that every
    reader (pyarrow, DuckDB, Spark) handles. Cached per schema: the stream sink and every
    transfer folder share one computation."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if arrow_io.has_binary_views(arrow_schema):  # the same columns, the same options
        arrow_schema = arrow_io.without_binary_views(arrow_schema)
    key = (arrow_schema.serialize().to_pybytes(), compression)
    found = _COLUMN_OPTIONS.get(key)
    if found is None:
        out = pa.BufferOutputStream()
        # to learn the leaf paths (an empty table from no batch: Schema.empty_table()
        # imports pandas, ~0.2 s that a transfer worker would spend before reading)
        pq.write_table(pa.Table.from_batches([], schema=arrow_schema), out)
        leaves = pq.read_metadata(pa.BufferReader(out.getvalue())).schema
        paths = [leaves.column(i) for i in range(len(leaves))]
        raw = {c.path for c in paths
               if c.physical_type == "BYTE_ARRAY" and c.logical_type.type == "NONE"}
        plain = raw | {c.path for c in paths if c.physical_type == "FLOAT"
                       and compression.lower() in _LZ_CODECS}
        found = _COLUMN_OPTIONS[key] = {
            "use_dictionary": [c.path for c in paths if c.path not in raw
                               and c.physical_type not in ("FLOAT", "DOUBLE")],
            "compression": {c.path: "none" if c.path in plain else compression for c in paths},
            "write_statistics": [c.path for c in paths
                                 if c.path not in raw and c.max_repetition_level == 0],
        }
    return found


def _parquet_size_hint(table: Any) -> int:
    """Bytes a Parquet file of ``table`` fits in, but for freak cases (a file that does
    not fit is written the ordinary way): its Arrow data, the values' length prefixes
    and levels, and the footer."""
    return int(arrow_io.data_bytes(table) * 1.125) + 16 * table.num_rows + (4 << 20)


def write_parquet(table: Any, sink: Any, options: Mapping[str, Any]) -> None:
    """``pyarrow.parquet.write_table(table, sink, **options)``, and for a table with
    ``binary_view`` columns (:func:`fink_client.io.arrow.with_binary_views`) the very
    same file as for its ``binary`` form: Parquet stores both as ``BYTE_ARRAY``, and the
    Arrow schema kept in the file (``ARROW:schema``, with which pyarrow restores the
    exact types) is the ``binary`` one, so readers see what every other file holds."""
    import base64

    import pyarrow.parquet as pq

    if not arrow_io.has_binary_views(table.schema):
        pq.write_table(table, sink, **options)
        return
    stored = arrow_io.without_binary_views(table.schema)
    meta = {**(stored.metadata or {}),  # in pyarrow's order: byte for byte its file
            b"ARROW:schema": base64.b64encode(stored.serialize().to_pybytes())}
    with pq.ParquetWriter(sink, table.schema, store_schema=False, **options) as writer:
        writer.write_table(table)
        writer.add_key_value_metadata(meta)


def _require(schema_json: dict[str, Any] | None, fmt: str) -> dict[str, Any]:
    if schema_json is None:
        raise SchemaError(f"writing {fmt} files needs the Avro schema of the alerts (schema=...)")
    return schema_json


class AvroWriter(AlertWriter):
    """Avro Object Container files (``.avro``), one per batch or rotation chunk.

    ``codec`` is any fastavro codec (``null`` default, ``deflate``, ``snappy``...). The
    sync marker is derived from the file name, so an identical rerun writes identical
    bytes.
    """

    format = "avro"
    suffix = ".avro"

    def __init__(self, folder: str | Path, schema: Any = None, *, codec: str = "null",
                 **opts: Any) -> None:
        super().__init__(folder, schema, **opts)
        self.codec = codec

    def _write_file(self, fh: BinaryIO, chunk: list[Mapping[str, Any]],
                    schema_json: dict[str, Any] | None, stem: str) -> None:
        # The schema as given (not fastavro's parsed form) goes into the header, so that
        # readers get back exactly the user's schema.
        marker = hashlib.sha256(stem.encode()).digest()[:16]
        schema_json = _require(schema_json, "Avro")
        try:
            fastavro.writer(fh, schema_json, [dict(a) for a in chunk],
                            codec=self.codec, sync_marker=marker)
        except _ENCODE_ERRORS as exc:  # find the alert, name its field
            for row, alert in enumerate(chunk):
                try:
                    self._check_one(alert, schema_json)
                except _Mismatch as bad:
                    bad.row = row
                    raise bad from None
            raise _Mismatch(0, None, f"{type(exc).__name__}: {exc}") from None

    def _check_one(self, alert: Mapping[str, Any], schema_json: dict[str, Any] | None) -> None:
        schema_json = _require(schema_json, "Avro")
        try:
            fastavro.schemaless_writer(io.BytesIO(), self._parsed_schema(schema_json),
                                       dict(alert))
        except _ENCODE_ERRORS as exc:
            raise self._mismatch(0, alert, schema_json, exc) from None


class ParquetWriter(AlertWriter):
    """Parquet files (``.parquet``) typed from the Avro schema (see :mod:`.arrow`).

    One row group per file. ``compression`` is any Parquet codec pyarrow has
    (``snappy`` default, ``zstd``, ``gzip``, ``none``), for every column but the bytes
    ones (cutouts), stored uncompressed (see :func:`parquet_column_options`).
    """

    format = "parquet"
    suffix = ".parquet"

    def __init__(self, folder: str | Path, schema: Any = None, *,
                 compression: str = PARQUET_COMPRESSION, **opts: Any) -> None:
        super().__init__(folder, schema, **opts)
        self.compression = compression
        self._arrow: dict[str, Any] = {}

    def arrow_schema(self, schema_json: dict[str, Any]) -> Any:
        """The Arrow schema used for alerts of ``schema_json`` (cached)."""
        key = json.dumps(schema_json, sort_keys=True)
        if key not in self._arrow:
            self._arrow[key] = arrow_io.avro_to_arrow_schema(schema_json)
        return self._arrow[key]

    def write_table(self, table: Any, *, topic: str, partition: int | None,
                    offsets: Sequence[int], sizes: Sequence[int],
                    schema: Any = None) -> list[Path]:
        """Write a ``pyarrow.Table`` already typed by :meth:`arrow_schema` (e.g. built
        from the message bytes by :mod:`fink_client.arrowbatch`), row ``i`` being the
        alert at ``offsets[i]`` whose Avro encoding is ``sizes[i]`` bytes: the same
        files, names and rotation as :meth:`write` of the decoded alerts."""
        schema_json = _load_schema(schema) if schema is not None else self.schema
        if len(offsets) != table.num_rows or len(sizes) != table.num_rows:
            raise ConfigError(f"{len(offsets)} offsets and {len(sizes)} sizes for "
                              f"{table.num_rows} rows: give one of each per row",
                              field="offsets")
        return [self._write_unique(_offsets_name(topic, partition, offsets[start:stop]),
                                   table.slice(start, stop - start), schema_json)
                for start, stop in self._bounds(table.num_rows, sizes.__getitem__)]

    def _write_file(self, fh: BinaryIO, chunk: Any,
                    schema_json: dict[str, Any] | None, stem: str) -> None:
        import pyarrow as pa

        if isinstance(chunk, pa.Table):
            table = chunk
        else:
            batch = self._batch(chunk, schema_json)
            table = pa.Table.from_batches([batch], schema=batch.schema)
        options = parquet_column_options(table.schema, self.compression)
        if isinstance(cast(object, fh), DirectFile) and cast(DirectFile, fh).write_whole(
                lambda sink: write_parquet(table, sink, options), _parquet_size_hint(table)):
            return
        write_parquet(table, fh, options)

    def _same(self, path: Path, chunk: Any, schema_json: dict[str, Any] | None) -> bool:
        import pyarrow as pa

        if isinstance(chunk, pa.Table):
            chunk = chunk.to_pylist()
        return super()._same(path, chunk, schema_json)

    def _batch(self, chunk: Sequence[Mapping[str, Any]], schema_json: dict[str, Any] | None,
               ) -> Any:
        """Record batch of ``chunk``; :class:`_Mismatch` for the first alert that does not
        fit (a type error, or a null where the schema allows none)."""
        import pyarrow as pa

        schema_json = _require(schema_json, "Parquet")
        try:
            arrow_schema = self.arrow_schema(schema_json)
        except SchemaError as exc:  # e.g. a union of several types: no alert of it fits
            raise _Mismatch(0, exc.field, exc.reason) from None
        try:
            batch = pa.RecordBatch.from_pylist(list(chunk), schema=arrow_schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, *_ENCODE_ERRORS) as exc:
            for row, alert in enumerate(chunk):
                try:
                    pa.RecordBatch.from_pylist([alert], schema=arrow_schema)
                except (pa.ArrowInvalid, pa.ArrowTypeError, *_ENCODE_ERRORS) as one:
                    raise self._mismatch(row, alert, schema_json, one) from None
            raise _Mismatch(0, None, f"{type(exc).__name__}: {exc}") from None
        bad = arrow_io.null_violation(batch)
        if bad is not None:
            row, path = bad
            raise _Mismatch(row, path, "is null or missing, and the schema allows no null")
        return batch

    def _check_one(self, alert: Mapping[str, Any], schema_json: dict[str, Any] | None) -> None:
        self._batch([alert], schema_json)


class JsonLinesWriter(AlertWriter):
    """JSON-lines files (``.jsonl``), one alert per line (see :mod:`.jsonlines`).

    ``drop_bytes=True`` leaves out bytes fields (cutouts) instead of base64-encoding
    them. With a schema, ``_schema-<sha256 prefix>.avsc`` is written once beside the
    data so that the files can be read back exactly.
    """

    format = "json"
    suffix = ".jsonl"

    def __init__(self, folder: str | Path, schema: Any = None, *, drop_bytes: bool = False,
                 **opts: Any) -> None:
        super().__init__(folder, schema, **opts)
        self.drop_bytes = drop_bytes

    def _prepare(self, schema_json: dict[str, Any] | None) -> None:
        if schema_json is None:
            return
        path = self.folder / jsonlines.schema_file_name(schema_json)
        if not path.exists():
            try:
                with atomic_write(path) as fh:
                    fh.write(jsonlines.schema_bytes(schema_json))
            except FileExistsError:
                pass

    def _encode(self, chunk: list[Mapping[str, Any]]) -> bytes:
        return b"".join(jsonlines.encode_alert(a, self.drop_bytes) for a in chunk)

    def _write_file(self, fh: BinaryIO, chunk: list[Mapping[str, Any]],
                    schema_json: dict[str, Any] | None, stem: str) -> None:
        if schema_json is not None:  # the pairing is durable before the data file appears
            link = self.folder / jsonlines.link_name(f"{stem}{self.suffix}")
            with atomic_write(link, overwrite=True) as out:
                out.write(jsonlines.schema_file_name(schema_json).encode())
        fh.write(self._encode(chunk))

    def _same(self, path: Path, chunk: list[Mapping[str, Any]],
              schema_json: dict[str, Any] | None) -> bool:
        return path.read_bytes() == self._encode(chunk)


_WRITERS: dict[str, type[AlertWriter]] = {
    "avro": AvroWriter,
    "parquet": ParquetWriter,
    "json": JsonLinesWriter,
    "jsonl": JsonLinesWriter,
}


def open_writer(format: str, folder: str | Path, schema: Any = None, **opts: Any) -> AlertWriter:
    """A writer of ``format`` (``"avro"``, ``"parquet"`` or ``"json"``) into ``folder``.

    ``opts``: ``max_records``, ``max_bytes`` (rotation), and per format ``codec`` (Avro),
    ``compression`` (Parquet), ``drop_bytes`` (JSON).
    """
    try:
        cls = _WRITERS[format.lower()]
    except KeyError:
        raise ConfigError(
            f"unknown output format {format!r}; choose one of {', '.join(FORMATS)}",
            field="format",
        ) from None
    try:
        return cls(folder, schema, **opts)
    except TypeError as exc:
        raise ConfigError(f"bad option for the {format} writer: {exc}", field="format") from exc
