"""AlertReader: every alert of Avro, gzipped Avro, Parquet and JSON-lines files.

The format of a file is recognised from its first bytes, not its name:
``Obj\\x01`` Avro container (any codec fastavro supports: null, deflate, snappy,
zstandard/lz4/bzip2/xz when their module is installed), ``\\x1f\\x8b`` gzip holding an
Avro container (``.avro.gz``), ``PAR1`` Parquet, ``{`` JSON lines. Folders are read
recursively (files named ``*.avro``, ``*.avro.gz``, ``*.parquet``, ``*.jsonl``, sorted
by path; hidden files, e.g. in-progress temporary files, are skipped).

JSON-lines files need the Avro schema to restore bytes, NaN and timestamps: pass
``schema=``, or keep the ``_schema-*.avsc`` and ``_*.jsonl.schema`` files that
:class:`~fink_client.io.JsonLinesWriter` writes beside them (see :mod:`.jsonlines`).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

import fastavro
import pyarrow as pa

from fink_client import codec, survey
from fink_client.compare import alerts_equal
from fink_client.errors import AlertError, FileFormatError, SchemaError
from fink_client.io import arrow as arrow_io
from fink_client.io import jsonlines

DATA_SUFFIXES = (".avro", ".avro.gz", ".parquet", ".parq", ".jsonl", ".ndjson")
PathLike = str | Path


def _is_data_file(path: Path) -> bool:
    return not path.name.startswith((".", "_")) and path.name.endswith(DATA_SUFFIXES)


def expand_paths(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    """Files named by ``paths``: files as given, folders recursively (sorted)."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    out: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and _is_data_file(p)))
        elif path.is_file():
            out.append(path)
        else:
            raise FileFormatError("no such file or folder", path=str(path))
    return out


