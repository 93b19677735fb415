"""One-page summary of an alert: header, cutouts and light curve; and PNG files of it.

:func:`summary_figure` never fails because a part is missing: a bad cutout becomes a
"missing"/"corrupt" panel, an empty light curve a note. It raises
:class:`~fink_client.viz.VizError` only for something that is not a ZTF/LSST alert.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from astropy.coordinates import Angle
from astropy.time import Time
from matplotlib.figure import Figure

from fink_client.io.atomic import atomic_write
from fink_client.viz._common import (
    DPI,
    SUMMARY_FIGSIZE,
    VizError,
    is_missing,
    new_figure,
    survey_of,
)
from fink_client.viz.cutouts import plot_cutouts
from fink_client.viz.lightcurve import plot_lightcurve

#: Fink fields shown in the header when present (dotted = nested record field).
ZTF_FINK_FIELDS: tuple[str, ...] = (
    "finkclass", "cdsxmatch", "rf_snia_vs_nonia", "snn_snia_vs_nonia", "snn_sn_vs_all",
    "rf_kn_vs_nonkn", "mulens", "roid", "tracklet", "gcvs", "vsx", "DR3Name", "tns",
    "anomaly_score",
)
LSST_FINK_FIELDS: tuple[str, ...] = (
    "finkclass", "cdsxmatch", "roid", "snn_sn_vs_others", "cats_broad_class", "tns", "vsx",
    "gcvs", "pred.main_label_classifier", "pred.main_label_crossmatch", "pred.is_sso",
    "xm.simbad_otype", "xm.tns_type", "xm.gcvs_type", "clf.snnSnVsOthers_score",
    "clf.cats_class", "clf.cats_score", "clf.earlySNIa_score", "tns_type_recomputed",
)


def _get(alert: Mapping[str, Any], path: str) -> Any:
    value: Any = alert
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, Mapping):  # e.g. older Fink mulens: {"class_1": ..., "class_2": ...}
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()
                               if not is_missing(v)) + "}"
    return str(value)


def alert_ids(alert: Mapping[str, Any]) -> tuple[str, str]:
    """``(object id, alert id)``: ZTF ``objectId, candid``; LSST ``diaObjectId, diaSourceId``.

    Raises :class:`VizError` naming the field when one is missing.
    """
    if survey_of(alert) == "ztf":
        pairs = (("objectId", alert.get("objectId")),
                 ("candid", alert.get("candid", _get(alert, "candidate.candid"))))
    else:
        obj = _get(alert, "diaSource.diaObjectId")
        if is_missing(obj):
            obj = _get(alert, "diaObject.diaObjectId")
        if is_missing(obj):  # solar-system objects have no diaObject
            obj = _get(alert, "diaSource.ssObjectId")
        pairs = (("diaSource.diaObjectId", obj),
                 ("diaSource.diaSourceId", _get(alert, "diaSource.diaSourceId")))
    for field, value in pairs:
        if is_missing(value):
            raise VizError("alert has no identifier", field=field)
    return str(pairs[0][1]), str(pairs[1][1])


def alert_header(alert: Mapping[str, Any]) -> dict[str, Any]:
    """What the summary header shows, as a dict.

    Keys: ``survey``, ``objectId``, ``alertId``, ``mjd``, ``time_scale`` (UTC for ZTF,
    TAI for LSST), ``time_utc`` (ISO), ``ra``, ``dec`` (degrees) and ``fink`` (a dict
    of the Fink classification fields present and not null, in a fixed order).
    """
    survey = survey_of(alert)
    try:
        object_id, alert_id = alert_ids(alert)
    except VizError:
        object_id, alert_id = "?", "?"
    if survey == "ztf":
        rec = alert["candidate"]
        jd = rec.get("jd")
        mjd = None if jd is None else jd - 2400000.5
        time_utc = None if jd is None else Time(jd, format="jd", scale="utc").iso
        scale, names = "UTC", ZTF_FINK_FIELDS
    else:
        rec = alert["diaSource"]
        mjd = rec.get("midpointMjdTai")
        time_utc = None if mjd is None else Time(mjd, format="mjd", scale="tai").utc.iso
        scale, names = "TAI", LSST_FINK_FIELDS
    fink = {name: _get(alert, name) for name in names}
    return {
        "survey": survey,
        "objectId": object_id,
        "alertId": alert_id,
        "mjd": mjd,
        "time_scale": scale,
        "time_utc": time_utc,
        "ra": rec.get("ra"),
        "dec": rec.get("dec"),
        "fink": {k: v for k, v in fink.items() if not is_missing(v)},
    }


def _header_lines(h: Mapping[str, Any]) -> list[str]:
    id_name = "candid" if h["survey"] == "ztf" else "diaSourceId"
    lines = [f"{h['objectId']}   ({h['survey'].upper()}, {id_name} {h['alertId']})"]
    if h["mjd"] is not None:
        lines.append(f"time: {h['time_utc']} UTC   (MJD {h['mjd']:.5f} {h['time_scale']})")
    else:
        lines.append("time: missing")
    ra, dec = h["ra"], h["dec"]
    if ra is not None and dec is not None and math.isfinite(ra) and math.isfinite(dec):
        sexa = (f"{Angle(ra, 'deg').to_string(unit='hourangle', sep=':', precision=2)} "
                f"{Angle(dec, 'deg').to_string(unit='deg', sep=':', precision=1, alwayssign=True)}")
        lines.append(f"RA, Dec: {ra:.6f} {dec:+.6f} deg   ({sexa})")
    else:
        lines.append("RA, Dec: missing")
    items = [f"{k}={_fmt(v)}" for k, v in h["fink"].items()]
    text, row = [], ""
    for item in items:  # wrap the classification fields to the width of the figure
        if row and len(row) + len(item) > 115:
            text.append(row)
            row = ""
        row = f"{row}   {item}" if row else item
    if row:
        text.append(row)
    if len(text) > 2:  # the header has room for two lines of them
        text = [*text[:1], text[1] + "   ..."]
    lines += [f"Fink: {t}" if i == 0 else f"      {t}" for i, t in enumerate(text)] or [
        "Fink: no classification fields"]
    return lines


def summary_figure(alert: Mapping[str, Any], *, stretch: str = "arcsinh") -> Figure:
    """A 1200 x 900 px figure: header, the three cutouts, and the light curve.

    The header gives objectId (LSST: diaObjectId), the alert id, the time (UTC, and MJD
    in the survey's time scale), RA/Dec and the Fink classification fields present
    (``cdsxmatch``, ``rf_snia_vs_nonia``, ``snn_snia_vs_nonia``, ``mulens``, ``roid``,
    ``finkclass``, ... see :data:`ZTF_FINK_FIELDS` / :data:`LSST_FINK_FIELDS`).
    Missing parts are drawn as notes, never raised (see the module docstring).
    """
    header = alert_header(alert)
    fig = new_figure(SUMMARY_FIGSIZE)
    grid = fig.add_gridspec(3, 3, height_ratios=[0.8, 3.0, 3.3], left=0.085, right=0.98,
                            bottom=0.06, top=0.98, hspace=0.22, wspace=0.06)
    head = fig.add_subplot(grid[0, :])
    head.axis("off")
    lines = _header_lines(header)
    head.text(0.0, 1.0, lines[0], fontsize=15, fontweight="bold", va="top",
              transform=head.transAxes)
    head.text(0.0, 0.68, "\n".join(lines[1:]), fontsize=9.5, va="top", family="monospace",
              transform=head.transAxes, linespacing=1.4)
    plot_cutouts(alert, stretch=stretch, axes=[fig.add_subplot(grid[1, i]) for i in range(3)])
    ax = fig.add_subplot(grid[2, :])
    try:
        plot_lightcurve(alert, ax=ax)
    except VizError as err:
        ax.text(0.5, 0.5, f"no light curve: {err}", ha="center", va="center",
                transform=ax.transAxes, color="#aa0000")
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def png_name(alert: Mapping[str, Any]) -> str:
    """Unique, deterministic file name ``<objectId>_<alertId>.png`` for an alert."""
    object_id, alert_id = alert_ids(alert)
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{object_id}_{alert_id}") + ".png"


def save_summary_png(alert: Mapping[str, Any], folder: str | Path, *,
                     stretch: str = "arcsinh") -> Path:
    """Write :func:`summary_figure` of ``alert`` to ``folder/<objectId>_<alertId>.png``.

    The name depends only on the alert (see :func:`png_name`), so a rerun rewrites the
    same alert's file and never another's. The file is written atomically (temporary
    name, fsync, rename): a reader never sees half a PNG. Returns the path.
    """
    path = Path(folder) / png_name(alert)
    fig = summary_figure(alert, stretch=stretch)
    with atomic_write(path, overwrite=True) as fh:
        fig.savefig(fh, format="png", dpi=DPI)
    return path
