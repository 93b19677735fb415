"""Survey detection and the survey-independent helpers, on samples and synthetic alerts."""

from __future__ import annotations

from pathlib import Path

import fastavro
import pytest

import fink_client
from fink_client import schemas, survey, synth
from fink_client.errors import SchemaError

SAMPLES = Path(fink_client.__file__).parent / "data" / "samples"


def _first(path: Path) -> dict:
    with open(path, "rb") as fh:
        return next(iter(fastavro.reader(fh)))


@pytest.mark.parametrize(("name", "expected"), [
    ("avro_schema_ftransfer_lsst_2026-03-18", "lsst"),
    ("fink_lsst_alert_7.4", "lsst"),
    ("avro_schema_ftransfer_ztf_2026-03-23", "ztf"),
    ("distribution_schema_0p2-live", "ztf"),
    ("distribution_schema_fink_ztf_2.7_3.10.1", "ztf"),
    ("ztf_alert_3.3", "ztf"),
])
def test_detect_from_schema_and_alert(name: str, expected: str) -> None:
    schema = schemas.load(name)
    assert survey.detect_survey(schema) == expected
    alert = next(synth.generate(schema, 1, seed=2))
    assert survey.survey(alert) == expected


def test_unknown_survey_raises() -> None:
    with pytest.raises(SchemaError, match="cannot tell the survey"):
        survey.detect_survey({"foo": 1, "bar": 2})


def test_ztf_sample_helpers() -> None:
    alert = _first(SAMPLES / "ztf" / "raw" / "ZTF19acihgng.avro")
    assert survey.alert_id(alert) == alert["candid"] == 1060135832015015002
    assert survey.object_id(alert) == "ZTF19acihgng"
    assert survey.mjd(alert) == pytest.approx(alert["candidate"]["jd"] - 2400000.5, abs=1e-9)
    assert survey.iso_time(alert).startswith("2019-11-27T03:15:35")


def test_lsst_sample_helpers_convert_tai_to_utc() -> None:
    path = SAMPLES / "lsst" / "fink-7.4" / "58804293150441522_58804293150441522.avro"
    alert = _first(path)
    assert survey.alert_id(alert) == 58804293150441522
    assert survey.object_id(alert) == alert["diaObject"]["diaObjectId"]
    tai = alert["diaSource"]["midpointMjdTai"]
    # UTC lags TAI by 37 s since 2017
    assert (tai - survey.mjd(alert)) * 86400 == pytest.approx(37.0, abs=1e-3)
    assert survey.iso_time(alert) == "2025-04-11T20:03:15.292"


def test_lsst_solar_system_alert_has_null_dia_object() -> None:
    alerts = list(synth.generate("fink_lsst_alert_7.4", 80, seed=4))
    sso = [a for a in alerts if a["diaObject"] is None]
    assert sso, "the generator makes about 10% solar-system alerts"
    for alert in sso:
        assert survey.is_solar_system(alert)
        assert survey.object_id(alert) == alert["ssObject"]["ssObjectId"] != 0
    assert not survey.is_solar_system(next(a for a in alerts if a["diaObject"] is not None))


def test_lsst_9_field_names() -> None:
    """LSST 9.0+: ``diaSourceId`` at the top, ``ssSource`` for solar-system objects."""
    alert = {"diaSourceId": 2**60 + 3, "diaSource": {"diaSourceId": 2**60 + 3,
             "midpointMjdTai": 61000.0, "ssObjectId": 0}, "diaObject": None,
             "ssSource": {"ssObjectId": 2**59 + 1}}
    assert survey.alert_id(alert) == 2**60 + 3
    assert survey.object_id(alert) == 2**59 + 1
    alert["ssSource"] = None
    assert survey.object_id(alert) is None


def test_band_of_both_surveys() -> None:
    ztf = _first(SAMPLES / "ztf" / "raw" / "ZTF19acihgng.avro")
    assert ztf["candidate"]["fid"] == 2 and survey.band(ztf) == "r"
    lsst = _first(SAMPLES / "lsst" / "fink-7.4" / "58804293150441522_58804293150441522.avro")
    assert survey.band(lsst) == lsst["diaSource"]["band"] == "i"
