"""One-line summaries of alerts, and a plain-text table of them.

Used by ``finkctl demo`` and ``finkctl stream`` to show alerts as rows: topic, object,
alert id, observation date (UTC), magnitude (or flux for LSST) and the Fink
classification fields that the alert carries.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Iterable, Sequence
from typing import Any

#: Fink classification fields shown when present (first ones first).
FINK_FIELDS = (
    "finkclass",
    "cdsxmatch",
    "rf_snia_vs_nonia",
    "snn_snia_vs_nonia",
    "mulens",
    "roid",
)

_BANDS: dict[object, str] = {1: "g", 2: "r", 3: "i"}
_JD_UNIX_EPOCH = 2440587.5


def _iso_from_jd(jd: float | None) -> str:
    if jd is None or (isinstance(jd, float) and math.isnan(jd)):
        return "-"
    seconds = (jd - _JD_UNIX_EPOCH) * 86400.0
    return _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3g}"
    return str(value)


def alert_row(topic: str | None, alert: dict[str, Any]) -> dict[str, str]:
    """Summary of one alert as ordered ``column -> text`` (ZTF or LSST)."""
    row: dict[str, str] = {"topic": topic or "-"}
    cand = alert.get("candidate")
    if isinstance(cand, dict):  # ZTF
        row["objectId"] = _fmt(alert.get("objectId"))
        row["candid"] = _fmt(alert.get("candid") or cand.get("candid"))
        row["date (UTC)"] = _iso_from_jd(cand.get("jd"))
        mag, err = cand.get("magpsf"), cand.get("sigmapsf")
        band = _BANDS.get(cand.get("fid"), "?")
        row["mag"] = "-" if mag is None else f"{mag:.2f}±{(err or 0):.2f} {band}"
    else:  # LSST
        src = alert.get("diaSource") or {}
        obj = alert.get("diaObject") or {}
        row["objectId"] = _fmt(obj.get("diaObjectId") or src.get("diaObjectId")
                               or src.get("ssObjectId"))
        row["candid"] = _fmt(alert.get("diaSourceId") or alert.get("alertId")
                             or src.get("diaSourceId"))
        mjd = src.get("midpointMjdTai")
        row["date (UTC)"] = "-" if mjd is None else _iso_from_jd(mjd + 2400000.5) + " TAI"
        flux, err = src.get("psfFlux"), src.get("psfFluxErr")
        band = src.get("band", "")
        row["mag"] = "-" if flux is None else f"{flux:.0f}±{(err or 0):.0f} nJy {band}"
    for field in FINK_FIELDS:
        if field in alert:
            row[field] = _fmt(alert[field])
    return row


def alert_rows(pairs: Iterable[tuple[str | None, dict[str, Any]]]) -> list[dict[str, str]]:
    """:func:`alert_row` for each ``(topic, alert)`` pair."""
    return [alert_row(topic, alert) for topic, alert in pairs]


def format_table(rows: Sequence[dict[str, str]]) -> str:
    """Rows as an aligned plain-text table; columns are the union of the rows' keys."""
    if not rows:
        return "(no alerts)"
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    widths = {c: max(len(c), *(len(r.get(c, "-")) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns).rstrip(),
             "  ".join("-" * widths[c] for c in columns)]
    lines += ["  ".join(r.get(c, "-").ljust(widths[c]) for c in columns).rstrip() for r in rows]
    return "\n".join(lines)
