"""JSON lines encoding of alerts: strict JSON, lossless given the Avro schema.

One alert per line, keys in schema order. Values that JSON cannot hold are encoded so
that they come back exactly when read with the alert's Avro schema:

- ``bytes`` (cutouts): base64 text (RFC 4648, with padding), or the field is dropped
  when ``drop_bytes=True`` (ZTF ``stampData`` is nested: the field inside ``cutout*``
  is dropped);
- NaN, +inf, -inf floats: the JSON *strings* ``"NaN"``, ``"Infinity"``, ``"-Infinity"``
  (null stays ``null``, so NaN and null remain distinct; files stay strict JSON that
  ``jq`` and browsers accept);
- 64-bit integers: plain JSON integers, written exactly (Python's ``json`` reads them
  back exactly; readers that parse numbers as doubles, e.g. JavaScript, will not);
- timestamps (``timestamp-*`` logical types): ISO 8601 strings with microseconds.

:func:`decode_alert` undoes all of this using the schema.

Files and their schema: a writer given the Avro schema stores it once per folder as
:func:`schema_file_name` and, beside each data file ``X.jsonl``, the link
``_X.jsonl.schema`` naming that side file (:func:`link_name`). Files without a link
(other tools, older versions) are paired by content instead (:func:`conforms`).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from fink_client.avroschema import PRIMITIVES, collect, full_name, namespace_of

_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def schema_file_name(schema: Mapping[str, Any]) -> str:
    """``_schema-<fingerprint>.avsc``: the side file holding ``schema`` beside JSON lines
    (fingerprint: SHA-256 prefix of its canonical JSON, so equal schemas share a file)."""
    return f"_schema-{hashlib.sha256(schema_bytes(schema)).hexdigest()[:16]}.avsc"


def schema_bytes(schema: Mapping[str, Any]) -> bytes:
    """The canonical JSON text of ``schema`` stored in its side file."""
    return json.dumps(schema, sort_keys=True).encode()


def link_name(data_name: str) -> str:
    """Name of the file pairing data file ``data_name`` with its schema side file: it
    holds the side file's name, so a reader picks exactly the schema it was written with.
    """
    return f"_{data_name}.schema"


def _float(x: float) -> float | str:
    if math.isfinite(x):
        return x
    if math.isnan(x):
        return "NaN"
    return "Infinity" if x > 0 else "-Infinity"


def to_jsonable(value: Any, drop_bytes: bool = False) -> Any:
    """``value`` with bytes, non-finite floats and datetimes made JSON-safe (see module)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if drop_bytes and isinstance(v, (bytes, bytearray)):
                continue
            out[k] = to_jsonable(v, drop_bytes)
        return out
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, list):
        return [to_jsonable(v, drop_bytes) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    return value


def encode_alert(alert: Mapping[str, Any], drop_bytes: bool = False) -> bytes:
    """One JSON line (with its trailing newline) for ``alert``."""
    text = json.dumps(to_jsonable(alert, drop_bytes), ensure_ascii=False, allow_nan=False,
                      separators=(",", ":"))
    return text.encode("utf-8") + b"\n"


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) or v in _SPECIAL


def _is_bytes(schema: Any) -> bool:
    """A field ``drop_bytes`` leaves out: bytes, or a union of null and bytes."""
    if isinstance(schema, list):
        return "bytes" in schema and all(b in ("null", "bytes") for b in schema)
    if isinstance(schema, dict):
        return schema.get("type") == "bytes" and "logicalType" not in schema
    return schema == "bytes"


#: What each Avro primitive looks like once encoded by :func:`encode_alert`.
_PRIMITIVE_JSON: dict[str, Any] = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": _is_number,
    "double": _is_number,
    "string": lambda v: isinstance(v, str),
    "bytes": lambda v: isinstance(v, str),
}


