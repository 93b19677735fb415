"""What an alert says in a few fields, as values (:func:`alert_fields`) or as text
(:func:`alert_row`), and a plain-text table of rows (:func:`format_table`).

Used by ``finkctl demo`` and ``finkctl stream`` (table rows) and by
:mod:`fink_client.hooks` (webhook summaries and their templates). Ids, times and bands
come from :mod:`fink_client.survey`, so both surveys answer in the same terms:

- ZTF: ``objectId``, ``candid``, ``candidate.jd`` (UTC), PSF magnitude ``magpsf ±
  sigmapsf`` in ``g``/``r``/``i``;
- Rubin/LSST: ``diaObjectId`` (or the solar-system object id), ``diaSourceId``/``alertId``,
  ``diaSource.midpointMjdTai`` converted from TAI to UTC, difference-image PSF flux
  ``psfFlux ± psfFluxErr`` in nJy in ``u g r i z y``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fink_client import survey as _survey
from fink_client.errors import SchemaError

#: AB zero point of a flux in nJy: ``mag = 31.4 - 2.5 log10(flux / nJy)``.
NJY_AB_ZERO_POINT = 31.4


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def alert_fields(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The summary of one alert as plain values, the same keys for both surveys.

    ``survey``, ``objectId``, ``alertId``, ``mjd`` (UTC), ``time`` (UTC,
    ``YYYY-MM-DD HH:MM:SS``), ``band``, ``mag``/``magerr`` (ZTF PSF magnitude; LSST: AB
    magnitude of a positive difference flux), ``flux``/``fluxerr`` (LSST, nJy; ``None``
    for ZTF), ``ra``, ``dec``, ``fink_class`` (Fink's label, else the SIMBAD
    cross-match) and the survey's Fink fields present in the alert. A value the alert
    does not have is ``None``; an alert of neither survey gives ``survey: None``.
    """
    try:
        kind = _survey.survey(alert)
    except SchemaError:
        return {"survey": None, "objectId": None, "alertId": None, "mjd": None, "time": None,
                "band": None, "mag": None, "magerr": None, "flux": None, "fluxerr": None,
                "ra": None, "dec": None, "fink_class": None}
    ztf = kind == _survey.ZTF
    rec = (alert.get("candidate") if ztf else alert.get("diaSource")) or {}

    def safe(fn: Any) -> Any:
        try:
            return fn(alert)
        except (KeyError, TypeError, ValueError):
            return None

    mjd = safe(_survey.mjd)
    out: dict[str, Any] = {
        "survey": kind,
        "objectId": safe(_survey.object_id),
        "alertId": safe(_survey.alert_id),
        "mjd": mjd,
        "time": _survey.utc_text(mjd),
        "band": safe(_survey.band),
    }
    if ztf:
        out.update(mag=rec.get("magpsf"), magerr=rec.get("sigmapsf"), flux=None, fluxerr=None)
    else:
        flux, fluxerr = rec.get("psfFlux"), rec.get("psfFluxErr")
        mag = magerr = None
        if isinstance(flux, (int, float)) and flux > 0:  # (NaN > 0 is false)
            mag = NJY_AB_ZERO_POINT - 2.5 * math.log10(flux)
            if isinstance(fluxerr, (int, float)) and not math.isnan(fluxerr):
                magerr = 2.5 / math.log(10) * fluxerr / flux
        out.update(mag=mag, magerr=magerr, flux=flux, fluxerr=fluxerr)
    out.update(ra=rec.get("ra"), dec=rec.get("dec"), fink_class=_survey.fink_class(alert, kind))
    out.update(_survey.main_fink_fields(alert, kind))
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3g}"
    return str(value)


def _pm(value: Any, err: Any, spec: str) -> str:
    if _missing(value):
        return "-"
    return f"{value:{spec}}±{(0.0 if _missing(err) else err):{spec}}"


def alert_row(topic: str | None, alert: Mapping[str, Any]) -> dict[str, str]:
    """Summary of one alert as ordered ``column -> text``, columns chosen per survey.

    ZTF: ``topic, objectId, candid, date (UTC), band, mag`` then the Fink fields;
    LSST: ``topic, diaObjectId, diaSourceId, date (UTC), band, flux (nJy)`` then the
    Fink fields (:data:`fink_client.survey.MAIN_FINK_FIELDS`). Times are UTC for both surveys.
    """
    f = alert_fields(alert)
    ztf = f["survey"] != _survey.LSST
    row: dict[str, str] = {"topic": topic or "-"}
    row["objectId" if ztf else "diaObjectId"] = _fmt(f["objectId"])
    row["candid" if ztf else "diaSourceId"] = _fmt(f["alertId"])
    row["date (UTC)"] = f["time"] or "-"
    row["band"] = _fmt(f["band"])
    if ztf:
        row["mag"] = _pm(f["mag"], f["magerr"], ".2f")
    else:
        row["flux (nJy)"] = _pm(f["flux"], f["fluxerr"], ".0f")
    kind = f["survey"] or _survey.ZTF
    row.update((k, _fmt(v)) for k, v in _survey.main_fink_fields(alert, kind).items())
    return row


def alert_rows(pairs: Iterable[tuple[str | None, Mapping[str, Any]]]) -> list[dict[str, str]]:
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
