"""An Avro schema as a tree of field names, types and docs (the schema explorer).

Alert schemas are deep (ZTF: ``candidate`` has ~100 fields, ``prv_candidates`` is an
array of records) and their JSON is tens of KB: a tree is how people read them.

>>> print(format_schema_tree({"type": "record", "name": "a", "fields": [
...     {"name": "x", "type": ["null", "double"], "doc": "a number"}]}))
a (record)
└── x: double | null — a number
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fink_client.avroschema import PRIMITIVES, NamedTypes, full_name, namespace_of
from fink_client.errors import SchemaError


@dataclass(frozen=True)
class SchemaField:
    """One field of a schema tree: depth (0 = top-level field), dotted path, type, doc."""

    depth: int
    path: str
    name: str
    type: str
    doc: str
    last: bool  # last child of its parent (for drawing the tree)


def _full_name(schema: Mapping[str, Any], namespace: str | None) -> str:
    """Full name of a named type; ``?`` for a definition without a name (shown as is)."""
    return full_name(schema, namespace) if "name" in schema else "?"


class _Walker:
    def __init__(self, max_depth: int | None) -> None:
        self.max_depth = max_depth
        self.named: NamedTypes[Mapping[str, Any]] = NamedTypes()
        self.rows: list[SchemaField] = []

    def type_name(self, t: Any, ns: str | None) -> str:
        """Short type text; registers named types on the way."""
        if isinstance(t, str):
            if t in PRIMITIVES:
                return t
            full = self.named.find(t, ns)
            if full is None:
                return t
            # A named type used again: same text as where it was defined.
            return self.type_name(self.named[full], namespace_of(full)) + " (as above)"
        if isinstance(t, list):
            return " | ".join(self.type_name(x, ns) for x in t) or "?"
        if not isinstance(t, Mapping):
            raise SchemaError(f"not an Avro type: {t!r}")
        kind = t.get("type")
        logical = t.get("logicalType")
        if kind in ("record", "error", "enum", "fixed"):
            full = _full_name(t, ns)
            self.named.add(full, t)
            short = full.rsplit(".", 1)[-1]
            if kind == "enum":
                symbols = list(t.get("symbols", []))
                shown = ", ".join(symbols[:6]) + (", ..." if len(symbols) > 6 else "")
                return f"enum {short} {{{shown}}}"
            if kind == "fixed":
                return f"fixed {short}({t.get('size')})"
            return f"record {short}"
        if kind == "array":
            return f"array<{self.type_name(t.get('items'), ns)}>"
        if kind == "map":
            return f"map<string, {self.type_name(t.get('values'), ns)}>"
        text = self.type_name(kind, ns)
        return f"{text} ({logical})" if logical else text

    def records_in(self, t: Any, ns: str | None) -> list[tuple[Mapping[str, Any], str | None]]:
        """Record definitions reachable from a field type through unions/arrays/maps."""
        if isinstance(t, list):
            return [r for x in t for r in self.records_in(x, ns)]
        if isinstance(t, Mapping):
            kind = t.get("type")
            if kind in ("record", "error") and "fields" in t:
                return [(t, namespace_of(_full_name(t, ns)))]
            if kind == "array":
                return self.records_in(t.get("items"), ns)
            if kind == "map":
                return self.records_in(t.get("values"), ns)
            if isinstance(kind, (Mapping, list)):
                return self.records_in(kind, ns)
        return []

    def walk(self, record: Mapping[str, Any], ns: str | None, depth: int, prefix: str) -> None:
        fields = record.get("fields")
        if not isinstance(fields, list):
            raise SchemaError(f"record {record.get('name')!r} has no 'fields' list")
        for i, field in enumerate(fields):
            if not isinstance(field, Mapping) or "name" not in field or "type" not in field:
                raise SchemaError(f"malformed field in record {record.get('name')!r}: {field!r}")
            name = str(field["name"])
            path = f"{prefix}{name}"
            ftype = field["type"]
            self.rows.append(SchemaField(depth, path, name, self.type_name(ftype, ns),
                                         " ".join(str(field.get("doc", "")).split()),
                                         i == len(fields) - 1))
            if self.max_depth is not None and depth + 1 >= self.max_depth:
                continue
            for sub, sub_ns in self.records_in(ftype, ns):
                self.walk(sub, sub_ns, depth + 1, f"{path}.")


def schema_fields(schema: Mapping[str, Any], *, max_depth: int | None = None) -> list[SchemaField]:
    """Every field of a record schema, depth first, with its type text and doc.

    Nested records (directly, in unions, arrays or maps) are expanded below their field;
    a record referenced again by name is not expanded twice. ``max_depth`` limits the
    nesting shown (1 = top-level fields only). Raises :class:`SchemaError` if
    ``schema`` is not an Avro record schema.
    """
    if not isinstance(schema, Mapping) or schema.get("type") not in ("record", "error"):
        raise SchemaError("not an Avro record schema (a JSON object with \"type\": \"record\")")
    walker = _Walker(max_depth)
    walker.walk(schema, schema.get("namespace"), 0, "")
    return walker.rows


def format_schema_tree(schema: Mapping[str, Any], *, max_depth: int | None = None,
                       docs: bool = True) -> str:
    """The schema as a text tree: ``name: type — doc`` per line, drawn with box characters."""
    rows = schema_fields(schema, max_depth=max_depth)
    title = _full_name(schema, None)
    lines = [f"{title} ({schema.get('type')})"]
    open_levels: list[bool] = []  # per depth: does the parent still have siblings below?
    for row in rows:
        del open_levels[row.depth:]
        indent = "".join("│   " if more else "    " for more in open_levels)
        branch = "└── " if row.last else "├── "
        text = f"{indent}{branch}{row.name}: {row.type}"
        if docs and row.doc:
            text += f" — {row.doc}"
        lines.append(text)
        open_levels.append(not row.last)
    return "\n".join(lines)
