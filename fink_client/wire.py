"""Kafka message -> alert dict, for every wire format Fink and its neighbours use.

Formats recognised (README "How it works"), in this order:

1. a schema given by the user (file, dict or JSON text) overrides detection;
2. an Avro Object Container value (starts with ``Obj\\x01``): schema in its header;
3. Fink live streams: schemaless value, the **key** holds the schema as JSON text;
4. older Fink streams: the key holds a schema *version string* -> bundled schema;
5. a schema registered for the topic (data-transfer topics, whose schema sits on the
   side topic ``<topic>_schema``);
6. Confluent framing: byte 0 is 0, bytes 1-4 a big-endian schema id -> resolved by
   ``id_resolver`` (bundled ids of :func:`fink_client.schemas.by_id` by default, or
   :func:`fink_client.schemas.confluent_resolver` for a schema registry).

Parsing a Fink schema costs far more than decoding one alert, so schemas are parsed
once per distinct key bytes and the compiled reader is cached (bounded LRU). Container
values are cached the same way by their header's metadata bytes (schema and codec; the
sync marker, different in every message, is left out), and their one record is decoded
by the same compiled reader.

:meth:`Decoder.decode_with_schema` also gives the writer schema (JSON dict) the value
was decoded with, whatever the wire format: sinks write files with it (Avro/Parquet
need one; JSON lines keep it beside the data).
"""

from __future__ import annotations

import json
import struct
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fink_client import codec, container, schemas
from fink_client.errors import AlertError, DecodeError, MessagePlace, SchemaError

if TYPE_CHECKING:
    from typing_extensions import Unpack

CONTAINER_MAGIC = b"Obj\x01"
CONFLUENT_MAGIC = 0

SchemaLike = dict | list | str | Path
IdResolver = Callable[[int], "dict[str, Any] | None"]
_Compiled = tuple[codec.Reader, Any]  # a compiled reader and the schema JSON it reads


def _looks_like_schema_json(key: bytes) -> bool:
    stripped = key.lstrip()
    return stripped[:1] in (b"{", b"[") or stripped[:1] == b'"'


def schema_from_key(key: bytes) -> Any:
    """The schema a Fink message key carries: its JSON, or the bundled schema of the
    version string it holds; ``None`` if the key is neither.

    Raises :class:`SchemaError` for a key that looks like JSON but does not parse.
    """
    if _looks_like_schema_json(key):
        try:
            return json.loads(key)
        except ValueError as exc:
            raise SchemaError(f"message key looks like JSON but is not: {exc}") from exc
    try:
        return schemas.for_version(key.decode("utf-8"))
    except UnicodeDecodeError:
        return None


def load_schema(schema: SchemaLike) -> dict[str, Any]:
    """Schema as a JSON dict from a dict, JSON text, or a path to a schema/Avro file."""
    if isinstance(schema, (dict, list)):
        return schema  # type: ignore[return-value]
    if isinstance(schema, Path) or not schema.lstrip().startswith("{"):
        return schemas.load_file(schema)
    try:
        return json.loads(schema)
    except ValueError as exc:
        raise SchemaError(f"schema is not valid JSON: {exc}") from exc


