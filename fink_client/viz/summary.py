"""One-page summary of an alert: header, cutouts and light curve; and PNG files of it.

:func:`summary_figure` never fails because a part is missing: a bad cutout becomes a
"missing"/"corrupt" panel, an empty light curve a note. It raises
:class:`~fink_client.viz.VizError` only for something that is not a ZTF/LSST alert.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from astropy.coordinates import Angle
from astropy.time import Time
from matplotlib.figure import Figure

from fink_client import survey
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


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, Mapping):  # e.g. older Fink mulens: {"class_1": ..., "class_2": ...}
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()
                               if not is_missing(v)) + "}"
    return str(value)


def alert_ids(alert: Mapping[str, Any]) -> tuple[str, str]:
    """``(object id, alert id)`` as text, from :mod:`fink_client.survey`: ZTF ``objectId,
    candid``; LSST ``diaObjectId`` (solar-system alerts: ``ssObjectId``), ``diaSourceId``
    (``alertId`` in 7.x).

    Raises :class:`VizError` naming the field when one is missing.
    """
    ztf = survey_of(alert) == survey.ZTF
    try:
        obj: Any = survey.object_id(alert)
    except (KeyError, TypeError):
        obj = None
    if is_missing(obj):
        raise VizError("alert has no identifier",
                       field="objectId" if ztf else "diaObject.diaObjectId")
    try:
        aid: Any = survey.alert_id(alert)
    except (KeyError, TypeError):
        aid = None
    if is_missing(aid):
        raise VizError("alert has no identifier", field="candid" if ztf else "diaSourceId")
    return str(obj), str(aid)


def alert_header(alert: Mapping[str, Any]) -> dict[str, Any]:
    """What the summary header shows, as a dict.

    Keys: ``survey``, ``objectId``, ``alertId``, ``mjd`` (in the survey's time scale),
    ``time_scale`` (UTC for ZTF, TAI for LSST), ``time_utc`` (ISO, from
    :func:`fink_client.survey.mjd`), ``ra``, ``dec`` (degrees) and ``fink`` (a dict of
    the Fink classification fields present and not null, in the order of
    :data:`fink_client.survey.FINK_FIELDS`).
    """
    kind = survey_of(alert)
    try:
        object_id, alert_id = alert_ids(alert)
    except VizError:
        object_id, alert_id = "?", "?"
    if kind == survey.ZTF:
        rec = alert["candidate"]
        jd = rec.get("jd")
        mjd = None if jd is None else jd - survey.JD_TO_MJD
        scale = "UTC"
    else:
        rec = alert["diaSource"]
        mjd = rec.get("midpointMjdTai")
        scale = "TAI"
    time_utc = None if mjd is None else Time(survey.mjd(alert), format="mjd", scale="utc").iso
    fink = {name: survey.field(alert, name) for name in survey.FINK_FIELDS[kind]}
    return {
        "survey": kind,
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
    id_name = "candid" if h["survey"] == survey.ZTF else "diaSourceId"
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
    ``finkclass``, ... see :data:`fink_client.survey.FINK_FIELDS`).
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
    """Unique, deterministic file name ``<objectId>_<alertId>.png`` for an alert: the
    stem of :func:`fink_client.survey.file_stem`, as for the alert's data file."""
    alert_ids(alert)  # a VizError naming the missing id
    return survey.file_stem(alert) + ".png"


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