def sniff(path: Path) -> str:
    """``"avro"``, ``"avro.gz"``, ``"parquet"`` or ``"jsonl"`` from a file's first bytes."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise FileFormatError(f"cannot open file: {exc}", path=str(path)) from exc
    if head == b"Obj\x01":
        return "avro"
    if head[:2] == b"\x1f\x8b":
        return "avro.gz"
    if head == b"PAR1":
        return "parquet"
    if head[:1] in (b"{", b"\n", b" ") or (not head and path.name.endswith((".jsonl", ".ndjson"))):
        return "jsonl"
    raise FileFormatError(
        f"unknown file format (first bytes {head!r}); expected an Avro container, a gzipped "
        "Avro container, Parquet or JSON lines",
        path=str(path),
    )


def _unifiable(a: pa.Schema, b: pa.Schema) -> bool:
    try:
        pa.unify_schemas([a, b], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return False
    return True


def _wrap(path: Path, exc: Exception, what: str) -> FileFormatError:
    return FileFormatError(f"corrupt or unreadable {what} file: {type(exc).__name__}: {exc}",
                           path=str(path))


class AlertReader:
    """Read alerts from files: ``AlertReader("alerts/")``, ``AlertReader(["a.avro", "b.parquet"])``.

    Iterating yields one dict per alert, every record of every file in order, with
    bounded memory (Parquet is read in batches). ``schema`` is the Avro schema of the
    first file when known; pass ``schema=`` to force one for JSON-lines files.
    Any unreadable file raises :class:`FileFormatError` naming it.
    """

    def __init__(
        self,
        path: PathLike | Iterable[PathLike],
        *,
        schema: dict[str, Any] | None = None,
        batch_size: int = 1024,
    ) -> None:
        self.paths = expand_paths(path)
        self._user_schema = schema
        self._batch_size = batch_size
        self._schema: dict[str, Any] | None = schema

    # -- schema -------------------------------------------------------------------------
    @property
    def schema(self) -> dict[str, Any] | None:
        """Avro schema of the alerts (of the first file), or ``None`` if unknown."""
        if self._schema is None and self.paths:
            self._schema = self.file_schema(self.paths[0])
        return self._schema

    def file_schema(self, path: Path) -> dict[str, Any] | None:
        """Avro schema of one file (header, Parquet metadata or JSON side file)."""
        if self._user_schema is not None:
            return self._user_schema
        kind = sniff(path)
        try:
            if kind in ("avro", "avro.gz"):
                with self._open(path, kind) as fh:
                    reader = fastavro.reader(fh)
                    text = reader.metadata.get("avro.schema")
                    schema = json.loads(text) if text else reader.writer_schema
                    if not isinstance(schema, dict):
                        raise FileFormatError("the file's Avro schema is not a record schema",
                                              path=str(path))
                    # files written by fastavro from a parsed schema carry its private keys
                    return {k: v for k, v in schema.items() if not k.startswith("__fastavro")}
            if kind == "parquet":
                import pyarrow.parquet as pq

                return arrow_io.avro_schema_of(pq.read_schema(path))
        except AlertError:
            raise
        except Exception as exc:
            raise _wrap(path, exc, kind) from exc
        return self._json_side_schema(path)

    @staticmethod
    def _json_side_schema(path: Path) -> dict[str, Any] | None:
        """The schema of a JSON-lines file: the side file its link names (exact), else the
        ``_schema-*.avsc`` beside it that its first alert conforms to, field by field at
        every depth (:func:`jsonlines.conforms`).

        ``None`` when there is no side file; :class:`SchemaError` when there are side
        files but none matches, or several that would decode the alert differently.
        """
        link = path.with_name(jsonlines.link_name(path.name))
        if link.exists():  # written with this schema: exact
            try:
                side = path.with_name(link.read_text(encoding="utf-8").strip())
                return json.loads(side.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise SchemaError(f"the schema file named by {link.name} is missing or "
                                  f"unreadable: {exc}; pass schema=...", path=str(path)) from exc
        candidates = sorted(path.parent.glob("_schema-*.avsc"))
        if not candidates:
            return None
        try:
            with open(path, "rb") as fh:
                first = json.loads(fh.readline() or b"{}")
        except ValueError as exc:
            raise _wrap(path, exc, "JSON lines") from exc
        matching: list[tuple[Path, dict[str, Any], dict[str, Any]]] = []
        for cand in candidates:
            try:
                schema = json.loads(cand.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise _wrap(cand, exc, "Avro schema") from exc
            if jsonlines.conforms(first, schema):
                try:  # e.g. text that is not base64 under a bytes field: no match
                    matching.append((cand, schema, jsonlines.decode_alert(first, schema)))
                except (ValueError, TypeError, KeyError):
                    continue
        names = (", ".join(c.name for c, _, _ in matching)
                 or ", ".join(c.name for c in candidates))
        if not matching:
            raise SchemaError(
                f"no schema file beside it ({names}) matches its alerts: pass the Avro "
                "schema with schema=...", path=str(path))
        decoded = [d for _, _, d in matching]
        if any(not alerts_equal([d], [decoded[0]]) for d in decoded[1:]):
            raise SchemaError(
                f"several schema files beside it ({names}) match its alerts but decode them "
                "differently: pass the right one with schema=...", path=str(path))
        return matching[0][1]

    # -- iteration ----------------------------------------------------------------------
    @staticmethod
    def _open(path: Path, kind: str) -> BinaryIO:
        if kind == "avro.gz":
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return open(path, "rb")

    def _iter_file(self, path: Path) -> Iterator[dict[str, Any]]:
        kind = sniff(path)
        try:
            if kind in ("avro", "avro.gz"):
                with self._open(path, kind) as fh:
                    for record in fastavro.reader(fh):
                        yield codec.as_record(record)
            elif kind == "parquet":
                import pyarrow.parquet as pq

                pf = pq.ParquetFile(path)
                for batch in pf.iter_batches(batch_size=self._batch_size):
                    yield from arrow_io.to_alerts(batch)
            else:
                decode = None
                schema = self.file_schema(path)
                if schema is not None:
                    decode = jsonlines.schema_decoder(schema)
                with open(path, "rb") as fh:
                    for line in fh:
                        if not line.strip():
                            continue
                        obj = json.loads(line)
                        yield decode(obj) if decode else obj
        except AlertError:
            raise
        except Exception as exc:  # fastavro/pyarrow/gzip raise many types on bad data
            raise _wrap(path, exc, kind) from exc

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for path in self.paths:
            yield from self._iter_file(path)

    def to_list(self, n: int | None = None) -> list[dict[str, Any]]:
        """The first ``n`` alerts (all of them when ``n`` is None) as a list of dicts."""
        return list(islice(iter(self), n))

    def to_arrow(self) -> pa.Table:
        """All alerts as one Arrow table, typed from the Avro schema (never inferred).

        Parquet files are read as they are; other files are converted with the Arrow
        schema derived from their Avro schema. Files with different schemas are
        concatenated with schema promotion (missing columns become null).
        """
        import pyarrow.parquet as pq

        tables = []
        table_paths: list[Path] = []  # the file of each table
        for path in self.paths:
            kind = sniff(path)
            try:
                if kind == "parquet":
                    tables.append(pq.read_table(path))
                    table_paths.append(path)
                    continue
                schema = self.file_schema(path)
                rows = list(self._iter_file(path))
                if schema is None:
                    raise FileFormatError(
                        "no Avro schema known for this file; pass schema=...", path=str(path)
                    )
                arrow_schema = arrow_io.avro_to_arrow_schema(schema)
                tables.append(pa.Table.from_batches(
                    [arrow_io.to_record_batch(rows, arrow_schema)], schema=arrow_schema))
                table_paths.append(path)
            except AlertError:
                raise
            except Exception as exc:
                raise _wrap(path, exc, kind) from exc
        if not tables:
            schema = self.schema
            return (arrow_io.avro_to_arrow_schema(schema).empty_table() if schema
                    else pa.table({}))
        if all(t.schema == tables[0].schema for t in tables):
            return pa.concat_tables(tables)
        try:
            return pa.concat_tables(tables, promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise self._not_one_table(tables, table_paths, exc) from None

    def _not_one_table(self, tables: list[pa.Table], paths: list[Path],
                       exc: Exception) -> SchemaError:
        """The error for files whose schemas cannot share one table (e.g. ZTF and LSST)."""
        first = paths[0]
        other = next(
            (p for p, t in zip(paths[1:], tables[1:], strict=True)
             if not _unifiable(tables[0].schema, t.schema)),
            paths[-1],
        )
        return SchemaError(
            f"these files cannot be one table: {first} holds {self._describe(first)} and "
            f"{other} holds {self._describe(other)} ({exc}); read each kind separately, "
            "e.g. AlertReader(<files of one survey>).to_arrow(), or iterate the reader to get "
            "dicts of any schema",
            path=str(other),
        )

    def _describe(self, path: Path) -> str:
        """``ZTF alerts (schema ztf.alert)``-like description of a file's schema."""
        try:
            schema = self.file_schema(path) or {}
        except AlertError:
            schema = {}
        name = ".".join(x for x in (schema.get("namespace"), schema.get("name")) if x)
        try:
            kind = f"{survey.detect_survey(schema).upper()} alerts"
        except (AlertError, AttributeError, KeyError, TypeError):
            kind = "alerts"
        return f"{kind} (schema {name or 'unnamed'})"

    def to_pandas(self) -> Any:
        """All alerts as a pandas DataFrame.

        Integer and boolean columns use pandas' nullable dtypes (``Int64``...), so 64-bit
        ids stay exact integers even when some are null; nested records are dicts.
        """
        import pandas as pd

        mapping = {
            pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(),
            pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype(),
            pa.bool_(): pd.BooleanDtype(),
        }
        return self.to_arrow().to_pandas(types_mapper=mapping.get, maps_as_pydicts="strict")

    def __repr__(self) -> str:
        return f"AlertReader({len(self.paths)} file(s))"
