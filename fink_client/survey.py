"""What an alert means, for both surveys: the one place for alert semantics.

Survey detection (ZTF or Rubin/LSST), ids, times in UTC, bands, the Fink fields of each
survey and the file stem named after an alert. The table (:mod:`fink_client.table`), the
CLI's JSON lines, the viz, the writers' file names and the synthetic alerts all ask here,
so that they never disagree.

Detection uses field names only (README "Alert formats"), so it works on a schema (Avro JSON
dict) and on an alert dict alike:

- ZTF: ``objectId``, ``candid``, ``candidate``, ``prv_candidates``;
- LSST: ``diaSource``, ``prvDiaSources``, ``diaObject``, ``alertId`` (schema 7.x) or
  ``diaSourceId`` (9.0+).

Time conventions: ZTF gives ``candidate.jd`` (UTC Julian date); LSST gives
``diaSource.midpointMjdTai`` (MJD in the TAI scale), which :func:`mjd` converts to UTC
with astropy so that both surveys answer in the same scale.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import re
from collections.abc import Mapping
from typing import Any

from fink_client.errors import SchemaError

ZTF = "ztf"
LSST = "lsst"

#: ZTF filter ids (``candidate.fid``) to band names.
ZTF_BANDS = {1: "g", 2: "r", 3: "i"}
#: Rubin/LSST bands (``diaSource.band``).
LSST_BANDS = ("u", "g", "r", "i", "z", "y")

#: Julian Date of MJD 0: ``mjd = jd - JD_TO_MJD``.
JD_TO_MJD = 2400000.5
_MJD_UNIX_EPOCH = 40587.0

#: Fink classification fields of each survey in the order a summary header shows them
#: (dotted = field of a nested record).
FINK_FIELDS: dict[str, tuple[str, ...]] = {
    ZTF: ("finkclass", "cdsxmatch", "rf_snia_vs_nonia", "snn_snia_vs_nonia", "snn_sn_vs_all",
          "rf_kn_vs_nonkn", "mulens", "roid", "tracklet", "gcvs", "vsx", "DR3Name", "tns",
          "anomaly_score"),
    LSST: ("finkclass", "cdsxmatch", "roid", "snn_sn_vs_others", "cats_broad_class", "tns",
           "vsx", "gcvs", "pred.main_label_classifier", "pred.main_label_crossmatch",
           "pred.is_sso", "xm.simbad_otype", "xm.tns_type", "xm.gcvs_type",
           "clf.snnSnVsOthers_score", "clf.cats_class", "clf.cats_score",
           "clf.earlySNIa_score", "tns_type_recomputed"),
}
#: The main ones (top-level fields), shown in tables, JSON lines and webhook summaries.
MAIN_FINK_FIELDS: dict[str, tuple[str, ...]] = {
    ZTF: ("finkclass", "cdsxmatch", "rf_snia_vs_nonia", "snn_snia_vs_nonia", "mulens", "roid"),
    LSST: ("finkclass", "cdsxmatch", "snn_sn_vs_others", "cats_broad_class", "roid"),
}
#: Where :func:`fink_class` looks for the one-word Fink label of an alert, in order.
CLASS_FIELDS: dict[str, tuple[str, ...]] = {
    ZTF: ("finkclass", "cdsxmatch"),
    LSST: ("finkclass", "pred.main_label_classifier", "xm.simbad_otype", "cdsxmatch"),
}

_ZTF_FIELDS = frozenset({"objectId", "candid", "candidate", "prv_candidates"})
_LSST_FIELDS = frozenset({"diaSource", "prvDiaSources", "diaObject", "diaSourceId", "alertId"})


def _field_names(schema_or_alert: Mapping[str, Any]) -> set[str]:
    if schema_or_alert.get("type") == "record" and isinstance(schema_or_alert.get("fields"), list):
        return {f["name"] for f in schema_or_alert["fields"]}
    return set(schema_or_alert)


def detect_survey(schema_or_alert: Mapping[str, Any]) -> str:
    """``"ztf"`` or ``"lsst"`` from an Avro schema (JSON dict) or an alert dict.

    Raises :class:`SchemaError` when the field names match neither survey.
    """
    names = _field_names(schema_or_alert)
    ztf = len(names & _ZTF_FIELDS)
    lsst = len(names & _LSST_FIELDS)
    if "diaSource" in names and lsst >= ztf:
        return LSST
    if "candidate" in names and ztf >= 2:
        return ZTF
    raise SchemaError(
        "cannot tell the survey of this alert: expected ZTF fields (objectId, candid, "
        "candidate) or LSST fields (diaSource, diaObject, diaSourceId/alertId); got "
        f"{sorted(names)[:12]}"
    )


def field(alert: Mapping[str, Any], path: str) -> Any:
    """Value at the dotted ``path`` (``"diaSource.band"``), ``None`` where it stops."""
    value: Any = alert
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def survey(alert: Mapping[str, Any]) -> str:
    """Survey of ``alert``: ``"ztf"`` or ``"lsst"``."""
    return detect_survey(alert)


def alert_id(alert: Mapping[str, Any]) -> int:
    """Unique id of the alert: ZTF ``candid``; LSST ``diaSourceId`` (9.0+) or ``alertId``
    (7.x), else ``diaSource.diaSourceId``."""
    if detect_survey(alert) == ZTF:
        return alert["candid"]
    for key in ("diaSourceId", "alertId"):
        if alert.get(key) is not None:
            return alert[key]
    return alert["diaSource"]["diaSourceId"]


def _nonzero(value: Any) -> Any:
    # LSST uses 0 as "no object" in some id columns (e.g. diaSource.ssObjectId).
    return value if value not in (None, 0) else None


def object_id(alert: Mapping[str, Any]) -> str | int | None:
    """Id of the object the alert belongs to.

    ZTF: ``objectId`` (a string such as ``ZTF18abvcdqu``). LSST: ``diaObject.diaObjectId``;
    for solar-system alerts, whose ``diaObject`` is null, the solar-system object id
    (``ssSource.ssObjectId``, ``ssObject.ssObjectId`` or ``diaSource.ssObjectId``);
    ``None`` if the alert names no object at all.
    """
    if detect_survey(alert) == ZTF:
        return alert["objectId"]
    dia_object = alert.get("diaObject")
    if dia_object is not None and _nonzero(dia_object.get("diaObjectId")) is not None:
        return dia_object["diaObjectId"]
    for key in ("ssSource", "ssObject"):
        sub = alert.get(key)
        if sub is not None and _nonzero(sub.get("ssObjectId")) is not None:
            return sub["ssObjectId"]
    source = alert.get("diaSource") or {}
    for key in ("ssObjectId", "diaObjectId"):
        if _nonzero(source.get(key)) is not None:
            return source[key]
    return None


def is_solar_system(alert: Mapping[str, Any]) -> bool:
    """True for an LSST alert on a solar-system object (null ``diaObject``)."""
    return detect_survey(alert) == LSST and alert.get("diaObject") is None


def band(alert: Mapping[str, Any]) -> str | None:
    """Band of the detection: ZTF ``g``/``r``/``i`` from ``candidate.fid``; LSST
    ``diaSource.band`` (``u g r i z y``); ``None`` when the alert does not say."""
    if detect_survey(alert) == ZTF:
        fid = (alert.get("candidate") or {}).get("fid")
        return None if fid is None else ZTF_BANDS.get(fid, str(fid))
    return (alert.get("diaSource") or {}).get("band")


@functools.lru_cache(maxsize=4096)
def _tai_to_utc_mjd(mjd_tai: float) -> float:
    from astropy.time import Time

    return float(Time(mjd_tai, format="mjd", scale="tai").utc.mjd)


def mjd(alert: Mapping[str, Any]) -> float:
    """Observation time as a UTC Modified Julian Date.

    ZTF: ``candidate.jd - JD_TO_MJD``. LSST: ``diaSource.midpointMjdTai`` converted from
    TAI to UTC (37 s earlier since 2017).
    """
    if detect_survey(alert) == ZTF:
        return alert["candidate"]["jd"] - JD_TO_MJD
    return _tai_to_utc_mjd(float(alert["diaSource"]["midpointMjdTai"]))


def iso_time(alert: Mapping[str, Any]) -> str:
    """Observation time as an ISO 8601 UTC string (``2019-11-13T02:12:40.000``)."""
    from astropy.time import Time

    return str(Time(mjd(alert), format="mjd", scale="utc").isot)


def utc_text(mjd_utc: float | None) -> str | None:
    """A UTC MJD as ``YYYY-MM-DD HH:MM:SS`` (``None`` for a missing or NaN time)."""
    if mjd_utc is None or math.isnan(mjd_utc):
        return None
    seconds = (mjd_utc - _MJD_UNIX_EPOCH) * 86400.0
    return _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def fink_class(alert: Mapping[str, Any], kind: str | None = None) -> Any:
    """Fink's one-word label of the alert (:data:`CLASS_FIELDS`, first set value that is
    not ``"Unknown"``; else ``"Unknown"`` if one said so; else ``None``)."""
    fallback = None
    for path in CLASS_FIELDS[kind or survey(alert)]:
        value = field(alert, path)
        if _missing(value):
            continue
        if value != "Unknown":
            return value
        fallback = value
    return fallback


def main_fink_fields(alert: Mapping[str, Any], kind: str | None = None) -> dict[str, Any]:
    """The alert's :data:`MAIN_FINK_FIELDS` that it has (``name -> value``, in order)."""
    return {f: alert[f] for f in MAIN_FINK_FIELDS[kind or survey(alert)] if f in alert}


def file_stem(alert: Mapping[str, Any]) -> str:
    """``<object id>_<alert id>``, safe as a file name: the one name of an alert's files
    (its PNG, a data file holding it alone). ``noobject`` stands for an alert that names
    no object (see :func:`object_id`; LSST solar-system alerts use their ``ssObjectId``).

    Raises :class:`KeyError`/:class:`SchemaError` when the alert has no id.
    """
    obj = object_id(alert)
    text = f"{obj if obj is not None else 'noobject'}_{alert_id(alert)}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)