class Decoder:
    """Decode Kafka message values into alert dicts, caching parsed schemas.

    ``schema`` forces a schema for every message. ``id_resolver`` maps a Confluent
    schema id to a schema (bundled ids by default). ``topic_schemas`` maps a topic to
    the schema of its values, for topics whose messages carry no schema at all.
    """

    def __init__(
        self,
        schema: SchemaLike | None = None,
        *,
        id_resolver: IdResolver | None = None,
        topic_schemas: dict[str, SchemaLike] | None = None,
        cache_size: int = 64,
    ) -> None:
        # The schema JSON is kept beside the compiled readers for the Arrow batch path
        # (fink_client.arrowbatch), which needs schemas rather than dict readers, and
        # for decode_with_schema (sinks writing files).
        self.forced_schema = load_schema(schema) if schema is not None else None
        self.topic_schemas: dict[str, Any] = {}
        self._forced: _Compiled | None = None
        if self.forced_schema is not None:
            self._forced = (self._compile(self.forced_schema), self.forced_schema)
        self._id_resolver = id_resolver if id_resolver is not None else schemas.by_id
        self._topic_readers: dict[str, _Compiled] = {}
        for topic, sch in (topic_schemas or {}).items():
            self.set_topic_schema(topic, sch)
        self._by_key: OrderedDict[bytes, _Compiled] = OrderedDict()
        self._by_id: dict[int, _Compiled] = {}
        # container metadata bytes -> (reader, block codec, header schema JSON)
        self._by_header: OrderedDict[bytes, tuple[codec.Reader, container.Codec, Any]] = \
            OrderedDict()
        self._cache_size = cache_size

    # -- schema handling -------------------------------------------------------------
    @staticmethod
    def _compile(schema_json: Any) -> codec.Reader:
        try:
            parsed = codec.parse_schema(schema_json)
        except AlertError:
            raise
        except Exception as exc:
            raise SchemaError(f"invalid Avro schema: {exc}") from exc
        return codec.compile_reader(parsed)

    def set_topic_schema(self, topic: str, schema: SchemaLike) -> None:
        """Use ``schema`` for messages of ``topic`` that carry no schema of their own."""
        schema_json = load_schema(schema)
        self._topic_readers[topic] = (self._compile(schema_json), schema_json)
        self.topic_schemas[topic] = schema_json

    def _reader_for_key(self, key: bytes) -> _Compiled | None:
        found = self._by_key.get(key)
        if found is not None:
            self._by_key.move_to_end(key)
            return found
        schema_json = schema_from_key(key)
        if schema_json is None:
            return None
        found = self._by_key[key] = (self._compile(schema_json), schema_json)
        if len(self._by_key) > self._cache_size:
            self._by_key.popitem(last=False)
        return found

    def _reader_for_id(self, schema_id: int) -> _Compiled | None:
        found = self._by_id.get(schema_id)
        if found is None and self._id_resolver is not None:
            schema_json = self._id_resolver(schema_id)
            if schema_json is not None:
                found = self._by_id[schema_id] = (self._compile(schema_json), schema_json)
        return found

    def _container_reader(
        self, value: bytes
    ) -> tuple[codec.Reader, container.Codec, Any, int]:
        """Reader, block codec and header schema of the container ``value`` (cached by
        its metadata bytes), and where its sync marker starts."""
        end = container.meta_end(value)
        meta = value[:end]
        entry = self._by_header.get(meta)
        if entry is not None:
            self._by_header.move_to_end(meta)
            return (*entry, end)
        header = container.read_header(value)
        try:
            schema_json = json.loads(header.meta["avro.schema"])
        except (KeyError, ValueError) as exc:
            raise SchemaError(f"no valid avro.schema in the container header: {exc}") from exc
        # compiled from the JSON text: a top-level primitive ("long") is text too
        reader = self._compile(header.meta["avro.schema"].decode("utf-8", "replace"))
        entry = self._by_header[meta] = (reader, container.codec(header.codec_name),
                                         schema_json)
        if len(self._by_header) > self._cache_size:
            self._by_header.popitem(last=False)
        return (*entry, end)

    def _decode_container(self, value: bytes) -> tuple[dict[str, Any], Any]:
        """Alert and header schema of a value that is a whole one-alert Avro container."""
        reader, block_codec, schema_json, end = self._container_reader(value)
        header = container.Header({}, value[end:end + container.SYNC_SIZE], end)
        records: list[dict[str, Any]] = []
        total = 0
        for count, data in container.iter_blocks(value, header, block_codec):
            total += count
            if count == 1 and total == 1:
                records.append(codec.as_record(reader(data)))
            elif count:
                break
        if total != 1:
            raise ValueError("Avro container holds " + ("no record" if total == 0 else
                             "more than one record") + ", expected exactly 1")
        return records[0], schema_json

    def schemaless_reader(
        self, value: bytes, key: bytes | None, topic: str | None
    ) -> _Compiled | None:
        """``(reader, schema JSON)`` for a non-empty value that is a bare schemaless
        record (forced schema, schema in the key, schema of the topic), in the
        resolution order of :meth:`decode_with_schema`; ``None`` for an Avro container,
        a Confluent-framed value or one whose schema is not known this way. Every value
        with the same key and topic gets the same answer (unless it is a container), so
        a consumer resolves a run of such messages once and decodes them in one call.
        Raises :class:`SchemaError` for a key that looks like JSON but does not parse.
        """
        if value.startswith(CONTAINER_MAGIC):
            return None
        if self._forced is not None:
            return self._forced
        found = self._reader_for_key(key) if key else None
        if found is None and topic is not None:
            found = self._topic_readers.get(topic)
        return found

    # -- decoding --------------------------------------------------------------------
    def decode(
        self, value: bytes | None, key: bytes | None = None, **where: Unpack[MessagePlace]
    ) -> dict[str, Any]:
        """Decode one message value into an alert dict.

        ``where`` (keywords ``topic``, ``partition``, ``offset``) names the message:
        the topic may have a registered schema, and :class:`DecodeError` (raised when
        the value cannot be decoded, carrying the raw bytes) says where it is.
        """
        alert, _ = self.decode_with_schema(value, key, **where)
        assert alert is not None  # always decoded without validate_only
        return alert

    def decode_with_schema(
        self,
        value: bytes | None,
        key: bytes | None = None,
        *,
        validate_only: bool = False,
        **where: Unpack[MessagePlace],
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """As :meth:`decode`, but return ``(alert, schema)``: the writer schema (JSON
        dict, shared between messages of one schema) the value was decoded with.

        ``validate_only``: a *schemaless* value (forced schema, schema in the key or for
        the topic) is only checked, by the same strict walk building nothing, and
        ``(None, schema)`` is returned: the value itself is the record's Avro encoding,
        for writers that copy it (Avro pass-through). Containers and Confluent-framed
        values are decoded as usual. The errors are the same either way.
        """
        if not value:
            raise DecodeError("empty message value", raw_value=value, raw_key=key, **where)
        try:
            found = self.schemaless_reader(value, key, where.get("topic"))
            if found is not None:
                return _read(found, value, validate_only)
            if value.startswith(CONTAINER_MAGIC):
                try:
                    return self._decode_container(value)
                except SchemaError as exc:
                    raise DecodeError(f"bad schema in the Avro container header: {exc.reason}",
                                      raw_value=value, raw_key=key, **where) from exc
            if value[0] == CONFLUENT_MAGIC and len(value) > 5:
                (schema_id,) = struct.unpack(">I", value[1:5])
                by_id = self._reader_for_id(schema_id)
                if by_id is not None:
                    return by_id[0](value[5:]), by_id[1]
            raise DecodeError(
                "cannot find the schema of this message: its key is neither an Avro "
                "schema nor a known schema version "
                f"({', '.join(schemas.versions())}), and the value is neither an Avro "
                "container nor Confluent-framed with a known id; pass schema=... "
                "(a .avsc file) to decode it",
                raw_value=value,
                raw_key=key,
                **where,
            )
        except DecodeError:
            raise
        except SchemaError as exc:
            raise DecodeError(
                f"bad schema in message key: {exc.reason}", raw_value=value, raw_key=key, **where
            ) from exc
        except Exception as exc:  # fastavro raises many types on corrupt data
            raise DecodeError(
                f"undecodable Avro payload ({len(value)} bytes): {type(exc).__name__}: {exc}",
                raw_value=value,
                raw_key=key,
                **where,
            ) from exc


def _read(found: _Compiled, value: bytes, validate_only: bool) -> tuple[Any, Any]:
    reader, schema_json = found
    if validate_only:
        codec.validator(reader)(value)
        return None, schema_json
    return reader(value), schema_json


_DEFAULT = Decoder()
_BY_SCHEMA: OrderedDict[str, Decoder] = OrderedDict()


def decode(
    value: bytes, key: bytes | None = None, schema: SchemaLike | None = None
) -> dict[str, Any]:
    """Decode one alert payload obtained elsewhere (Kafka value bytes) into a dict.

    ``key`` is the Kafka message key (schema JSON or version string, as Fink sends it);
    ``schema`` (dict, JSON text or path) overrides detection. Schemas are parsed once
    and cached across calls.
    """
    if schema is None:
        return _DEFAULT.decode(value, key)
    if isinstance(schema, (dict, list)):
        cache_key = json.dumps(schema, sort_keys=True)
    else:
        cache_key = str(schema)
    decoder = _BY_SCHEMA.get(cache_key)
    if decoder is None:
        decoder = _BY_SCHEMA[cache_key] = Decoder(schema)
        if len(_BY_SCHEMA) > 16:
            _BY_SCHEMA.popitem(last=False)
    return decoder.decode(value, key)
