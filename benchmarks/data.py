"""Benchmark inputs: the bundled sample alerts and seeded synthetic alerts.

Synthetic alerts come from ``fink_client.synth.generate`` (realistic sizes: histories,
cutouts of real size).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastavro

from fink_client import codec, schemas, synth

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


def synthetic_records(schema_json: dict, n: int, seed: int = 0) -> Iterator[dict]:
    """``n`` seeded synthetic records for ``schema_json``."""
    yield from synth.generate(schema_json, n, seed)


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


def container_values(set_name: str, n: int = 40) -> list[bytes]:
    """Raw ZTF Avro-container messages (one alert each, as raw ZTF streams send them):
    the bundled raw ZTF sample files as they are, or ``n`` synthetic raw ZTF alerts each
    written to its own container."""
    if set_name == "samples":
        return [p.read_bytes() for p in sorted(SAMPLES.glob("ztf/raw*/*.avro"))]
    schema_json = schemas.load(SYNTH_SCHEMAS["raw ZTF"])
    out = []
    for record in synthetic_records(schema_json, n, seed=3):
        buf = io.BytesIO()
        fastavro.writer(buf, schema_json, [record])
        out.append(buf.getvalue())
    return out


LIGHT_DROP = ("prv_candidates", "cutoutScience", "cutoutTemplate", "cutoutDifference")


def light_schema(schema_json: dict) -> dict:
    """``schema_json`` without history and cutouts (for the million-alert Parquet runs)."""
    out = dict(schema_json)
    out["fields"] = [f for f in schema_json["fields"] if f["name"] not in LIGHT_DROP]
    return out
