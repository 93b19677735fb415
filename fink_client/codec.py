"""Schemaless Avro record decoding: the one place where bytes become a dict.

:func:`compile_reader` turns a parsed schema into a function ``bytes -> dict``. The
reference implementation is fastavro; the fast path is a C decoder that walks a
program compiled from the schema (:mod:`fink_client.fastdecode`), used whenever it was
built and handles the schema. Both give exactly the same dicts (tests compare them on
every bundled schema, sample alert and synthetic alerts).

A reader is *strict*: it raises if the payload is truncated (a length prefix that
points past the end) or if bytes are left over after the record, so that a value
written with another schema is reported instead of silently mis-decoded.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

import fastavro

Reader = Callable[[bytes], dict]


class TrailingBytesError(ValueError):
    """The record ended before the payload did: probably the wrong schema."""


def as_record(value: object) -> dict[str, Any]:
    """``value`` (decoded by fastavro) as a record dict; ``ValueError`` if it is not one.

    fastavro types its results as any Avro value; alerts are records, and a dict is what
    every reader of this package promises, so a schema whose top level is not a record
    is refused here rather than passed on under the wrong type.
    """
    if not isinstance(value, dict):
        raise ValueError(f"expected an Avro record, got {type(value).__name__}: "
                        "the schema's top level is not a record")
    return value


def parse_schema(schema: dict | list | str) -> Any:
    """Parse an Avro schema (dict, or JSON text) with fastavro, without name clashes.

    ``named_schemas`` is private to each call so that two Fink schemas that reuse the
    same record names (``topLevelRecord``...) never clash.
    """
    if isinstance(schema, (str, bytes)):
        import json

        schema = json.loads(schema)
    return fastavro.parse_schema(schema, named_schemas={})


def fastavro_reader(parsed_schema: Any) -> Reader:
    """The reference reader: fastavro's ``schemaless_reader`` plus strict length checks."""

    def read(payload: bytes) -> dict:
        buf = io.BytesIO(payload)
        record = fastavro.schemaless_reader(buf, parsed_schema, None)
        if buf.tell() != len(payload):
            raise TrailingBytesError(
                f"{len(payload) - buf.tell()} bytes left after the record "
                f"({len(payload)} bytes in all): wrong schema for this payload?"
            )
        return as_record(record)

    return read


def fast_reader(parsed_schema: Any) -> Reader | None:
    """The C schema-compiled reader for ``parsed_schema``, or ``None`` if unavailable.

    ``None`` when the extension was not built or the schema uses something it does not
    handle (e.g. recursive types).
    """
    from fink_client import fastdecode

    try:
        return fastdecode.build_reader(parsed_schema, TrailingBytesError)
    except fastdecode.Unsupported:
        return None


def compile_reader(parsed_schema: Any) -> Reader:
    """Return the fastest available strict reader for ``parsed_schema``.

    The C fast path when it can handle the schema, fastavro otherwise. Set the
    environment variable ``FINK_CLIENT_NO_FASTPATH=1`` to force fastavro.
    """
    if not os.environ.get("FINK_CLIENT_NO_FASTPATH"):
        reader = fast_reader(parsed_schema)
        if reader is not None:
            return reader
    return fastavro_reader(parsed_schema)


Validator = Callable[[bytes], None]


def validator(reader: Reader) -> Validator:
    """A function that raises exactly when ``reader`` would, for the same payload.

    A C reader walks the payload without building any object (``Reader.validate``); a
    fastavro reader decodes and the result is dropped. For writers that copy the raw
    bytes (Avro pass-through) and must still refuse a corrupt value.
    """
    validate = getattr(reader, "validate", None)
    if validate is not None:
        return validate

    def check(payload: bytes) -> None:
        reader(payload)

    return check


def compile_validator(parsed_schema: Any) -> Validator:
    """:func:`validator` of the reader :func:`compile_reader` gives for ``parsed_schema``."""
    return validator(compile_reader(parsed_schema))
