"""Avro pass-through: schemaless Fink message values -> Avro container files, undecoded.

A Fink message value is already the Avro binary encoding of one alert, and an Avro
container file is a header plus blocks of such encodings (see :mod:`fink_client.container`),
so saving needs no decoding and no encoding: only framing and the block codec. Each value
is still checked against the schema first by the decoder's strict walk, building nothing
(:func:`fink_client.codec.compile_validator`), so that a corrupt value raises
:class:`InvalidValueError` (naming its index and Kafka offset) and is never written.

The output equals what :class:`fink_client.io.AvroWriter` (fastavro) writes for the
decoded alerts: the same header (fastavro writes it), the same file name and sync
marker, the same block boundaries (a block is closed once it holds ``sync_interval``
bytes, fastavro's rule). With the ``null`` and ``snappy`` codecs the files are byte for
byte identical; ``deflate`` and ``zstandard`` blocks may compress differently but decode
to the same records.

Use::

    writer = RawAvroWriter("out/", codec="snappy")
    paths = writer.write(values, schema_json, topic=t, partition=p, offsets=offs)
    # durable (flushed, fsynced, renamed) when write() returns: store the offsets now
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import fastavro

from fink_client import codec as avro_codec
from fink_client import container
from fink_client.errors import ConfigError, DecodeError, SchemaError
from fink_client.io.atomic import atomic_write, clean_stale_temps, write_parts

SYNC_INTERVAL = 16_000  # fastavro's default: close a block once it holds this many bytes


class InvalidValueError(DecodeError):
    """A raw value does not decode with the schema it is saved with: it was not written.

    ``index`` is its position in the batch given to the writer; ``offset`` (with topic and
    partition, when known) where it came from; ``raw_value`` its bytes.
    """

    def __init__(self, message: str, *, index: int, **kw: Any) -> None:
        self.index = index
        super().__init__(message, **kw)


@dataclass(frozen=True)
class RawSchema:
    """A schema made ready for pass-through: its validator and its container header."""

    schema_json: dict[str, Any]
    codec: container.Codec
    header: bytes  # everything before the sync marker, as fastavro writes it
    validate: avro_codec.Validator

    def check(self, values: Sequence[bytes], *, topic: str | None = None,
              partition: int | None = None, offsets: Sequence[int] | None = None) -> None:
        """Raise :class:`InvalidValueError` for the first value the decoder would refuse."""
        validate = self.validate
        for i, value in enumerate(values):
            try:
                validate(value)
            except Exception as exc:
                raise invalid_value(exc, value, i, topic=topic, partition=partition,
                                    offset=None if offsets is None else offsets[i]) from exc


def invalid_value(exc: BaseException, value: bytes, index: int, *, topic: str | None = None,
                  partition: int | None = None, offset: int | None = None) -> InvalidValueError:
    """The :class:`InvalidValueError` for ``value`` refused with ``exc``."""
    where = f"value #{index}" + (f" (offset {offset})" if offset is not None else "")
    return InvalidValueError(
        f"{where} does not match the schema it is saved with ({len(value)} bytes): "
        f"{type(exc).__name__}: {exc}; not written",
        index=index, raw_value=value, topic=topic, partition=partition, offset=offset,
    )


def prepare(schema: Any, codec: str = "null") -> RawSchema:
    """Compile ``schema`` (dict, JSON text or path) for pass-through writing with ``codec``.

    Raises :class:`SchemaError` for an invalid schema, :class:`ConfigError` for an
    unknown codec or one whose library is missing.
    """
    from fink_client.wire import load_schema

    schema_json = load_schema(schema)
    block_codec = container.codec(codec)
    try:
        parsed = avro_codec.parse_schema(schema_json)
        buf = io.BytesIO()
        # fastavro writes the header (the schema as it writes it today) and no block.
        fastavro.writer(buf, schema_json, [], codec=codec, sync_marker=bytes(16))
    except Exception as exc:
        raise SchemaError(f"invalid Avro schema: {exc}") from exc
    header = buf.getvalue()[:-container.SYNC_SIZE]
    return RawSchema(schema_json, block_codec, header, avro_codec.compile_validator(parsed))


def write_container(fh: BinaryIO, schema: RawSchema, values: Sequence[bytes], *,
                    sync_marker: bytes, sync_interval: int = SYNC_INTERVAL) -> int:
    """Write ``values`` (already checked) as one Avro container into ``fh``; return its size.

    A block is closed once it holds at least ``sync_interval`` bytes of values.
    """
    if len(sync_marker) != container.SYNC_SIZE:
        raise ConfigError("an Avro sync marker has 16 bytes", field="sync_marker")
    parts = [schema.header, sync_marker]
    block: list[bytes] = []
    pending = 0
    for value in values:
        block.append(value)
        pending += len(value)
        if pending >= sync_interval:
            parts += container.block_parts(block, sync_marker, schema.codec)
            block, pending = [], 0
    if block:
        parts += container.block_parts(block, sync_marker, schema.codec)
    return write_parts(fh, parts)


def container_bytes(schema: RawSchema, values: Sequence[bytes], *, sync_marker: bytes,
                    sync_interval: int = SYNC_INTERVAL) -> bytes:
    """The container :func:`write_container` writes, as bytes."""
    buf = io.BytesIO()
    write_container(buf, schema, values, sync_marker=sync_marker, sync_interval=sync_interval)
    return buf.getvalue()


def file_stem(topic: str, partition: int | None, offsets: Sequence[int]) -> str:
    """The file name (without ``.avro``) that :class:`~fink_client.io.AvroWriter` gives
    the same alerts, so that either writer recognises the other's files on a rerun."""
    from fink_client.io.writers import _safe

    part = -1 if partition is None else partition
    return _safe(f"{topic}-p{part}-o{min(offsets):012d}-{max(offsets):012d}")


