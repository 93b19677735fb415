"""Compile a fastavro-parsed schema into a program for the C decoder ``_fastdecode``.

The program is a tree of tuples, one per schema node (see ``_fastdecode.c``):
primitives are ``(kind,)``; a record is ``(RECORD, names, fields)``; arrays and maps
``(kind, child)``; unions ``(UNION, branches)``; enums ``(ENUM, symbols)``; fixed
``(FIXED, size)``; a logical type ``(LOGICAL, child, converter, schema)`` where
``converter`` is fastavro's own reader for it, so the values are fastavro's.

The same compiled Reader also decodes a whole batch of payloads into Arrow columns
(``Reader.decode_arrow``, see ``_arrow.c``): :func:`build_arrow_reader` wraps it into
a callable ``payloads -> pyarrow.RecordBatch``, after checking once that the Arrow
schema the C code exports equals the one :mod:`fink_client.io.arrow` derives.

:func:`compile_program` raises :class:`Unsupported` for what the fast path does not
handle (recursive named types, unknown type names); the caller then uses fastavro.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fink_client.avroschema import PRIMITIVES, NamedTypes

if TYPE_CHECKING:
    from fink_client._fastdecode import Reader as _ReaderType


def _load_c_reader() -> type[_ReaderType] | None:
    try:  # the C extension is optional: without it, codec uses fastavro
        from fink_client._fastdecode import Reader
    except ImportError:  # pragma: no cover - depends on the build
        return None
    return Reader


_CReader = _load_c_reader()

NULL, BOOLEAN, INT, LONG, FLOAT, DOUBLE, BYTES, STRING = range(8)  # PRIMITIVES' order
RECORD, ARRAY, MAP, UNION, ENUM, FIXED, LOGICAL = range(8, 15)

_PRIMITIVES = dict(zip(PRIMITIVES, range(8), strict=True))


class Unsupported(ValueError):
    """The fast path cannot decode this schema; use fastavro instead."""


def available() -> bool:
    """True if the C extension was built and imports."""
    return _CReader is not None


def _logical_readers() -> dict[str, Callable[..., Any]]:
    from fastavro.logical_readers import LOGICAL_READERS

    return LOGICAL_READERS


def compile_program(parsed_schema: Any) -> tuple:
    """Program tuple for a schema as returned by ``fastavro.parse_schema``.

    fastavro names every type of a parsed schema by its full name, so no namespace is
    followed here (``None`` throughout).
    """
    named: NamedTypes[Any] = NamedTypes()
    if isinstance(parsed_schema, dict):
        # fastavro keeps every named type of the schema here; definitions met during
        # the walk are added too, so a schema without this key works as well.
        for name, definition in (parsed_schema.get("__named_schemas") or {}).items():
            named.add(name, definition)
    return _compile(parsed_schema, named, ())


def _compile(schema: Any, named: NamedTypes[Any], stack: tuple[str, ...]) -> tuple:
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return (_PRIMITIVES[schema],)
        name = named.find(schema, None)
        if name is None:
            raise Unsupported(f"unknown type name {schema!r}")
        if name in stack:
            raise Unsupported(f"recursive type {schema!r}")
        return _compile(named[name], named, stack)
    if isinstance(schema, list):
        return (UNION, tuple(_compile(branch, named, stack) for branch in schema))
    if not isinstance(schema, dict):
        raise Unsupported(f"unexpected schema node {schema!r}")
    kind = schema.get("type")
    if isinstance(kind, (dict, list)):  # {"type": {...}} wrapper
        return _compile(kind, named, stack)
    if "logicalType" in schema:
        fn = _logical_readers().get(f"{kind}-{schema['logicalType']}")
        if fn is not None:
            plain = {k: v for k, v in schema.items() if k != "logicalType"}
            return (LOGICAL, _compile(plain, named, stack), fn, schema)
        # fastavro ignores unknown logical types: so do we
    if kind in _PRIMITIVES:
        return (_PRIMITIVES[kind],)
    name = schema.get("name")
    if kind in ("record", "error"):
        if name:
            stack = (*stack, named.define(schema, None, schema))
        fields = schema.get("fields", [])
        return (
            RECORD,
            tuple(str(f["name"]) for f in fields),
            tuple(_compile(f["type"], named, stack) for f in fields),
        )
    if kind == "array":
        return (ARRAY, _compile(schema["items"], named, stack))
    if kind == "map":
        return (MAP, _compile(schema["values"], named, stack))
    if kind == "enum":
        if name:
            named.define(schema, None, schema)
        return (ENUM, tuple(str(s) for s in schema["symbols"]))
    if kind == "fixed":
        if name:
            named.define(schema, None, schema)
        return (FIXED, int(schema["size"]))
    if isinstance(kind, str):
        return _compile(kind, named, stack)  # a named type given as {"type": "name"}
    raise Unsupported(f"unsupported schema node type {kind!r}")


def build_reader(parsed_schema: Any, trailing_exc: type[BaseException]) -> Callable[[bytes], dict]:
    """C reader for ``parsed_schema``; raises :class:`Unsupported` if it cannot be built."""
    if _CReader is None:
        raise Unsupported("the C extension fink_client._fastdecode is not built")
    return _CReader(compile_program(parsed_schema), trailing_exc)


class ArrowReader:
    """Callable ``payloads -> pyarrow.RecordBatch`` decoding in C, without Python objects.

    ``schema`` is the Arrow schema of the batches (io.arrow's, metadata included). A bad
    payload raises the walker's exception with attribute ``batch_index``; a batch too
    large for 32-bit offsets raises :class:`OverflowError`.
    """

    __slots__ = ("_reader", "schema")

    def __init__(self, reader: Any, schema: Any) -> None:
        self._reader = reader
        self.schema = schema

    def __call__(self, payloads: Any) -> Any:
        import pyarrow as pa

        capsule, address = self._reader.decode_arrow(payloads)
        # pyarrow moves the array out of the struct; the capsule then frees the struct.
        batch = pa.RecordBatch._import_from_c(address, self.schema)
        del capsule
        return batch


def build_arrow_reader(
    parsed_schema: Any, arrow_schema: Any, trailing_exc: type[BaseException],
    views: bool = False,
) -> ArrowReader:
    """C batch decoder for ``parsed_schema`` giving batches of ``arrow_schema``.

    With ``views``, its bytes columns are ``binary_view`` pointing into the payloads
    (which each batch keeps alive) instead of a copy of them.

    Raises :class:`Unsupported` if the extension is missing, the schema cannot be
    compiled, or the Arrow schema the C builder exports differs from ``arrow_schema``
    (then the caller builds batches from dicts instead).
    """
    import pyarrow as pa

    if _CReader is None:
        raise Unsupported("the C extension fink_client._fastdecode is not built")
    reader = _CReader(compile_program(parsed_schema), trailing_exc, views)
    try:
        capsule, address = reader.arrow_schema()
    except ValueError as exc:
        raise Unsupported(f"no C Arrow builder for this schema: {exc}") from exc
    exported = pa.Schema._import_from_c(address)
    del capsule
    if not exported.equals(arrow_schema, check_metadata=False):
        raise Unsupported(
            f"C Arrow builder schema differs from io.arrow's:\n{exported}\n!=\n{arrow_schema}"
        )
    return ArrowReader(reader, arrow_schema)
