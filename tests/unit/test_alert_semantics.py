"""One meaning per alert: the table row, ``finkctl stream --json``, the summary PNG's name,
its header and the name of a data file holding the alert agree (same ids, same UTC time),
for every bundled sample alert and for synthetic alerts of both surveys, LSST
solar-system alerts (null ``diaObject``, ``diaSource.diaObjectId == 0``) included."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fink_client import survey, synth
from fink_client.cli.stream import alert_summary
from fink_client.consumer import Delivery
from fink_client.io import AlertReader, open_writer
from fink_client.table import alert_fields, alert_row
from fink_client.viz import alert_header, png_name

SAMPLES = Path(survey.__file__).parent / "data" / "samples"
SAMPLE_FILES = sorted(SAMPLES.rglob("*.avro"))


def _samples() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for path in SAMPLE_FILES:
        reader = AlertReader(path)
        for i, alert in enumerate(reader):
            yield f"{path.relative_to(SAMPLES)}#{i}", alert, reader.schema


def _synthetic() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    from fink_client import schemas

    for name in ("ztf_alert_3.3", "distribution_schema_fink_ztf_2.7_3.10.1",
                 "fink_lsst_alert_7.4"):
        schema = schemas.load(name)
        for i, alert in enumerate(synth.generate(name, 40, seed=7)):
            yield f"synth:{name}#{i}", alert, schema


CASES = [*_samples(), *_synthetic()]


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("T", " "))


def test_cases_cover_both_surveys_and_solar_system_alerts() -> None:
    kinds = {survey.survey(a) for _, a, _ in CASES}
    assert kinds == {survey.ZTF, survey.LSST}
    sso = [a for _, a, _ in CASES if survey.is_solar_system(a)]
    assert sso and all(a["diaSource"]["diaObjectId"] == 0 for a in sso)
    assert len([c for c in CASES if not c[0].startswith("synth:")]) >= 20


@pytest.mark.parametrize(("where", "alert", "schema"), CASES, ids=[c[0] for c in CASES])
def test_table_json_png_and_file_names_agree(where: str, alert: dict[str, Any],
                                             schema: dict[str, Any], tmp_path: Path) -> None:
    kind = survey.survey(alert)
    obj, aid = survey.object_id(alert), survey.alert_id(alert)
    assert obj is not None and obj != 0 and aid is not None
    when = survey.utc_text(survey.mjd(alert))
    assert when is not None

    fields = alert_fields(alert)
    assert (fields["objectId"], fields["alertId"], fields["time"]) == (obj, aid, when)
    row = alert_row("t", alert)
    ztf = kind == survey.ZTF
    assert row["objectId" if ztf else "diaObjectId"] == str(obj)
    assert row["candid" if ztf else "diaSourceId"] == str(aid)
    assert row["date (UTC)"] == when

    line = alert_summary(Delivery("t", 0, 5, None, None, alert))
    assert line["survey"] == kind
    ids = (line["objectId"], line["candid"]) if ztf else (line["diaObjectId"], line["diaSourceId"])
    assert ids == (obj, aid)
    assert line["time"] == when
    for name in survey.MAIN_FINK_FIELDS[kind]:
        assert (name in line) == (name in alert)

    stem = f"{obj}_{aid}".replace("/", "_")
    assert png_name(alert) == f"{stem}.png"
    header = alert_header(alert)
    assert (header["objectId"], header["alertId"]) == (str(obj), str(aid))
    assert abs((_utc(header["time_utc"]) - _utc(when)).total_seconds()) < 1.0

    with open_writer("json", tmp_path, schema) as writer:
        (path,) = writer.write([alert])
    assert path.name == f"{stem}.jsonl"
    assert Path(png_name(alert)).stem == path.name.split(".")[0]