class RawAvroWriter:
    """Atomic Avro container files from raw values, named after their Kafka offsets.

    ``codec``: ``null`` (default), ``deflate``, ``snappy``, ``zstandard`` (``bzip2``,
    ``xz`` too). ``max_records`` / ``max_bytes`` (of values) split a batch into several
    files. Reruns never overwrite: an existing file holding the same alerts is kept and
    returned, a different one makes the batch go to ``<name>~2.avro`` (then ``~3``...).
    """

    suffix = ".avro"

    def __init__(self, folder: str | Path, *, codec: str = "null",
                 max_records: int | None = None, max_bytes: int | None = None,
                 sync_interval: int = SYNC_INTERVAL) -> None:
        if max_records is not None and max_records < 1:
            raise ConfigError("max_records must be at least 1", field="max_records")
        if max_bytes is not None and max_bytes < 1:
            raise ConfigError("max_bytes must be at least 1", field="max_bytes")
        container.codec(codec)  # fail now on an unknown codec or a missing library
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(self.folder)  # leftovers of writers killed mid-file
        self.codec = codec
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.sync_interval = sync_interval
        self.files_written = 0
        self.alerts_written = 0
        self._prepared: dict[str, RawSchema] = {}

    def prepared(self, schema: Any) -> RawSchema:
        """``schema`` compiled for this writer's codec (cached by its JSON)."""
        if isinstance(schema, RawSchema):
            return schema
        key = schema if isinstance(schema, str) else json.dumps(schema, sort_keys=True)
        found = self._prepared.get(key)
        if found is None:
            found = self._prepared[key] = prepare(schema, self.codec)
        return found

    def write(self, values: Sequence[bytes], schema: Any, *, topic: str,
              partition: int | None, offsets: Sequence[int],
              validate: bool = True) -> list[Path]:
        """Write ``values`` (one per offset, one partition) to new files; return their
        paths once durable. Every value is validated first (unless ``validate=False``,
        for values already checked with :meth:`RawSchema.check`): an invalid one raises
        :class:`InvalidValueError` and nothing of the batch is written.
        """
        values = list(values)
        offsets = list(offsets)
        if len(offsets) != len(values):
            raise ConfigError(f"{len(offsets)} offsets for {len(values)} values: give one "
                              "offset per value", field="offsets")
        if not values:
            return []
        raw = self.prepared(schema)
        if validate:
            raw.check(values, topic=topic, partition=partition, offsets=offsets)
        return [self._write_unique(raw, values[a:b], topic, partition, offsets[a:b])
                for a, b in self._chunks(values)]

    def close(self) -> None:
        """Nothing is buffered between calls (each write is durable)."""

    def __enter__(self) -> RawAvroWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _chunks(self, values: list[bytes]) -> list[tuple[int, int]]:
        bounds, start, size = [], 0, 0
        for i, value in enumerate(values):
            full = self.max_records is not None and i - start >= self.max_records
            full = full or (self.max_bytes is not None and i > start
                            and size + len(value) > self.max_bytes)
            if full:
                bounds.append((start, i))
                start, size = i, 0
            size += len(value)
        bounds.append((start, len(values)))
        return bounds

    def _write_unique(self, raw: RawSchema, values: list[bytes], topic: str,
                      partition: int | None, offsets: list[int]) -> Path:
        name = file_stem(topic, partition, offsets)
        for attempt in range(1, 10_000):
            stem = name if attempt == 1 else f"{name}~{attempt}"
            path = self.folder / f"{stem}{self.suffix}"
            marker = hashlib.sha256(stem.encode()).digest()[:16]  # as AvroWriter's
            if path.exists():
                if self._same(path, raw, values, marker):
                    return path
                continue
            try:
                with atomic_write(path, direct=True) as fh:  # see io.direct
                    write_container(fh, raw, values, sync_marker=marker,
                                    sync_interval=self.sync_interval)
            except FileExistsError:  # appeared meanwhile: check it again
                if self._same(path, raw, values, marker):
                    return path
                continue
            self.files_written += 1
            self.alerts_written += len(values)
            return path
        raise FileExistsError(f"too many different files named {name}* in {self.folder}")

    def _same(self, path: Path, raw: RawSchema, values: list[bytes], marker: bytes) -> bool:
        """True when ``path`` already holds exactly these alerts (bytes, else records)."""
        ours = container_bytes(raw, values, sync_marker=marker, sync_interval=self.sync_interval)
        theirs = path.read_bytes()
        if theirs == ours:
            return True
        from fink_client.compare import alerts_equal

        try:
            existing = list(fastavro.reader(io.BytesIO(theirs)))
        except Exception:
            return False
        return alerts_equal(existing, list(fastavro.reader(io.BytesIO(ours))))


__all__ = [
    "SYNC_INTERVAL", "InvalidValueError", "RawAvroWriter", "RawSchema", "container_bytes",
    "file_stem", "invalid_value", "prepare", "write_container",
]
