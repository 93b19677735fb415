"""Evaluate Avro decoders against fastavro: speed and identical dicts (NaN-aware).

``python -m benchmarks.candidates`` times every decoder that imports (fastavro, our C
fast path, and PyPI alternatives if installed: cavro, spavro, avroc, cerializer) on
the bundled sample alerts, and checks each gives exactly fastavro's dicts on every
sample alert and on synthetic alerts of every bundled schema. The PyPI candidates are
not dependencies: install them in a scratch virtualenv to rerun this.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import time
from collections.abc import Callable
from typing import Any

import fastavro

from benchmarks import data
from fink_client import codec, schemas

Decode = Callable[[bytes], Any]


def _fastavro(schema_json: Any) -> Decode:
    parsed = codec.parse_schema(schema_json)
    return lambda b: fastavro.schemaless_reader(io.BytesIO(b), parsed, None)


def _fink(schema_json: Any) -> Decode:
    reader = codec.fast_reader(codec.parse_schema(schema_json))
    if reader is None:
        raise RuntimeError("fast path unavailable for this schema")
    return reader


def _cavro(schema_json: Any) -> Decode:
    import cavro

    schema = cavro.Schema(schema_json, record_decodes_to_dict=True)
    return schema.binary_decode


def _spavro(schema_json: Any) -> Decode:
    from spavro import io as sio
    from spavro import schema

    reader = sio.DatumReader(schema.parse(json.dumps(schema_json)))
    return lambda b: reader.read(sio.BinaryDecoder(io.BytesIO(b)))


def _avroc(schema_json: Any) -> Decode:
    import avroc

    decoder = avroc.compile_decoder(schema_json)
    return lambda b: decoder(io.BytesIO(b))


def _cerializer(schema_json: Any) -> Decode:
    from cerializer.cerializer_handler import Cerializer
    from cerializer.schema_handler import CerializerSchemata

    name = schema_json["name"]
    namespace = schema_json.get("namespace") or "ns"
    if "." in name:
        namespace, name = name.rsplit(".", 1)
    ident = f"{namespace}.{name}"
    handler = Cerializer(CerializerSchemata([(ident, schema_json)]), namespace, name)
    return handler.deserialize


CANDIDATES: dict[str, Callable[[Any], Decode]] = {
    "fastavro": _fastavro,
    "fink_client C": _fink,
    "cavro": _cavro,
    "spavro": _spavro,
    "avroc": _avroc,
    "cerializer": _cerializer,
}


def differs(a: Any, b: Any) -> str | None:
    """First difference between two decoded values, or None (NaN equals NaN)."""
    if type(a) is not type(b):
        return f"{type(a).__name__} vs {type(b).__name__}: {a!r:.60} vs {b!r:.60}"
    if isinstance(a, float):
        return None if (a == b or (math.isnan(a) and math.isnan(b))) else f"{a} vs {b}"
    if isinstance(a, dict):
        if list(a) != list(b):
            return f"keys {list(a)[:5]} vs {list(b)[:5]}"
        for k in a:
            d = differs(a[k], b[k])
            if d:
                return f"{k}: {d}"
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"length {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            d = differs(x, y)
            if d:
                return f"[{i}]: {d}"
        return None
    return None if a == b else f"{a!r:.60} vs {b!r:.60}"


def evaluate(name: str, seconds: float = 1.0) -> dict[str, Any]:
    """Speed on each sample set and equality over samples + synthetic alerts."""
    factory = CANDIDATES[name]
    out: dict[str, Any] = {"candidate": name, "speed": {}, "identical": True, "notes": []}
    sets = data.sample_sets()
    for label, (schema_json, payloads) in sets.items():
        try:
            dec = factory(schema_json)
            ref = _fastavro(schema_json)
            for p in payloads:
                d = differs(dec(p), ref(p))
                if d:
                    out["identical"] = False
                    out["notes"].append(f"{label}: {d}")
                    break
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                for p in payloads:
                    dec(p)
                n += len(payloads)
            out["speed"][label] = (time.perf_counter() - start) / n * 1e6
        except Exception as exc:
            out["identical"] = False
            out["notes"].append(f"{label}: {type(exc).__name__}: {str(exc)[:120]}")
    for schema_name in sorted(schemas.bundled()):
        schema_json = schemas.load(schema_name)
        try:
            dec, ref = factory(schema_json), _fastavro(schema_json)
            for p in data.synthetic_payloads(schema_json, 20, seed=1):
                d = differs(dec(p), ref(p))
                if d:
                    out["identical"] = False
                    out["notes"].append(f"synthetic {schema_name}: {d}")
                    break
        except Exception as exc:
            out["identical"] = False
            out["notes"].append(f"synthetic {schema_name}: {type(exc).__name__}: "
                                f"{str(exc)[:120]}")
    return out


def main(argv: list[str] | None = None) -> int:
    """Print one line per candidate: µs/alert per sample set, and identical or not."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=1.0, help="timing per sample set")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args(argv)
    results = []
    base: dict[str, float] = {}
    for name in CANDIDATES:
        res = evaluate(name, args.seconds)
        if name == "fastavro":
            base = res["speed"]
        results.append(res)
        speeds = ", ".join(
            f"{k} {v:.1f} µs ({base.get(k, v) / v:.2f}x)" for k, v in res["speed"].items()
        )
        print(f"{name:14s} identical={res['identical']!s:5s} {speeds}")
        for note in res["notes"][:4]:
            print(f"{'':14s} - {note}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
