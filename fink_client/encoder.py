"""Alert records -> Kafka message ``(value, key)`` in one of the wire formats that
:class:`fink_client.wire.Decoder` reads (its inverse; no Kafka here).

- ``wire="fink"`` (default): schemaless Avro value, the schema JSON as the message key;
- ``wire="confluent"``: Confluent framing (byte 0, 4-byte big-endian schema id, then
  schemaless Avro), as Rubin's upstream stream does;
- ``wire="container"``: one Avro Object Container per message (raw ZTF style).

:mod:`fink_client.replay` publishes with it; tests build messages with it.
"""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import fastavro

from fink_client import codec
from fink_client.errors import ConfigError

WIRE_FORMATS = ("fink", "confluent", "container")


class Encoder:
    """Encode records in one wire format, caching parsed schemas and their JSON text."""

    def __init__(self, wire: str = "fink", schema_id: int = 1) -> None:
        if wire not in WIRE_FORMATS:
            raise ConfigError(f"wire must be one of {WIRE_FORMATS}, not {wire!r}", field="wire")
        self.wire = wire
        self.schema_id = schema_id
        self._cache: dict[int, tuple[Any, bytes]] = {}

    def _parsed(self, schema: dict[str, Any]) -> tuple[Any, bytes]:
        entry = self._cache.get(id(schema))
        if entry is None:
            entry = (codec.parse_schema(schema), json.dumps(schema).encode())
            self._cache[id(schema)] = entry
        return entry

    def encode(self, schema: dict[str, Any], record: dict[str, Any]) -> tuple[bytes, bytes | None]:
        """``(value, key)`` of the message carrying ``record``."""
        parsed, schema_text = self._parsed(schema)
        buf = io.BytesIO()
        if self.wire == "container":
            fastavro.writer(buf, parsed, [record])
            return buf.getvalue(), None
        if self.wire == "confluent":
            buf.write(b"\x00" + struct.pack(">I", self.schema_id))
            fastavro.schemaless_writer(buf, parsed, record)
            return buf.getvalue(), None
        fastavro.schemaless_writer(buf, parsed, record)
        return buf.getvalue(), schema_text
