"""Benchmark inputs: the bundled sample alerts and seeded synthetic alerts.

Synthetic alerts come from ``fink_client.synth.generate`` when it is available, else
from a small seeded generator here that gives alert-like sizes (a few tens of history
entries, ~15 KB cutouts).
"""

from __future__ import annotations

import functools
import io
import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastavro

from fink_client import codec, schemas

SAMPLES = Path(codec.__file__).resolve().parent / "data" / "samples"

SAMPLE_DIRS = {
    "Fink ZTF": "ztf/fink",
    "raw ZTF": "ztf/raw",
    "Fink LSST": "lsst/fink-7.4",
}
SYNTH_SCHEMAS = {
    "Fink ZTF": "distribution_schema_fink_ztf_2.7_3.10.1",
    "raw ZTF": "ztf_alert_3.3",
    "Fink LSST": "avro_schema_ftransfer_lsst_2026-03-18",
}


def encode(parsed: Any, record: dict) -> bytes:
    """Schemaless Avro bytes of ``record``."""
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, record)
    return buf.getvalue()


@functools.cache
def sample_sets() -> dict[str, tuple[dict, list[bytes]]]:
    """Label -> (writer schema, schemaless payloads) of the bundled sample alerts."""
    out: dict[str, tuple[dict, list[bytes]]] = {}
    for label, sub in SAMPLE_DIRS.items():
        schema: dict | None = None
        payloads: list[bytes] = []
        for path in sorted((SAMPLES / sub).glob("*.avro")):
            with open(path, "rb") as fh:
                reader = fastavro.reader(fh)
                schema = reader.writer_schema
                parsed = codec.parse_schema(schema)
                payloads.extend(encode(parsed, rec) for rec in reader)
        if schema is not None:
            out[label] = (schema, payloads)
    return out


class _Gen:
    """Seeded random records from a fastavro-parsed schema, with alert-like sizes."""

    def __init__(self, seed: int, named: dict[str, Any]) -> None:
        self.rnd = random.Random(seed)
        self.named = named

    def value(self, schema: Any, field: str = "", depth: int = 0) -> Any:
        r = self.rnd
        if isinstance(schema, list):
            non_null = [s for s in schema if s != "null"]
            if not non_null or r.random() < 0.15:
                return None
            return self.value(r.choice(non_null), field, depth)
        if isinstance(schema, str):
            if schema in self.named:
                return self.value(self.named[schema], field, depth)
            schema = {"type": schema}
        t = schema["type"]
        if isinstance(t, (dict, list)):
            return self.value(t, field, depth)
        if schema.get("logicalType") in ("timestamp-micros", "timestamp-millis"):
            return r.randint(1_600_000_000_000_000, 1_800_000_000_000_000) // (
                1000 if schema["logicalType"] == "timestamp-millis" else 1)
        if t == "null":
            return None
        if t == "boolean":
            return r.random() < 0.5
        if t == "int":
            return r.randint(-(2**31), 2**31 - 1) if r.random() < 0.3 else r.randint(0, 999)
        if t == "long":
            return r.randint(0, 2**62)
        if t in ("float", "double"):
            return math.nan if r.random() < 0.05 else r.uniform(-100, 100)
        if t == "bytes":
            n = r.randint(12_000, 16_000) if "stamp" in field.lower() or "cutout" in field.lower() \
                else r.randint(0, 64)
            return r.randbytes(n)
        if t == "string":
            return "".join(r.choices("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", k=r.randint(4, 16)))
        if t == "array":
            n = r.randint(10, 40) if depth < 2 else r.randint(0, 3)
            return [self.value(schema["items"], field, depth + 1) for _ in range(n)]
        if t == "map":
            n = r.randint(0, 5)
            return {f"k{i}": self.value(schema["values"], field, depth + 1) for i in range(n)}
        if t == "enum":
            return r.choice(schema["symbols"])
        if t == "fixed":
            return r.randbytes(schema["size"])
        if t in ("record", "error"):
            return {f["name"]: self.value(f["type"], f["name"], depth + 1)
                    for f in schema["fields"]}
        return self.value(self.named[t], field, depth)


def synthetic_records(schema_json: dict, n: int, seed: int = 0) -> Iterator[dict]:
    """``n`` seeded synthetic records for ``schema_json``."""
    try:
        from fink_client import synth
    except ImportError:
        synth = None
    if synth is not None and hasattr(synth, "generate"):
        yield from synth.generate(schema_json, n, seed)
        return
    parsed = codec.parse_schema(schema_json)
    gen = _Gen(seed, parsed.get("__named_schemas") or {})
    for _ in range(n):
        yield gen.value(parsed)


def synthetic_payloads(schema_json: dict, n: int, seed: int = 0) -> list[bytes]:
    """Schemaless payloads of ``n`` synthetic records."""
    parsed = codec.parse_schema(schema_json)
    return [encode(parsed, rec) for rec in synthetic_records(schema_json, n, seed)]


def synthetic_sets(n: int = 50, seed: int = 0) -> dict[str, tuple[dict, list[bytes]]]:
    """Label -> (schema, payloads) of synthetic alerts for each survey."""
    out = {}
    for label, name in SYNTH_SCHEMAS.items():
        schema_json = schemas.load(name)
        out[label] = (schema_json, synthetic_payloads(schema_json, n, seed))
    return out


LIGHT_DROP = ("prv_candidates", "cutoutScience", "cutoutTemplate", "cutoutDifference")


def light_schema(schema_json: dict) -> dict:
    """``schema_json`` without history and cutouts (for the million-alert Parquet runs)."""
    out = dict(schema_json)
    out["fields"] = [f for f in schema_json["fields"] if f["name"] not in LIGHT_DROP]
    return out
