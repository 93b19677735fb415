"""Seeded synthetic alerts for any bundled (or given) Avro schema, for tests and benchmarks.

``generate(schema, n, seed=0)`` yields ``n`` alert dicts valid for
``fastavro.schemaless_writer`` with that schema, the same ones for the same seed.
They look like real alerts where it matters for size and speed:

- cutouts of realistic size: ZTF ``stampData`` are gzipped FITS images (~15-20 KB),
  LSST cutouts plain FITS bytes (~30-50 KB); drawn from a small seeded pool;
- histories (``prv_candidates``, ``prvDiaSources``, ``prvDiaForcedSources``...) of
  0-30 entries, earlier than the alert; other arrays and maps 0-3 entries;
- realistic ranges for common fields: ``ra``/``dec``, ``magpsf``/``sigmapsf``, ``jd``
  (ZTF), ``psfFlux`` (nJy), ``midpointMjdTai`` (LSST), ``fid``/``band``;
- ids are 64-bit integers, about half of them above 2**53; ids shared across an alert
  (``candid``, ``diaSourceId``/``alertId``, ``diaObjectId``) agree;
- about 10% of LSST alerts are solar-system alerts: null ``diaObject``, set ``ssSource``
  / ``ssObject``; some other nullable fields are null, some floats NaN;
- ``float`` (32-bit) values are exactly representable, so a round trip compares equal.

Speed: records are built from a pool of pre-generated templates (scalar leaves copied,
then key fields re-drawn), so about 2,000+ alerts/s; memory is bounded (iterator).
Every dict and list in an alert is fresh (no sharing between alerts).
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import math
import random
import string
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fink_client import schemas, survey
from fink_client.avroschema import NamedTypes, namespace_of

Gen = Callable[[random.Random, dict], Any]

HISTORY_FIELDS = frozenset({
    "prv_candidates", "prvDiaSources", "prvDiaForcedSources", "prvDiaNondetectionLimits",
})
MAX_HISTORY = 30
POOL = 32
_NULL_P = 0.1
_NAN_P = 0.02
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_SHARED_IDS = frozenset({"objectId", "diaObjectId", "ssObjectId"})


def _f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def _fits(rng: random.Random, side: int) -> bytes:
    """A plain FITS file: one float32 image of ``side``x``side`` pixels with a source."""
    import numpy as np
    from astropy.io import fits

    gen = np.random.default_rng(rng.getrandbits(32))
    yy, xx = np.mgrid[0:side, 0:side]
    c = side / 2
    img = gen.normal(100.0, 10.0, (side, side)) + 500 * np.exp(
        -((xx - c) ** 2 + (yy - c) ** 2) / (2 * 2.0**2))
    buf = io.BytesIO()
    fits.PrimaryHDU(img.astype(">f4")).writeto(buf)
    return buf.getvalue()


class _Pools:
    """Seeded cutout pools (built lazily: astropy is imported only if needed)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._ztf: list[bytes] | None = None
        self._lsst: list[bytes] | None = None

    def ztf(self) -> list[bytes]:
        if self._ztf is None:
            rng = random.Random(self.seed ^ 0x5A7F)
            self._ztf = [gzip.compress(_fits(rng, 63), mtime=0) for _ in range(8)]
        return self._ztf

    def lsst(self) -> list[bytes]:
        if self._lsst is None:
            rng = random.Random(self.seed ^ 0x1557)
            self._lsst = [_fits(rng, rng.randint(85, 110)) for _ in range(8)]
        return self._lsst


def _letters(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(string.ascii_lowercase, k=n))


def _id(rng: random.Random) -> int:
    return rng.getrandbits(rng.choice((50, 62))) + 1


