"""Shared pieces of :mod:`fink_client.viz`: errors, survey detection, sizes, colours.

What an alert means (survey, ids, times, bands) comes from :mod:`fink_client.survey`.

Figures are built with :class:`matplotlib.figure.Figure` directly, never through
``pyplot``: they need no display and no GUI backend (they render with Agg when saved),
they are not kept alive by pyplot's global figure registry (no leak when a stream
renders thousands of them), and importing this package never changes the user's
matplotlib backend.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure

from fink_client import survey
from fink_client.errors import AlertError, SchemaError

#: Resolution of every figure made here; sizes below are in inches, so a figure's PNG is
#: ``figsize * DPI`` pixels (e.g. the summary is 1200 x 900).
DPI = 100
CUTOUTS_FIGSIZE = (9.0, 3.4)
LIGHTCURVE_FIGSIZE = (8.0, 4.5)
SUMMARY_FIGSIZE = (12.0, 9.0)

#: Colour per band, ZTF and Rubin/LSST (u g r i z y).
BAND_COLOURS = {
    "u": "#5b2c9f",
    "g": "#1b9e3a",
    "r": "#d62728",
    "i": "#e6850e",
    "z": "#8c564b",
    "y": "#333333",
}


class VizError(AlertError):
    """An alert cannot be drawn: unknown survey, or nothing at all to plot.

    ``field`` names the alert field at fault (e.g. ``candidate.magpsf``).
    """


class CutoutError(VizError):
    """A cutout is missing, empty or corrupt (``field`` names it, e.g. ``cutoutScience``)."""


def survey_of(alert: Mapping[str, Any]) -> str:
    """``"ztf"`` or ``"lsst"``, as :func:`fink_client.survey.detect_survey` tells.

    Raises :class:`VizError` for something that is not an alert of either survey.
    """
    if not isinstance(alert, Mapping):
        raise VizError(f"an alert is a dict, not {type(alert).__name__}")
    try:
        kind = survey.detect_survey(alert)
    except SchemaError:
        raise VizError(
            "not a ZTF or Rubin/LSST alert: it has neither ZTF fields (a 'candidate' record, "
            "objectId, candid) nor a 'diaSource' record (top-level fields: "
            f"{', '.join(list(alert)[:12])})",
            field="candidate",
        ) from None
    record = "candidate" if kind == survey.ZTF else "diaSource"
    if not isinstance(alert.get(record), Mapping):
        raise VizError(f"the alert's '{record}' record is null or not a record", field=record)
    return kind


def is_missing(value: Any) -> bool:
    """True for None, NaN and empty strings (values a figure should not show)."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in ("", "nan", "none", "null")


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A pyplot-free figure with a white background at :data:`DPI`."""
    return Figure(figsize=figsize, dpi=DPI, facecolor="white")


def figure_of(ax: Axes) -> Figure:
    """The top-level figure ``ax`` is drawn on (the root one when it is in a subfigure)."""
    fig = ax.figure
    return fig.figure if isinstance(fig, SubFigure) else fig
