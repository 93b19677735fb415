"""Avro -> Arrow record batches straight from the message bytes, without alert dicts.

:func:`decode_batch` turns a list of schemaless Avro values written with one schema
into a ``pyarrow.RecordBatch`` whose schema is exactly
:func:`fink_client.io.arrow.avro_to_arrow_schema`'s (same types, nulls, NaN, exact
int64, enums as strings, maps, lists, structs, bytes, timestamps). With the C
extension (``fink_client._fastdecode``, built at install when a compiler is there)
the columns are filled in C from the bytes (``_arrow.c``); without it, or with
``FINK_CLIENT_NO_FASTPATH=1``, the same batch is built through dicts (decode, then
``io.arrow.to_record_batch``). Both give equal batches (tests/unit/test_arrow_decode.py).
Where the dict path cannot build a batch at all, the C path is more lenient: it keeps
timestamps beyond Python's ``datetime`` range as their integers and ``uuid`` strings as
strings; a map that repeats a key keeps every entry (a dict keeps the last).

:func:`consume_arrow` is :meth:`fink_client.consumer.AlertConsumer.consume_arrow`:
one batch holds messages of one topic and one schema; it ends early at the first
message of another topic or schema, which starts the next batch. Delivery rule as for
``consume``: the batch's offsets are stored when the caller comes back for more or
closes the consumer; an undecodable message is the next call's :class:`DecodeError`
(the alerts before it are returned first).

A bad value raises :class:`BatchDecodeError` (a :class:`DecodeError`) giving its index
in the batch; the whole batch is refused (nothing partial is returned). A batch
holding more than 2 GiB in one column raises :class:`BatchTooLargeError`: decode
fewer values at once. Sinks that must write the good values and dead-letter the bad
ones use ``batch_decoder(schema).decode_valid(values)`` (rows plus one error per bad
value).
"""

from __future__ import annotations

import io
import json
import os
import struct
import time
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from fink_client import codec, fastdecode, wire
from fink_client import config as _config
from fink_client.errors import AlertError, DecodeError, SchemaError
from fink_client.io import arrow

if TYPE_CHECKING:
    from fink_client.consumer import AlertConsumer

TOPIC_KEY = b"fink.topic"


class BatchDecodeError(DecodeError):
    """Value ``index`` of a batch could not be decoded (or does not fit its Arrow type)."""

    def __init__(self, message: str, *, index: int, **kwargs: Any) -> None:
        self.index = index
        super().__init__(message, **kwargs)

    def location(self) -> str:
        where = super().location()
        return f"batch index {self.index}" + (f" {where}" if where else "")


class BatchTooLargeError(AlertError):
    """A column of the batch would exceed Arrow's 32-bit offsets (2 GiB)."""


def _raw(value: Any) -> bytes | None:
    return bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else None


def _bad_value(values: Sequence[Any], index: int, exc: BaseException) -> BatchDecodeError:
    raw = _raw(values[index])
    size = f"{len(raw)} bytes" if raw is not None else type(values[index]).__name__
    return BatchDecodeError(
        f"undecodable Avro payload ({size}): {type(exc).__name__}: {exc}",
        index=index, raw_value=raw,
    )