class _Compiler:
    def __init__(self, schema: dict[str, Any], seed: int) -> None:
        self.named: NamedTypes[dict[str, Any]] = NamedTypes()
        self.survey: str | None
        try:
            self.survey = survey.detect_survey(schema)
        except Exception:
            self.survey = None
        self.pools = _Pools(seed)

    # -- scalars chosen by field name ---------------------------------------------------
    def scalar(self, kind: str, name: str, history: bool, logical: str | None) -> tuple[Gen, bool]:
        """(generator, is_key): key fields are re-drawn per alert, others pooled."""
        low = name.lower()
        lsst = self.survey == survey.LSST
        if logical in ("timestamp-micros", "timestamp-millis"):
            def ts(rng: random.Random, ctx: dict) -> dt.datetime:
                secs = (ctx["mjd"] - 40587.0) * 86400.0 + rng.uniform(0, 600)
                value = _EPOCH + dt.timedelta(microseconds=int(secs * 1e6))
                if logical == "timestamp-millis":
                    value = value.replace(microsecond=value.microsecond // 1000 * 1000)
                return value
            return ts, True
        if kind in ("float", "double"):
            conv = _f32 if kind == "float" else float
            if low in ("ra", "ra_ok", "radeg") or (low.startswith("ra_") and "err" not in low):
                return (lambda r, c: conv(c["ra"] + r.gauss(0, 1e-5))), True
            if low in ("dec", "decdeg") or (low.startswith("dec_") and "err" not in low):
                return (lambda r, c: conv(c["dec"] + r.gauss(0, 1e-5))), True
            if low == "jd" or (low.endswith("jd") and "jd" in low):
                jd0 = survey.JD_TO_MJD
                if history:
                    return (lambda r, c: conv(c["mjd"] + jd0 - r.uniform(1, 300))), True
                return (lambda r, c: conv(c["mjd"] + jd0)), True
            if "mjd" in low:
                if history:
                    return (lambda r, c: conv(c["mjd"] - r.uniform(1, 300))), True
                return (lambda r, c: conv(c["mjd"])), True
            if low.startswith(("magpsf", "magap", "mag")) and "err" not in low:
                return (lambda r, c: conv(r.uniform(15.0, 21.5))), low == "magpsf"
            if low.startswith("sigma") or low.endswith("err") or "err" in low:
                return (lambda r, c: conv(r.uniform(0.01, 0.3) if not lsst
                                          else r.uniform(100, 1500))), False
            if low.endswith("flux") or "flux" in low:
                return (lambda r, c: conv(r.gauss(0, 5000.0))), low in ("psfflux", "scienceflux")
            def any_float(r: random.Random, c: dict) -> float:
                return math.nan if r.random() < _NAN_P else conv(r.uniform(0, 1))
            return any_float, False
        if kind == "long":
            if low in ("objectid", "diaobjectid"):
                return (lambda r, c: c["diaObjectId"]), True
            if low == "ssobjectid":
                return (lambda r, c: c["ssObjectId"]), True
            if low in ("candid", "diasourceid", "alertid"):
                if history:
                    return (lambda r, c: _id(r)), True
                return (lambda r, c: c["alertId"]), True
            if low.endswith("id") or low.startswith("id"):
                return (lambda r, c: _id(r)), False
            return (lambda r, c: r.randint(0, 10**6)), False
        if kind == "int":
            if low == "fid":
                return (lambda r, c: r.randint(1, 3)), True
            if low in ("year", "month", "day"):
                return (lambda r, c: {"year": 2025, "month": 4, "day": 11}[low]), False
            return (lambda r, c: r.randint(0, 1000)), False
        if kind == "string":
            if low == "objectid":
                return (lambda r, c: c["objectId"]), True
            if low == "band":
                return (lambda r, c: r.choice("ugrizy")), True
            if "version" in low or low == "schemavsn":
                return (lambda r, c: ".".join(str(r.randint(0, 9)) for _ in range(3))), False
            return (lambda r, c: _letters(r, r.randint(3, 12))), False
        if kind == "boolean":
            return (lambda r, c: r.random() < 0.5), False
        if kind == "bytes":
            if "cutout" in low or low == "stampdata":
                if self.survey == survey.ZTF or low == "stampdata":
                    pool = self.pools.ztf
                else:
                    pool = self.pools.lsst
                return (lambda r, c: r.choice(pool())), True
            return (lambda r, c: r.randbytes(r.randint(8, 64))), False
        if kind == "null":
            return (lambda r, c: None), False
        raise ValueError(f"unsupported Avro type {kind!r} at field {name!r}")

    # -- compile ------------------------------------------------------------------------
    def compile(self, schema: Any, name: str, history: bool, ns: str | None) -> tuple[Gen, bool]:
        """(generator, is_key) for an Avro type found in field ``name``."""
        if isinstance(schema, str):
            full = self.named.find(schema, ns)
            if full is not None:
                return self.compile(self.named[full], name, history, namespace_of(full))
            return self.scalar(schema, name, history, None)
        if isinstance(schema, list):
            branches = [b for b in schema if b != "null"]
            if not branches:
                return (lambda r, c: None), False
            inner, key = self.compile(branches[0], name, history, ns)
            if "null" not in schema:
                return inner, key
            null_p = self._null_p(name)
            if null_p is not None:
                return (lambda r, c: None if null_p(c) else inner(r, c)), True
            if key:
                return inner, True
            return (lambda r, c: None if r.random() < _NULL_P else inner(r, c)), False
        kind = schema["type"]
        if isinstance(kind, (list, dict)):
            return self.compile(kind, name, history, ns)
        if kind in ("record", "error"):
            return self.record(schema, history, ns), True
        if kind == "enum":
            self.named.define(schema, ns, schema)
            symbols = list(schema["symbols"])
            return (lambda r, c: r.choice(symbols)), False
        if kind == "fixed":
            self.named.define(schema, ns, schema)
            size = int(schema["size"])
            return (lambda r, c: r.randbytes(size)), False
        if kind == "array":
            is_hist = name in HISTORY_FIELDS
            item, _ = self.compile(schema["items"], name, history or is_hist, ns)
            top = MAX_HISTORY if is_hist else 3
            return (lambda r, c: [item(r, c) for _ in range(r.randint(0, top))]), True
        if kind == "map":
            value, _ = self.compile(schema["values"], name, history, ns)
            return (lambda r, c: {f"k{i}": value(r, c) for i in range(r.randint(0, 3))}), True
        return self.scalar(kind, name, history, schema.get("logicalType"))

    def _null_p(self, name: str) -> Callable[[dict], bool] | None:
        """Survey-specific null rules (LSST solar-system alerts)."""
        if self.survey != survey.LSST:
            return None
        if name == "diaObject":
            return lambda c: c["sso"]
        if name in ("ssSource", "ssObject", "mpc_orbits"):
            return lambda c: not c["sso"]
        if name in ("diaSource", "diaSourceId", "alertId") or name.startswith("cutout"):
            return lambda c: False
        return None

    def record(self, schema: dict, history: bool, ns: str | None) -> Gen:
        space = namespace_of(self.named.define(schema, ns, schema))
        pooled: list[tuple[str, Gen]] = []
        keyed: list[tuple[str, Gen]] = []
        for f in schema["fields"]:
            gen, key = self.compile(f["type"], f["name"], history, space)
            (keyed if key else pooled).append((f["name"], gen))
        order = [f["name"] for f in schema["fields"]]
        templates: list[dict] = []
        ctx0 = _new_ctx(random.Random(0), self.survey)

        def make(rng: random.Random, ctx: dict) -> dict:
            if len(templates) < POOL:
                templates.append({k: g(rng, ctx0) for k, g in pooled})
                base = templates[-1]
            else:
                base = templates[rng.randrange(POOL)]
            out = dict.fromkeys(order)
            out.update(base)
            for k, g in keyed:
                out[k] = g(rng, ctx)
            return out

        return make


def _new_ctx(rng: random.Random, which: str | None) -> dict:
    """Per-alert state shared by fields: position, time, ids."""
    lsst = which == survey.LSST
    sso = lsst and rng.random() < 0.1
    dia_object = 0 if sso else _id(rng)
    return {
        "ra": rng.uniform(0.0, 360.0),
        "dec": math.degrees(math.asin(rng.uniform(-1.0, 0.5 if lsst else 1.0))),
        "mjd": rng.uniform(60500.0, 61500.0) if lsst else rng.uniform(58200.0, 60800.0),
        "alertId": _id(rng),
        "diaObjectId": dia_object,
        "ssObjectId": _id(rng) if sso else 0,
        "objectId": f"ZTF{rng.randint(18, 25)}{_letters(rng, 7)}",
        "sso": sso,
    }


def _schema_json(schema: str | Path | dict) -> dict[str, Any]:
    if isinstance(schema, dict):
        return schema
    if isinstance(schema, str) and schema in schemas.bundled():
        return schemas.load(schema)
    from fink_client.wire import load_schema

    return load_schema(schema)


def generator(schema: str | Path | dict) -> Callable[[random.Random], dict]:
    """A function ``rng -> alert`` for ``schema`` (compiled once; see :func:`generate`)."""
    schema_json = _schema_json(schema)
    compiler = _Compiler(schema_json, 0)
    make, _ = compiler.compile(schema_json, "", False, None)
    which = compiler.survey

    def one(rng: random.Random) -> dict:
        return make(rng, _new_ctx(rng, which))

    return one


def generate(schema: str | Path | dict, n: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """``n`` synthetic alerts for ``schema`` (bundled name, dict, JSON text or path).

    Deterministic for a given ``seed``; lazily generated (bounded memory).
    """
    schema_json = _schema_json(schema)
    compiler = _Compiler(schema_json, seed)
    make, _ = compiler.compile(schema_json, "", False, None)
    rng = random.Random(seed)
    for _ in range(n):
        yield make(rng, _new_ctx(rng, compiler.survey))
