"""Look at alerts: cutouts, light curves, one-page summaries, schema trees.

>>> from fink_client.viz import plot_cutouts, plot_lightcurve, summary_figure
>>> fig = summary_figure(alert)          # doctest: +SKIP
>>> fig.savefig("alert.png")             # doctest: +SKIP

Every function returns a :class:`matplotlib.figure.Figure` made without ``pyplot``:
no display is needed (PNGs render with Agg) and the user's backend is left alone.
In a notebook, ``display(fig)`` shows it.

What happens on bad data (documented per function):

- a missing or corrupt cutout: :func:`read_cutout` raises :class:`CutoutError` naming the
  field; :func:`plot_cutouts` and :func:`summary_figure` draw a "missing"/"corrupt" panel;
- no history: light curves plot the current point with a "no history" note;
- no photometry at all: :func:`plot_lightcurve` raises :class:`VizError` naming the field,
  :func:`summary_figure` writes the reason in the light-curve panel;
- not a ZTF or LSST alert: every function raises :class:`VizError`.
"""

from fink_client.viz._common import (
    CUTOUTS_FIGSIZE,
    DPI,
    LIGHTCURVE_FIGSIZE,
    SUMMARY_FIGSIZE,
    CutoutError,
    VizError,
    survey_of,
)
from fink_client.viz.cutouts import plot_cutouts, read_cutout
from fink_client.viz.lightcurve import lightcurve, plot_lightcurve
from fink_client.viz.schematree import SchemaField, format_schema_tree, schema_fields
from fink_client.viz.summary import (
    alert_header,
    alert_ids,
    png_name,
    save_summary_png,
    summary_figure,
)

__all__ = [
    "CUTOUTS_FIGSIZE",
    "DPI",
    "LIGHTCURVE_FIGSIZE",
    "SUMMARY_FIGSIZE",
    "CutoutError",
    "SchemaField",
    "VizError",
    "alert_header",
    "alert_ids",
    "format_schema_tree",
    "lightcurve",
    "plot_cutouts",
    "plot_lightcurve",
    "png_name",
    "read_cutout",
    "save_summary_png",
    "schema_fields",
    "summary_figure",
    "survey_of",
]
