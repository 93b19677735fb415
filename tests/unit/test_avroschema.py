"""fink_client.avroschema: full names, namespaces and the named-type registry shared by
every schema walker, and the walkers agreeing on them."""

from __future__ import annotations

import json

import fastavro

from fink_client import avroschema, codec, fastdecode, synth
from fink_client.io import arrow, jsonlines, writers
from fink_client.viz import schematree

# A dotted record name sets the namespace of what it contains (x), whatever the
# enclosing namespace (a.b); a "namespace" key sets it for an undotted name (z).
SCHEMA = {"type": "record", "name": "top", "namespace": "a.b", "fields": [
    {"name": "r", "type": {"type": "record", "name": "x.inner", "fields": [
        {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["P", "Q"]}},
        {"name": "f", "type": {"type": "fixed", "name": "F", "namespace": "z", "size": 3}},
        {"name": "g", "type": {"type": "record", "name": "leaf", "fields": [
            {"name": "v", "type": "double"}]}}]}},
    {"name": "r2", "type": ["null", "x.inner"]},
    {"name": "e2", "type": "x.E"},
    {"name": "f2", "type": "z.F"},
    {"name": "m", "type": {"type": "map", "values": {"type": "array", "items": "x.leaf"}}},
]}


def test_full_names_follow_the_specification() -> None:
    assert avroschema.full_name({"name": "a"}, None) == "a"
    assert avroschema.full_name({"name": "a"}, "ns") == "ns.a"
    assert avroschema.full_name({"name": "a", "namespace": "own"}, "ns") == "own.a"
    assert avroschema.full_name({"name": "a", "namespace": ""}, "ns") == "a"
    assert avroschema.full_name({"name": "p.a", "namespace": "own"}, "ns") == "p.a"
    assert avroschema.namespace_of("p.q.a") == "p.q"
    assert avroschema.namespace_of("a") is None
    assert avroschema.resolve("a", "ns") == "ns.a"
    assert avroschema.resolve("p.a", "ns") == "p.a"
    assert avroschema.resolve("a", None) == "a"


def test_named_types_in_document_order_with_full_names() -> None:
    names = [name for name, _ in avroschema.named_types(SCHEMA)]
    assert names == ["a.b.top", "x.inner", "x.E", "z.F", "x.leaf"]
    # fastavro agrees on every full name
    assert set(names) == set(codec.parse_schema(SCHEMA)["__named_schemas"])


def test_lookup_namespace_first_then_null_namespace_then_short_name() -> None:
    names: avroschema.NamedTypes[str] = avroschema.NamedTypes()
    names.add("ns.a", "in ns")
    names.add("a", "in null namespace")
    names.add("other.b", "b elsewhere")
    assert names.get("a", "ns") == "in ns"
    assert names.get("a", "zz") == "in null namespace"
    assert names.get("a", None) == "in null namespace"
    assert names.get("b", "ns") == "b elsewhere"  # lenient, as the walkers always were
    assert names.get("x.b", "ns") is None  # a dotted reference is exact
    assert names.find("c", "ns") is None
    names.add("ns.a", "redefined")
    assert names.get("ns.a", None) == "in ns"  # the first definition stays


def test_walker_tables_cover_exactly_the_primitives() -> None:
    assert set(fastdecode._PRIMITIVES) == set(avroschema.PRIMITIVES)
    assert set(arrow._PRIMITIVES) == set(avroschema.PRIMITIVES)
    assert set(jsonlines._PRIMITIVE_JSON) == set(avroschema.PRIMITIVES)
    assert set(writers._AVRO_TYPES) == set(avroschema.PRIMITIVES)


def test_every_walker_resolves_the_same_names() -> None:
    parsed = codec.parse_schema(SCHEMA)
    program = fastdecode.compile_program(parsed)
    assert program[0] == fastdecode.RECORD

    typ = arrow.avro_to_arrow_schema(SCHEMA)
    assert typ.field("e2").type == typ.field("r").type.field("e").type
    assert typ.field("r2").type == typ.field("r").type
    assert typ.field("f2").type == typ.field("r").type.field("f").type

    tree = schematree.format_schema_tree(SCHEMA)
    assert "e2: enum E {P, Q} (as above)" in tree
    assert "f2: fixed F(3) (as above)" in tree
    assert "r2: null | record inner (as above)" in tree
    assert "m: map<string, array<record leaf (as above)>>" in tree

    records = list(synth.generate(SCHEMA, 20, seed=5))
    for record in records:
        assert record["e2"] in ("P", "Q")
        assert isinstance(record["f2"], bytes) and len(record["f2"]) == 3
        fastavro.validate(record, parsed, raise_errors=True)
        line = json.loads(jsonlines.encode_alert(record))
        assert jsonlines.conforms(line, SCHEMA)
        assert jsonlines.decode_alert(line, SCHEMA) == record
        assert writers.first_mismatch(record, SCHEMA) is None

    bad = dict(records[0], r2=dict(records[0]["r"], e="R"), f2=b"toolong")
    assert writers.first_mismatch(bad, SCHEMA) == ("r2.e", "'R' is not a symbol")
    assert writers.first_mismatch(dict(records[0], f2=b"x"), SCHEMA) == (
        "f2", "is not 3 bytes")
