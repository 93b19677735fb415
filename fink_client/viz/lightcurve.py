"""Light curves: the alert's photometry history as a table and as a plot.

ZTF: the detection (``candidate``) and its history (``prv_candidates``), as PSF
magnitudes ``magpsf ± sigmapsf`` per band (``fid`` 1=g, 2=r, 3=i); history entries
whose ``magpsf`` is null are non-detections, shown as upper limits at ``diffmaglim``.

Rubin/LSST: difference-image PSF fluxes ``psfFlux ± psfFluxErr`` in nJy per band from
``diaSource`` and ``prvDiaSources``, plus forced photometry (``prvDiaForcedSources``)
when present. Times are MJD (TAI for LSST).

Behaviour on thin data: an alert with no history plots its single point and says
"no history"; only an alert with no photometry at all (no magnitude, no limit, no
flux) raises :class:`~fink_client.viz.VizError` naming the empty field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from fink_client.survey import JD_TO_MJD, ZTF, ZTF_BANDS
from fink_client.viz._common import (
    BAND_COLOURS,
    LIGHTCURVE_FIGSIZE,
    VizError,
    figure_of,
    new_figure,
    survey_of,
)

ZTF_COLUMNS = ["mjd", "jd", "band", "fid", "magpsf", "sigmapsf", "diffmaglim", "isdiffpos",
               "detected", "candid", "source"]
LSST_COLUMNS = ["mjd", "band", "psfFlux", "psfFluxErr", "detected", "forced", "id", "source"]


def _records(value: Any) -> list[Mapping[str, Any]]:
    """A history field as a list of records (None, NaN and numpy arrays accepted)."""
    if value is None or isinstance(value, float):
        return []
    return [r for r in list(value) if isinstance(r, Mapping)]


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _ztf_table(alert: Mapping[str, Any]) -> pd.DataFrame:
    rows = []
    history = [(r, "prv_candidates") for r in _records(alert.get("prv_candidates"))]
    for rec, source in [*history, (alert["candidate"], "candidate")]:
        jd = _num(rec.get("jd"))
        fid = rec.get("fid")
        mag = _num(rec.get("magpsf"))
        rows.append({
            "mjd": jd - JD_TO_MJD,
            "jd": jd,
            "band": ZTF_BANDS.get(fid, str(fid)),
            "fid": fid,
            "magpsf": mag,
            "sigmapsf": _num(rec.get("sigmapsf")),
            "diffmaglim": _num(rec.get("diffmaglim")),
            "isdiffpos": rec.get("isdiffpos"),
            "detected": bool(np.isfinite(mag)),
            "candid": rec.get("candid"),
            "source": source,
        })
    return pd.DataFrame(rows, columns=ZTF_COLUMNS)


def _lsst_table(alert: Mapping[str, Any]) -> pd.DataFrame:
    rows = []
    groups = [
        ("prvDiaForcedSources", _records(alert.get("prvDiaForcedSources")), True),
        ("prvDiaSources", _records(alert.get("prvDiaSources")), False),
        ("diaSource", [alert["diaSource"]], False),
    ]
    for source, records, forced in groups:
        for rec in records:
            flux = _num(rec.get("psfFlux"))
            rows.append({
                "mjd": _num(rec.get("midpointMjdTai")),
                "band": rec.get("band"),
                "psfFlux": flux,
                "psfFluxErr": _num(rec.get("psfFluxErr")),
                "detected": not forced and bool(np.isfinite(flux)),
                "forced": forced,
                "id": rec.get("diaForcedSourceId") if forced else rec.get("diaSourceId"),
                "source": source,
            })
    return pd.DataFrame(rows, columns=LSST_COLUMNS)


def lightcurve(alert: Mapping[str, Any]) -> pd.DataFrame:
    """The alert's photometry as a pandas table, one row per measurement, sorted by time.

    ZTF columns: ``mjd, jd, band, fid, magpsf, sigmapsf, diffmaglim, isdiffpos, detected,
    candid, source`` (``detected`` false = upper limit at ``diffmaglim``).
    LSST columns: ``mjd`` (TAI), ``band, psfFlux, psfFluxErr`` (nJy), ``detected``,
    ``forced`` (forced photometry), ``id`` (diaSourceId or diaForcedSourceId), ``source``.
    ``source`` tells which alert field the row comes from. The current detection is the
    row whose ``source`` is ``candidate`` / ``diaSource``.
    """
    survey = survey_of(alert)
    table = _ztf_table(alert) if survey == ZTF else _lsst_table(alert)
    table = table.sort_values("mjd", kind="stable", ignore_index=True)
    table.attrs["survey"] = survey
    return table


def _has_history(alert: Mapping[str, Any], survey: str) -> bool:
    if survey == ZTF:
        return bool(_records(alert.get("prv_candidates")))
    return bool(_records(alert.get("prvDiaSources")) or _records(alert.get("prvDiaForcedSources")))


def _plot_ztf(ax: Axes, table: pd.DataFrame) -> None:
    det = table[table["detected"]]
    lim = table[~table["detected"] & np.isfinite(table["diffmaglim"])]
    if det.empty and lim.empty:
        raise VizError("no photometry to plot: magpsf and diffmaglim are null everywhere",
                       field="candidate.magpsf")
    for band in sorted(set(table["band"]), key=lambda b: "gri".find(b) % 10):
        colour = BAND_COLOURS.get(band, "black")
        d = det[det["band"] == band]
        if not d.empty:
            neg = d["isdiffpos"].isin(["f", "0"])
            for sub, face in ((d[~neg], colour), (d[neg], "white")):
                if not sub.empty:
                    ax.errorbar(sub["mjd"], sub["magpsf"], yerr=sub["sigmapsf"], fmt="o",
                                color=colour, mfc=face, ms=5, capsize=2,
                                label=f"ztf {band}" + (" (negative diff.)" if face == "white"
                                                       else ""))
        u = lim[lim["band"] == band]
        if not u.empty:
            ax.scatter(u["mjd"], u["diffmaglim"], marker="v", facecolors="none",
                       edgecolors=colour, alpha=0.6, s=30, label=f"{band} upper limit")
    ax.invert_yaxis()  # astronomers' magnitudes: brighter is up
    ax.set_ylabel("PSF magnitude (difference image)")
    ax.set_xlabel("MJD (UTC)")


def _plot_lsst(ax: Axes, table: pd.DataFrame) -> None:
    ok = table[np.isfinite(table["psfFlux"])]
    if ok.empty:
        raise VizError("no photometry to plot: psfFlux is null everywhere",
                       field="diaSource.psfFlux")
    order = "ugrizy"
    for band in sorted(set(ok["band"]), key=lambda b: order.find(str(b)) % 10):
        colour = BAND_COLOURS.get(str(band), "black")
        b = ok[ok["band"] == band]
        det, forced = b[~b["forced"]], b[b["forced"]]
        if not det.empty:
            ax.errorbar(det["mjd"], det["psfFlux"], yerr=det["psfFluxErr"], fmt="o",
                        color=colour, ms=5, capsize=2, label=f"{band} DIA source")
        if not forced.empty:
            ax.errorbar(forced["mjd"], forced["psfFlux"], yerr=forced["psfFluxErr"], fmt="s",
                        color=colour, mfc="white", ms=4, capsize=2, alpha=0.7,
                        label=f"{band} forced")
    ax.axhline(0.0, color="grey", lw=0.8, ls=":")
    ax.set_ylabel("PSF flux [nJy] (difference image)")
    ax.set_xlabel("MJD (TAI)")


def plot_lightcurve(alert: Mapping[str, Any], *, ax: Axes | None = None) -> Figure:
    """Plot the light curve of a ZTF or LSST alert; return the figure.

    ZTF: magnitudes with error bars per band (hollow markers: negative difference),
    upper limits as open triangles, magnitude axis inverted. LSST: fluxes in nJy per
    band, forced photometry as open squares. A dashed line marks the current alert.
    With no history the single point is drawn and a "no history" note shown.
    ``ax``: axes to draw into; by default a new 800 x 450 px figure is made.
    Raises :class:`VizError` (naming the field) if there is nothing to plot at all.
    """
    survey = survey_of(alert)
    table = lightcurve(alert)
    if ax is None:
        fig = new_figure(LIGHTCURVE_FIGSIZE)
        ax = fig.add_subplot(1, 1, 1)
        fig.subplots_adjust(left=0.11, right=0.97, bottom=0.13, top=0.93)
    if survey == ZTF:
        _plot_ztf(ax, table)
        current = table[table["source"] == "candidate"]
    else:
        _plot_lsst(ax, table)
        current = table[table["source"] == "diaSource"]
    if not current.empty and np.isfinite(current["mjd"].iloc[0]):
        ax.axvline(current["mjd"].iloc[0], color="black", ls="--", lw=0.8, alpha=0.6,
                   label="this alert")
    if not _has_history(alert, survey):
        field = "prv_candidates" if survey == ZTF else "prvDiaSources"
        ax.text(0.02, 0.96, f"no history ({field} is empty)", transform=ax.transAxes,
                va="top", fontsize=9, color="#aa0000")
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best", ncol=2)
    return figure_of(ax)