class _SchemaDecoder:
    """Turns parsed JSON back into Avro-typed values, guided by the schema."""

    def __init__(self, schema: Any) -> None:
        # Every named type first: a reference may be met where its definition was null.
        self.named = collect(schema)

    def _resolve(self, ref: str, namespace: str | None) -> tuple[Any, str | None] | None:
        """(definition, namespace inside it) of the named type ``ref``, or ``None``."""
        name = self.named.find(ref, namespace)
        return None if name is None else (self.named[name], namespace_of(name))

    def decode(self, schema: Any, value: Any, namespace: str | None = None) -> Any:
        if isinstance(schema, str):
            if schema in ("float", "double"):
                return _SPECIAL[value] if isinstance(value, str) else float(value)
            if schema == "bytes":
                return base64.b64decode(value) if isinstance(value, str) else value
            if schema in PRIMITIVES:
                return value
            named = self._resolve(schema, namespace)
            return value if named is None else self.decode(named[0], value, named[1])
        if isinstance(schema, list):
            if value is None:
                return None
            branches = [b for b in schema if b != "null"]
            return self.decode(branches[0], value, namespace) if len(branches) == 1 else value
        kind = schema["type"]
        if isinstance(kind, (list, dict)):
            return self.decode(kind, value, namespace)
        logical = schema.get("logicalType")
        if logical in ("timestamp-micros", "timestamp-millis") and isinstance(value, str):
            return dt.datetime.fromisoformat(value)
        if kind in ("record", "error"):
            ns = namespace_of(full_name(schema, namespace))
            if value is None:
                return None
            out = {}
            for f in schema["fields"]:
                if f["name"] in value:
                    out[f["name"]] = self.decode(f["type"], value[f["name"]], ns)
            return out
        if kind in ("enum", "fixed"):
            return base64.b64decode(value) if kind == "fixed" and isinstance(value, str) else value
        if kind == "array":
            return None if value is None else [self.decode(schema["items"], v, namespace)
                                               for v in value]
        if kind == "map":
            return None if value is None else {k: self.decode(schema["values"], v, namespace)
                                               for k, v in value.items()}
        return self.decode(kind, value, namespace)

    def conforms(self, schema: Any, value: Any, namespace: str | None = None) -> bool:
        """True when ``value`` (parsed JSON) is what :func:`encode_alert` writes for a
        value of ``schema``: every record has exactly the schema's fields (bytes fields
        may be missing: ``drop_bytes``), and every value has the JSON form of its type.
        """
        if isinstance(schema, list):
            return any(self.conforms(b, value, namespace) for b in schema)
        if isinstance(schema, str):
            check = _PRIMITIVE_JSON.get(schema)
            if check is not None:
                return check(value)
            named = self._resolve(schema, namespace)
            return named is not None and self.conforms(named[0], value, named[1])
        kind = schema["type"]
        if isinstance(kind, (list, dict)):
            return self.conforms(kind, value, namespace)
        if schema.get("logicalType") in ("timestamp-micros", "timestamp-millis") \
                and isinstance(value, str):
            return True
        if kind in ("record", "error"):
            if not isinstance(value, dict):
                return False
            ns = namespace_of(full_name(schema, namespace))
            fields = {f["name"]: f["type"] for f in schema["fields"]}
            if not set(value) <= set(fields):
                return False
            return all(
                self.conforms(ftype, value[name], ns) if name in value
                else _is_bytes(ftype)
                for name, ftype in fields.items()
            )
        if kind == "enum":
            return isinstance(value, str) and value in schema.get("symbols", ())
        if kind == "fixed":
            return isinstance(value, str)
        if kind == "array":
            return isinstance(value, list) and all(
                self.conforms(schema["items"], v, namespace) for v in value)
        if kind == "map":
            return isinstance(value, dict) and all(
                self.conforms(schema["values"], v, namespace) for v in value.values())
        return self.conforms(kind, value, namespace)


def decode_alert(obj: Mapping[str, Any], schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """Alert dict from one parsed JSON line, restoring types with ``schema`` if given.

    Without a schema the JSON values are returned as they are (bytes stay base64 text).
    """
    if schema is None:
        return dict(obj)
    return schema_decoder(schema)(obj)


def schema_decoder(schema: Mapping[str, Any]) -> Any:
    """A function ``parsed JSON line -> alert dict`` for ``schema`` (build once, reuse)."""
    decoder = _SchemaDecoder(schema)
    return lambda obj: decoder.decode(schema, obj)


def conforms(obj: Any, schema: Mapping[str, Any]) -> bool:
    """True when the parsed JSON line ``obj`` is an alert of ``schema`` as written by
    :func:`encode_alert` (exact nested field names and JSON value forms)."""
    return _SchemaDecoder(schema).conforms(schema, obj)