class BatchDecoder:
    """Decoder of batches of schemaless values of one Avro schema (compiled once).

    ``schema``: parsed Avro schema dict, JSON text or a path, as elsewhere in the
    package. Raises :class:`SchemaError` when the schema is invalid or has no Arrow
    equivalent (unions of several non-null types).

    ``views``: the bytes columns (cutouts, ~45 KB of a 47 KB ZTF alert) are
    ``binary_view`` pointing into the values themselves, which every batch then keeps
    alive, instead of a copy of them (:func:`fink_client.io.arrow.with_binary_views`):
    one copy less of most of the bytes, and no memory of that size to fill. For
    writers that only read the batch (Parquet stores both layouts alike).
    """

    def __init__(self, schema: wire.SchemaLike, *, views: bool = False) -> None:
        schema_json = wire.load_schema(schema)
        self.arrow_schema: pa.Schema = arrow.avro_to_arrow_schema(schema_json)
        if views:
            self.arrow_schema = arrow.with_binary_views(self.arrow_schema)
        try:
            self._parsed = codec.parse_schema(schema_json)
        except AlertError:
            raise
        except Exception as exc:
            raise SchemaError(f"invalid Avro schema: {exc}") from exc
        self._c: fastdecode.ArrowReader | None = None
        if not os.environ.get("FINK_CLIENT_NO_FASTPATH"):
            try:
                self._c = fastdecode.build_arrow_reader(
                    self._parsed, self.arrow_schema, codec.TrailingBytesError, views)
            except fastdecode.Unsupported:
                self._c = None
        self._dict_reader: codec.Reader | None = None

    @property
    def in_c(self) -> bool:
        """True if batches are built in C (else through dicts)."""
        return self._c is not None

    def decode(self, values: Sequence[Any]) -> pa.RecordBatch:
        """Record batch of ``values`` (bytes-like, schemaless Avro), one row per value."""
        if self._c is None:
            return self.decode_via_dicts(values)
        try:
            return self._c(values)
        except OverflowError as exc:
            raise BatchTooLargeError(str(exc)) from exc
        except Exception as exc:
            index = getattr(exc, "batch_index", None)
            if index is None:
                raise
            raise _bad_value(values, index, exc) from exc

    def decode_valid(self, values: Sequence[Any]) -> tuple[pa.Table, list[BatchDecodeError]]:
        """Every good value as one table row (in order), and one error per bad value
        (``index`` is its position in ``values``): for sinks that write the good ones
        and dead-letter the others. Costs one extra pass over the good values before
        each bad one."""
        batches: list[pa.RecordBatch] = []
        errors: list[BatchDecodeError] = []
        start = 0
        while start < len(values):
            chunk = values[start:]
            try:
                batches.append(self.decode(chunk))
                break
            except BatchDecodeError as exc:
                if exc.index > 0:
                    batches.append(self.decode(chunk[:exc.index]))
                err = BatchDecodeError(exc.reason, index=start + exc.index,
                                       raw_value=exc.raw_value)
                err.__cause__ = exc.__cause__
                errors.append(err)
                start = err.index + 1
        return pa.Table.from_batches(batches, schema=self.arrow_schema), errors

    def decode_via_dicts(self, values: Sequence[Any]) -> pa.RecordBatch:
        """The same batch through the reference path: dicts, then io.arrow conversion."""
        if self._dict_reader is None:
            self._dict_reader = codec.compile_reader(self._parsed)
        rows = []
        for i, value in enumerate(values):
            try:
                rows.append(self._dict_reader(value))
            except Exception as exc:
                raise _bad_value(values, i, exc) from exc
        return self.from_records(rows, values)

    def from_records(
        self, rows: list[dict[str, Any]], values: Sequence[Any] | None = None
    ) -> pa.RecordBatch:
        """Record batch of already decoded alert dicts; the first row that does not
        fit its Arrow type raises :class:`BatchDecodeError`."""
        try:
            return arrow.to_record_batch(rows, self.arrow_schema)
        except SchemaError:
            for i, row in enumerate(rows):
                try:
                    arrow.to_record_batch([row], self.arrow_schema)
                except SchemaError as exc:
                    raise BatchDecodeError(
                        exc.reason, index=i,
                        raw_value=_raw(values[i]) if values is not None else None,
                    ) from exc
            raise


_DECODERS: OrderedDict[tuple[str, bool], BatchDecoder] = OrderedDict()


def batch_decoder(schema: wire.SchemaLike, *, views: bool = False) -> BatchDecoder:
    """The (cached) :class:`BatchDecoder` of ``schema`` (``views``: see there)."""
    text = json.dumps(schema, sort_keys=True) if isinstance(schema, (dict, list)) else str(schema)
    key = (text, views)
    decoder = _DECODERS.get(key)
    if decoder is None:
        decoder = _DECODERS[key] = BatchDecoder(schema, views=views)
        if len(_DECODERS) > 16:
            _DECODERS.popitem(last=False)
    else:
        _DECODERS.move_to_end(key)
    return decoder


def decode_batch(values: Sequence[Any], schema: wire.SchemaLike) -> pa.RecordBatch:
    """Decode schemaless Avro values, all written with ``schema``, into one RecordBatch.

    ``values``: a sequence of bytes-like objects (e.g. Kafka message values of a Fink
    stream); ``schema``: Avro schema dict, JSON text or path. The Arrow schema is
    :func:`fink_client.io.arrow.avro_to_arrow_schema`'s. Raises
    :class:`BatchDecodeError` (a :class:`DecodeError` carrying ``index`` and the raw
    bytes) for the first bad value, :class:`SchemaError` for a bad schema.
    """
    return batch_decoder(schema).decode(values)


# -- AlertConsumer.consume_arrow ----------------------------------------------------------

