"""The synthetic alert generator: valid, seeded, realistic in size and ranges."""

from __future__ import annotations

import gzip
import io
import tracemalloc

import fastavro
import pytest

from fink_client import codec, schemas, survey, synth
from fink_client.testing import assert_alerts_equal


@pytest.mark.parametrize("name", sorted(schemas.bundled()))
def test_valid_for_schemaless_writer_and_round_trips(name: str) -> None:
    parsed = codec.parse_schema(schemas.load(name))
    for alert in synth.generate(name, 20, seed=7):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, parsed, alert)
        buf.seek(0)
        assert_alerts_equal(fastavro.schemaless_reader(buf, parsed, None), alert)


def test_seeded_and_deterministic() -> None:
    a = list(synth.generate(schemas.load("fink_lsst_alert_7.4"), 5, seed=1))
    b = list(synth.generate("fink_lsst_alert_7.4", 5, seed=1))
    c = list(synth.generate("fink_lsst_alert_7.4", 5, seed=2))
    assert_alerts_equal(a, b)
    assert [x["alertId"] for x in a] != [x["alertId"] for x in c]


def test_ztf_alerts_realistic() -> None:
    alerts = list(synth.generate("distribution_schema_fink_ztf_2.7_3.10.1", 200, seed=3))
    hist = [len(a["prv_candidates"] or []) for a in alerts]
    assert min(hist) == 0 and max(hist) == 30
    for a in alerts:
        stamp = a["cutoutScience"]["stampData"]
        assert 12_000 <= len(stamp) <= 22_000
        assert gzip.decompress(stamp).startswith(b"SIMPLE  =")
        c = a["candidate"]
        assert 0 <= c["ra"] < 360.01 and -90 <= c["dec"] <= 90
        assert 15 <= c["magpsf"] <= 21.5 and c["fid"] in (1, 2, 3)
        assert 2458000 < c["jd"] < 2461500
        assert a["candid"] == c["candid"]
        assert survey.object_id(a).startswith("ZTF")
        for p in a["prv_candidates"] or []:
            assert p["jd"] < c["jd"]
    assert any(a["candid"] > 2**53 for a in alerts)
    assert any(a["candid"] < 2**53 for a in alerts)


def test_lsst_alerts_realistic() -> None:
    alerts = list(synth.generate("avro_schema_ftransfer_lsst_2026-03-18", 100, seed=3))
    for a in alerts:
        assert a["cutoutScience"].startswith(b"SIMPLE  =")
        assert 25_000 <= len(a["cutoutScience"]) <= 60_000
        src = a["diaSource"]
        assert a["diaSourceId"] == src["diaSourceId"]
        assert 60000 < src["midpointMjdTai"] < 62000
        assert src["band"] in tuple("ugrizy")
        for p in a["prvDiaSources"] or []:
            assert p["midpointMjdTai"] < src["midpointMjdTai"]
    assert max(len(a["prvDiaSources"] or []) for a in alerts) > 20


def test_bounded_memory_iterator() -> None:
    gen = synth.generate("distribution_schema_fink_ztf_2.7_3.10.1", 10**9, seed=0)
    for _ in range(50):
        next(gen)
    tracemalloc.start()
    for _ in range(1000):
        next(gen)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 20 * 1024 * 1024  # 1000 alerts of ~47 KB would be ~47 MB if kept
