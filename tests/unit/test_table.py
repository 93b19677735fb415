"""The alert summary and table rows, for both surveys, on the bundled sample alerts."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from fink_client import synth
from fink_client.io import AlertReader
from fink_client.table import alert_fields, alert_row, format_table
from tests.helpers import SAMPLES

LSST = AlertReader(SAMPLES / "lsst" / "fink-7.4").to_list()
ZTF = AlertReader(SAMPLES / "ztf" / "fink").to_list()


def test_lsst_row_shows_utc_not_tai() -> None:
    alert = LSST[0]
    row = alert_row("lsst_topic", alert)
    assert list(row)[:6] == ["topic", "diaObjectId", "diaSourceId", "date (UTC)", "band",
                             "flux (nJy)"]
    tai = dt.datetime(1858, 11, 17) + dt.timedelta(days=alert["diaSource"]["midpointMjdTai"])
    utc = tai - dt.timedelta(seconds=37)  # TAI - UTC = 37 s since 2017
    assert row["date (UTC)"] == utc.strftime("%Y-%m-%d %H:%M:%S") == "2025-04-11 20:03:15"
    assert "TAI" not in row["date (UTC)"]
    assert row["diaObjectId"] == str(alert["diaObject"]["diaObjectId"])
    assert row["diaSourceId"] == str(alert["alertId"])
    assert row["band"] == alert["diaSource"]["band"] == "i"
    src = alert["diaSource"]
    assert row["flux (nJy)"] == f"{src['psfFlux']:.0f}±{src['psfFluxErr']:.0f}"
    assert row["snn_sn_vs_others"] == f"{alert['snn_sn_vs_others']:.3g}"
    assert row["cats_broad_class"] == str(alert["cats_broad_class"])


def test_ztf_row_columns() -> None:
    alert = ZTF[0]
    row = alert_row("rrlyr", alert)
    assert row == {"topic": "rrlyr", "objectId": "ZTF18abvcdqu",
                   "candid": str(alert["candid"]), "date (UTC)": "2019-11-15 02:12:39",
                   "band": "g", "mag": "18.03±0.11", "cdsxmatch": "RRLyr"}


def test_fields_same_keys_for_both_surveys() -> None:
    z, lsst = alert_fields(ZTF[0]), alert_fields(LSST[0])
    common = {"survey", "objectId", "alertId", "mjd", "time", "band", "mag", "magerr", "flux",
              "fluxerr", "ra", "dec", "fink_class"}
    assert common <= set(z) and common <= set(lsst)
    assert z["fink_class"] == "RRLyr" and z["survey"] == "ztf" and z["flux"] is None
    assert lsst["survey"] == "lsst" and lsst["flux"] < 0 and lsst["mag"] is None
    assert lsst["mjd"] == pytest.approx(alert_fields(LSST[0])["mjd"])


def test_lsst_positive_flux_gives_ab_magnitude() -> None:
    alert = next(synth.generate("fink_lsst_alert_7.4", 1, seed=1))
    alert["diaSource"].update(psfFlux=3631e9 / 1e4, psfFluxErr=3631e9 / 1e5)  # 10 mag
    f = alert_fields(alert)
    assert f["mag"] == pytest.approx(10.0, abs=0.01)
    assert f["magerr"] == pytest.approx(2.5 / math.log(10) * 0.1)


def test_solar_system_and_unknown_alerts_do_not_raise() -> None:
    alerts = list(synth.generate("fink_lsst_alert_7.4", 60, seed=4))
    sso = next(a for a in alerts if a["diaObject"] is None)
    assert alert_row("t", sso)["diaObjectId"] == str(sso["ssObject"]["ssObjectId"])
    assert alert_fields({"foo": 1})["survey"] is None
    assert "objectId" in format_table([alert_row("t", {"foo": 1})])