class _Resolver:
    """Which batch decoder and Avro body each message needs: the resolution order of
    :meth:`fink_client.wire.Decoder.decode` (forced schema, container, key, topic
    schema, Confluent id), over batch decoders cached like its readers."""

    def __init__(self, decoder: wire.Decoder, cache_size: int = 64) -> None:
        self._decoder = decoder
        self._by_key: OrderedDict[bytes, BatchDecoder | None] = OrderedDict()
        self._by_id: dict[int, BatchDecoder | None] = {}
        self._by_schema: dict[str, BatchDecoder] = {}
        self._by_object: dict[int, tuple[Any, BatchDecoder]] = {}
        self._cache_size = cache_size

    def for_object(self, schema_json: Any) -> BatchDecoder:
        """Decoder of a schema object held by the Decoder (forced, per topic, or
        cached for a message key), without serialising it again for every message.
        Raises :class:`SchemaError` if the schema has no Arrow batch form."""
        entry = self._by_object.get(id(schema_json))
        if entry is None or entry[0] is not schema_json:
            if len(self._by_object) >= self._cache_size:
                self._by_object.clear()  # objects the Decoder's caches dropped
            entry = self._by_object[id(schema_json)] = (schema_json,
                                                        self._for_schema(schema_json))
        return entry[1]

    def _for_schema(self, schema_json: Any) -> BatchDecoder:
        text = json.dumps(schema_json, sort_keys=True)
        found = self._by_schema.get(text)
        if found is None:
            if len(self._by_schema) >= self._cache_size:
                self._by_schema.clear()
            found = self._by_schema[text] = BatchDecoder(schema_json)
        return found

    def _for_key(self, key: bytes) -> BatchDecoder | None:
        if key in self._by_key:
            self._by_key.move_to_end(key)
            return self._by_key[key]
        schema_json = wire.schema_from_key(key)
        found = self._for_schema(schema_json) if schema_json is not None else None
        self._by_key[key] = found
        if len(self._by_key) > self._cache_size:
            self._by_key.popitem(last=False)
        return found

    def _for_id(self, schema_id: int) -> BatchDecoder | None:
        if schema_id not in self._by_id:
            schema_json = self._decoder._id_resolver(schema_id)
            self._by_id[schema_id] = (
                self._for_schema(schema_json) if schema_json is not None else None)
        return self._by_id[schema_id]

    def resolve(self, msg: Any) -> tuple[BatchDecoder, Any, bool]:
        """``(batch decoder, body, is_dict)`` of a message; ``body`` is the schemaless
        Avro value, or the decoded alert dict (``is_dict``) for an Avro container.
        Raises :class:`DecodeError` carrying the message's position."""
        value, key, topic = msg.value(), msg.key(), msg.topic()
        d = self._decoder
        try:
            if value and value.startswith(wire.CONTAINER_MAGIC):
                alert = d.decode(value, key, **_where(msg))  # canonical errors
                return self._for_schema(_container_schema(value)), alert, True
            found: BatchDecoder | None = None
            body: Any = value
            if value and d.forced_schema is not None:
                found = self.for_object(d.forced_schema)
            if found is None and value and key:
                found = self._for_key(key)
            if found is None and value and topic in d.topic_schemas:
                found = self.for_object(d.topic_schemas[topic])
            if (found is None and value and value[0] == wire.CONFLUENT_MAGIC
                    and len(value) > 5):
                found = self._for_id(struct.unpack(">I", value[1:5])[0])
                body = memoryview(value)[5:]
        except DecodeError:
            raise
        except SchemaError as exc:
            raise DecodeError(f"bad schema for an Arrow batch: {exc.reason}",
                              raw_value=value, raw_key=key, **_where(msg)) from exc
        if found is None:
            d.decode(value, key, **_where(msg))  # raises the decoder's own DecodeError
            raise DecodeError("cannot find the schema of this message for an Arrow batch",
                              raw_value=value, raw_key=key, **_where(msg))
        return found, body, False


# One resolver (schema caches) per consumer, dropped with it.
_RESOLVERS: weakref.WeakKeyDictionary[AlertConsumer, _Resolver] = weakref.WeakKeyDictionary()


