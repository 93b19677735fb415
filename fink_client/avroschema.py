"""What every Avro schema walker needs: the primitive types and named-type resolution.

The walkers (:mod:`fink_client.fastdecode`, :mod:`fink_client.io.arrow`,
:mod:`fink_client.io.jsonlines`, ``io.writers.first_mismatch``, :mod:`fink_client.synth`,
:mod:`fink_client.viz.schematree`) each turn a schema into something different, but
all of them must agree on what a type name means. The rules (Avro specification,
as fastavro applies them):

- a named type (record, error, enum, fixed) has the full name ``namespace.name``:
  a dotted ``name`` is already full (its ``namespace`` key is ignored); otherwise the
  ``namespace`` key, else the namespace of the enclosing named type;
- the types inside a named type are resolved in the namespace of its full name;
- a reference ``x`` in namespace ``ns`` means ``ns.x``, else ``x`` in the null
  namespace. An undotted reference matching neither is looked up by the last part of
  the full names (first definition), as the walkers always did for hand-written
  schemas (fastavro rejects such schemas before they get here).

>>> names: NamedTypes[str] = NamedTypes()
>>> names.define({"type": "enum", "name": "band", "symbols": ["g"]}, "lsst", "enum band")
'lsst.band'
>>> names.get("band", "lsst"), names.get("lsst.band", None), names.get("band", None)
('enum band', 'enum band', 'enum band')
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

#: The Avro primitive types, in the specification's order.
PRIMITIVES: tuple[str, ...] = (
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
)
#: The kinds of the types that have a name (and can be referred to by it).
NAMED_KINDS = frozenset({"record", "error", "enum", "fixed"})

V = TypeVar("V")


def full_name(schema: Mapping[str, Any], namespace: str | None) -> str:
    """Full name of the named type ``schema`` defined inside ``namespace``."""
    name = str(schema["name"])
    if "." in name:
        return name
    ns = schema.get("namespace", namespace)
    return f"{ns}.{name}" if ns else name


def namespace_of(name: str) -> str | None:
    """Namespace part of a full name (``None`` for the null namespace): where the types
    inside that named type are resolved."""
    return name.rsplit(".", 1)[0] if "." in name else None


def resolve(ref: str, namespace: str | None) -> str:
    """Full name that the reference ``ref`` denotes inside ``namespace``."""
    return ref if "." in ref or not namespace else f"{namespace}.{ref}"


class NamedTypes(Generic[V]):
    """Named types met so far, by full name, each with what a walker made of it."""

    def __init__(self) -> None:
        self._by_full: dict[str, V] = {}
        self._by_short: dict[str, str] = {}

    def add(self, name: str, value: V) -> None:
        """Register ``value`` under the full ``name`` (the first definition stays)."""
        self._by_full.setdefault(name, value)
        self._by_short.setdefault(name.rsplit(".", 1)[-1], name)

    def define(self, schema: Mapping[str, Any], namespace: str | None, value: V) -> str:
        """Register the named type ``schema`` defined inside ``namespace``; its full name."""
        name = full_name(schema, namespace)
        self.add(name, value)
        return name

    def find(self, ref: str, namespace: str | None) -> str | None:
        """Full name of the registered type ``ref`` refers to inside ``namespace``."""
        for name in (resolve(ref, namespace), ref):
            if name in self._by_full:
                return name
        return None if "." in ref else self._by_short.get(ref)

    def get(self, ref: str, namespace: str | None) -> V | None:
        """What was registered for the type ``ref`` refers to, or ``None``."""
        name = self.find(ref, namespace)
        return None if name is None else self._by_full[name]

    def __getitem__(self, name: str) -> V:
        return self._by_full[name]


def named_types(schema: Any, namespace: str | None = None
                ) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(full name, definition)`` of every named type defined in ``schema``, in
    document order (a definition comes before what it contains)."""
    if isinstance(schema, list):
        for branch in schema:
            yield from named_types(branch, namespace)
        return
    if not isinstance(schema, Mapping):
        return
    kind = schema.get("type")
    if isinstance(kind, (list, Mapping)):
        yield from named_types(kind, namespace)
    elif kind in NAMED_KINDS:
        name = full_name(schema, namespace)
        yield name, schema
        for field in schema.get("fields", ()):
            yield from named_types(field["type"], namespace_of(name))
    elif kind == "array":
        yield from named_types(schema["items"], namespace)
    elif kind == "map":
        yield from named_types(schema["values"], namespace)


def collect(schema: Any) -> NamedTypes[Mapping[str, Any]]:
    """Every named type of ``schema`` by full name (references may precede a value)."""
    names: NamedTypes[Mapping[str, Any]] = NamedTypes()
    for name, definition in named_types(schema):
        names.add(name, definition)
    return names
