"""Hive partition folders of fink_client.partitioning (pure logic, no broker)."""

from __future__ import annotations

import urllib.parse

import pytest

from fink_client import schemas, synth
from fink_client.errors import ConfigError, SchemaError
from fink_client.partitioning import NULL_PARTITION, Partitioner, escape

ZTF = schemas.load("avro_schema_ftransfer_ztf_2026-03-23")
LSST = schemas.load("avro_schema_ftransfer_lsst_2026-03-18")


@pytest.mark.parametrize("value", ["SN candidate", "a/b", "x=y", "50%", "..", "é:ü?#*",
                                   "tab\there", "[Ia]{^}"])
def test_escaped_values_are_one_safe_segment_that_decodes_back(value: str) -> None:
    seg = escape(value)
    assert "/" not in seg and "=" not in seg and seg not in (".", "..")
    assert urllib.parse.unquote(seg) == value


def test_null_and_empty_are_the_hive_default_partition() -> None:
    assert escape(None) == escape("") == NULL_PARTITION
    assert escape(True) == "true" and escape(3) == "3"


def test_time_is_the_utc_date_of_the_observation() -> None:
    part = Partitioner("time", ZTF)
    alert = {"objectId": "ZTF1", "candid": 1, "candidate": {"jd": 2458800.5 + 0.999},
             "prv_candidates": None}
    assert part(alert) == "year=2019/month=11/day=13"  # MJD 58800 = 2019-11-13
    alert["candidate"]["jd"] = None
    assert part(alert) == "/".join(f"{c}={NULL_PARTITION}" for c in ("year", "month", "day"))
    lsst = next(synth.generate(LSST, 1, seed=1))
    lsst["diaSource"]["midpointMjdTai"] = 60000.0 + 30 / 86400  # TAI: 37 s ahead of UTC
    assert Partitioner("time", LSST)(lsst) == "year=2023/month=2/day=24"  # before midnight


def test_fields_top_level_and_dotted() -> None:
    alert = next(synth.generate(ZTF, 1, seed=2))
    alert["finkclass"] = "SN candidate/Ia"
    assert Partitioner("finkclass", ZTF)(alert) == "finkclass=SN candidate%2FIa"
    assert Partitioner("candidate.fid", ZTF)(alert) == f"candidate_fid={alert['candidate']['fid']}"
    assert Partitioner("none", ZTF)(alert) == ""


def test_bad_specs_are_refused_before_anything_is_read() -> None:
    with pytest.raises(ConfigError, match="no field 'finkclass'"):
        Partitioner("finkclass", LSST)  # a ZTF-only field
    with pytest.raises(ConfigError, match="no field 'nope'"):
        Partitioner("diaSource.nope", LSST)
    with pytest.raises(ConfigError, match="is not a record"):
        Partitioner("diaSource.band.x", LSST)
    with pytest.raises(SchemaError):
        Partitioner("time", {"type": "record", "name": "x", "fields": [
            {"name": "a", "type": "int"}]})