def _where(msg: Any) -> dict[str, Any]:
    return {"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset()}


def _container_schema(value: bytes) -> Any:
    """Writer schema in the header of an Avro container value."""
    import fastavro

    return fastavro.reader(io.BytesIO(value)).writer_schema


def _decode_group(
    decoder: BatchDecoder, bodies: list[Any], is_dict: bool, topic: str
) -> pa.RecordBatch:
    batch = decoder.from_records(bodies) if is_dict else decoder.decode(bodies)
    meta = dict(batch.schema.metadata or {})
    meta[TOPIC_KEY] = topic.encode()
    return batch.replace_schema_metadata(meta)


def consume_arrow(
    consumer: AlertConsumer, num_alerts: int = 1000, timeout: float = -1
) -> pa.RecordBatch | None:
    """Up to ``num_alerts`` alerts of one topic and one schema as a RecordBatch, or
    ``None`` if none came within ``timeout`` s (see the module docstring for the rules).

    The batch's schema metadata holds the Avro schema (``avro.schema``) and the topic
    (``fink.topic``).
    """
    c = consumer
    c._check_open()
    _config.num_alerts(num_alerts)
    wait = _config.seconds(timeout, "timeout", forever_below_zero=True)
    if c._auto_store:
        c._store_delivered()
    resolver = _RESOLVERS.get(c)
    if resolver is None:
        resolver = _RESOLVERS[c] = _Resolver(c._decoder)
    deadline = time.monotonic() + wait
    while True:
        msgs: list[Any] = []
        bodies: list[Any] = []
        try:
            group = _gather(c, resolver, num_alerts, deadline, msgs, bodies)
        except BaseException:
            c._buffer.extendleft(reversed(msgs))  # not handed out: delivered again
            raise
        if group is None:
            return None
        batch, bad = _decode_prefix(c, group, msgs, bodies)
        if batch is None:
            c._reject(bad[0], bad[1])  # raises, or skips: then gather a new batch
            continue
        return batch


def _gather(
    c: AlertConsumer, resolver: _Resolver, num_alerts: int, deadline: float,
    msgs: list[Any], bodies: list[Any],
) -> tuple[BatchDecoder, bool, str] | None:
    """Take from the consumer's buffer (fetching as needed) up to ``num_alerts``
    messages of one topic and schema into ``msgs``/``bodies``; return their group
    (``None`` if none came). ``msgs`` holds what was taken even if this raises."""
    group: tuple[BatchDecoder, bool, str] | None = None
    while len(msgs) < num_alerts:
        msg = c._next_message(num_alerts - len(msgs), deadline, have=bool(msgs))
        if msg is None:
            break
        run = _take_run(c, resolver, num_alerts - len(msgs))
        if run is not None:  # bare schemaless values: resolved once for the run
            here, taken, values = run
            if group is not None and here != group:
                break
            group = here
            for _ in taken:
                c._buffer.popleft()
            msgs += taken
            bodies += values
            continue
        try:
            decoder, body, is_dict = resolver.resolve(msg)
        except DecodeError as exc:
            if msgs:  # hand out the good alerts first; this error comes next call
                break
            c._buffer.popleft()
            c._reject(msg, exc)  # raises, or skips (on_error="skip")
            continue
        here = (decoder, is_dict, msg.topic() or "")
        if group is not None and here != group:
            break  # another topic or schema: the next batch
        group = here
        c._buffer.popleft()
        msgs.append(msg)
        bodies.append(body)
    return group


def _take_run(
    c: AlertConsumer, resolver: _Resolver, want: int
) -> tuple[tuple[BatchDecoder, bool, str], list[Any], list[bytes]] | None:
    """The consumer's run of bare schemaless values at the head of its buffer
    (:meth:`AlertConsumer._take_run`, left in the buffer) with its group; ``None`` if
    there is none or its schema has no Arrow form (then :meth:`_Resolver.resolve`, one
    message at a time, gives the canonical error)."""
    taken = c._take_run(want)
    if taken is None:
        return None
    run, values, _, schema = taken
    try:
        decoder = resolver.for_object(schema)
    except SchemaError:
        return None
    return (decoder, False, run[0].topic() or ""), run, values


def _decode_prefix(
    c: AlertConsumer, group: tuple[BatchDecoder, bool, str], msgs: list[Any], bodies: list[Any]
) -> tuple[pa.RecordBatch | None, Any]:
    """Batch of the longest good prefix of ``msgs``, marked delivered; the others go
    back to the consumer's buffer, in order. ``(None, (msg, error))`` if the first
    message is bad (taken off the buffer, for the caller to reject)."""
    decoder, is_dict, topic = group
    try:
        while True:
            try:
                batch = _decode_group(decoder, bodies, is_dict, topic)
                break
            except BatchTooLargeError:
                if len(msgs) == 1:
                    raise
                half = len(msgs) // 2
                c._buffer.extendleft(reversed(msgs[half:]))
                msgs, bodies = msgs[:half], bodies[:half]
            except BatchDecodeError as exc:
                c._buffer.extendleft(reversed(msgs[exc.index + 1:]))
                bad = msgs[exc.index]
                if exc.index == 0:
                    return None, (bad, DecodeError(
                        exc.reason, raw_value=bad.value(), raw_key=bad.key(), topic=bad.topic(),
                        partition=bad.partition(), offset=bad.offset()))
                c._buffer.appendleft(bad)
                msgs, bodies = msgs[:exc.index], bodies[:exc.index]
    except BaseException:
        c._buffer.extendleft(reversed(msgs))  # nothing handed out: all delivered again
        raise
    c._mark_run(msgs)  # one topic
    return batch, None
