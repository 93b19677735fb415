"""The three image cutouts of an alert: science, template and difference.

ZTF ships each cutout as a record whose ``stampData`` is a *gzipped* FITS file;
Rubin/LSST ships plain FITS bytes directly in ``cutoutScience`` etc. (with a WCS and
extra uncertainty/PSF extensions). :func:`read_cutout` hides the difference.

Behaviour on bad data (chosen so a stream of alerts can always be looked at):

- :func:`read_cutout` is strict: a missing, empty or corrupt cutout raises
  :class:`~fink_client.viz.CutoutError` naming the field (``cutoutScience`` or
  ``cutoutScience.stampData``);
- :func:`plot_cutouts` never fails on a bad cutout: it draws the good ones and a grey
  panel saying "missing" or "corrupt" (with the reason) in place of the others.
"""

from __future__ import annotations

import gzip
import io
import math
import warnings
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
from astropy.io import fits
from astropy.visualization import (
    AsinhStretch,
    BaseStretch,
    ImageNormalize,
    LinearStretch,
    ZScaleInterval,
)
from astropy.wcs import WCS
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from fink_client.viz._common import (
    CUTOUTS_FIGSIZE,
    CutoutError,
    figure_of,
    new_figure,
    survey_of,
)

#: Cutout kinds in display order (field names are ``cutout<Kind>``).
KINDS = ("Science", "Template", "Difference")
STRETCHES = ("arcsinh", "zscale")
#: Pixel values beyond this magnitude are fill values, not data (read as NaN).
BLANK_ABOVE = 1e30
#: Greyscale with blank (NaN) pixels in dark blue, so they are not mistaken for sky.
CMAP = matplotlib.colormaps["gray"].with_extremes(bad="#27336b")


def _cutout_bytes(alert: Mapping[str, Any], kind: str) -> tuple[bytes, str]:
    """Raw FITS (possibly gzipped) bytes of one cutout, and the field they came from."""
    if kind not in KINDS:
        raise ValueError(f"cutout kind must be one of {KINDS}, not {kind!r}")
    field = f"cutout{kind}"
    value = alert.get(field)
    if isinstance(value, Mapping):  # ZTF: {"fileName": ..., "stampData": gzipped FITS}
        field = f"{field}.stampData"
        value = value.get("stampData")
    if value is None:
        raise CutoutError("cutout is missing (null or absent)", field=field)
    if isinstance(value, (bytearray, memoryview)):
        value = bytes(value)
    if not isinstance(value, bytes):
        raise CutoutError(f"cutout is {type(value).__name__}, expected FITS bytes", field=field)
    if not value:
        raise CutoutError("cutout is missing (empty bytes)", field=field)
    return value, field


def read_cutout(alert: Mapping[str, Any], kind: str = "Science") -> tuple[np.ndarray, fits.Header]:
    """Pixels (2-D float array) and FITS header of cutout ``kind`` of a ZTF or LSST alert.

    ``kind`` is ``"Science"``, ``"Template"`` or ``"Difference"``. The first HDU holding
    a 2-D image is used (LSST cutouts also carry variance and PSF extensions).
    Raises :class:`CutoutError` naming the field when the cutout is missing, empty, not
    valid gzip, or not a readable FITS image. Blank pixels (NaN, or ZTF's -3.4e38 fill
    value) are NaN in the array.
    """
    raw, field = _cutout_bytes(alert, kind)
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise CutoutError(f"cutout is corrupt: bad gzip data ({exc})", field=field) from exc
    if not raw.startswith(b"SIMPLE"):
        raise CutoutError(
            f"cutout is corrupt: not a FITS file (starts with {raw[:8]!r})", field=field
        )
    try:
        with warnings.catch_warnings():
            # ZTF stamps have a slightly non-standard SIMPLE card; harmless, so quiet.
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            # A truncated file only *warns* in astropy: make it an error here.
            warnings.filterwarnings("error", message=".*truncated.*")
            with fits.open(io.BytesIO(raw), memmap=False, lazy_load_hdus=False) as hdul:
                for hdu in hdul:
                    data = hdu.data
                    if data is not None and getattr(data, "ndim", 0) == 2 and data.size:
                        pixels = np.array(data, dtype=float)
                        # ZTF marks blank pixels with the float32 extreme (-3.4e38).
                        pixels[np.abs(pixels) > BLANK_ABOVE] = np.nan
                        return pixels, hdu.header.copy()
    except CutoutError:
        raise
    except Exception as exc:  # astropy raises OSError, ValueError, TypeError, warnings...
        raise CutoutError(f"cutout is corrupt: unreadable FITS ({exc})", field=field) from exc
    raise CutoutError("cutout is corrupt: no 2-D image in the FITS file", field=field)


class _SymmetricAsinh(BaseStretch):
    """Arcsinh stretch symmetric around the middle of [0, 1] (i.e. around zero flux)."""

    def __init__(self, a: float, invert: bool = False) -> None:
        super().__init__()
        self.a = a
        self.invert = invert

    def __call__(self, values: Any, clip: bool = True, out: Any = None) -> np.ndarray:
        x = 2.0 * np.asarray(values, dtype=float) - 1.0
        k = np.arcsinh(1.0 / self.a)
        y = self.a * np.sinh(x * k) if self.invert else np.arcsinh(x / self.a) / k
        y = 0.5 + 0.5 * y
        if clip:
            y = np.clip(y, 0.0, 1.0)
        if out is not None:
            out[...] = y
            return out
        return y

    @property
    def inverse(self) -> BaseStretch:
        return _SymmetricAsinh(self.a, not self.invert)


def _noise(values: np.ndarray) -> float:
    """Robust standard deviation (scaled median absolute deviation) of the sky."""
    return 1.4826 * float(np.median(np.abs(values - np.median(values))))


def _norm(data: np.ndarray, stretch: str, kind: str) -> ImageNormalize:
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        finite = np.zeros(1)
    if stretch == "zscale":
        return ImageNormalize(finite, interval=ZScaleInterval(), stretch=LinearStretch())
    if kind == "Difference":
        # Symmetric around zero (sky mid-grey, brightening white, fading black), arcsinh
        # on both sides so that the noise stays visible next to a bright residual.
        # The arcsinh knee sits at ~2 sigma of the noise: nearly linear for a faint
        # residual, compressed for a bright one.
        sigma = _noise(finite)
        m = max(float(np.percentile(np.abs(finite), 99.9)), 5.0 * sigma) or 1.0
        a = min(max(2.0 * sigma / m, 0.02), 1.0)
        return ImageNormalize(vmin=-m, vmax=m, stretch=_SymmetricAsinh(a))
    # arcsinh: linear up to a few sigma of sky noise (so the sky is visible, never a flat
    # black), logarithmic on bright sources. The floor sits 2 sigma below the sky level.
    sky = float(np.median(finite))
    sigma = _noise(finite)
    vmin = sky - 2.0 * sigma
    vmax = float(np.percentile(finite, 99.5))
    if vmax <= vmin:
        vmax = vmin + 1.0
    a = min(max(5.0 * sigma / (vmax - vmin), 0.002), 1.0)
    return ImageNormalize(vmin=vmin, vmax=vmax, stretch=AsinhStretch(a))


def _compass(header: fits.Header, shape: tuple[int, int], survey: str) -> tuple[
    np.ndarray, np.ndarray, bool
]:
    """Unit pixel vectors pointing North and East, and whether they come from a WCS.

    LSST cutouts carry a (linear) WCS: the directions are measured on it. ZTF stamps have none:
    ZTF images are delivered North up, East left, which is what is returned then
    (``from_wcs`` false, labelled "nominal" on the figure).
    """
    header = header.copy()
    if "CTYPE1" not in header and "CRVAL1" in header and ("PC1_1" in header or "CD1_1" in header):
        # LSST cutouts carry a linear WCS in degrees without CTYPE: over a few arcseconds
        # a tangent projection around CRVAL is exact enough to find North and East.
        header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs = WCS(header).celestial
        if wcs.has_celestial and wcs.naxis == 2:
            cy, cx = (shape[0] - 1) / 2, (shape[1] - 1) / 2
            ra, dec = wcs.wcs_pix2world([[cx, cy]], 0)[0]
            step = 1.0 / 3600  # one arcsecond
            north = wcs.wcs_world2pix([[ra, dec + step]], 0)[0] - (cx, cy)
            east = wcs.wcs_world2pix([[ra + step / max(math.cos(math.radians(dec)), 1e-6), dec]],
                                     0)[0] - (cx, cy)
            if np.all(np.isfinite(north)) and np.all(np.isfinite(east)):
                return north / np.linalg.norm(north), east / np.linalg.norm(east), True
    except Exception:  # any WCS trouble: fall back to the nominal orientation
        pass
    return np.array([0.0, 1.0]), np.array([-1.0, 0.0]), False


def _draw_compass(ax: Axes, shape: tuple[int, int], north: np.ndarray, east: np.ndarray,
                  from_wcs: bool) -> None:
    h, w = shape
    length = 0.16 * min(h, w)
    # Put the compass's origin on the side opposite to where the arrows point, so that
    # the arrows stay inside the image and away from the source at its centre.
    both = north + east
    away = -both / (np.linalg.norm(both) or 1.0)
    ox = (w - 1) / 2 + away[0] * 0.36 * min(h, w)
    oy = (h - 1) / 2 + away[1] * 0.36 * min(h, w)
    for vec, label in ((north, "N"), (east, "E")):
        tip = (ox + vec[0] * length, oy + vec[1] * length)
        ax.annotate("", xy=tip, xytext=(ox, oy),
                    arrowprops={"arrowstyle": "->", "color": "yellow", "lw": 1.5})
        ax.text(ox + vec[0] * length * 1.35, oy + vec[1] * length * 1.35, label,
                color="yellow", ha="center", va="center", fontsize=9, fontweight="bold")
    if not from_wcs:
        ax.text(0.02, 0.02, "nominal N/E", transform=ax.transAxes, color="yellow",
                fontsize=7, va="bottom")


def _draw_problem(ax: Axes, title: str, err: CutoutError) -> None:
    ax.set_facecolor("#dddddd")
    word = "missing" if "missing" in err.reason else "corrupt"
    ax.text(0.5, 0.55, f"{word.upper()}", transform=ax.transAxes, ha="center",
            va="center", fontsize=16, color="#aa0000", fontweight="bold")
    ax.text(0.5, 0.35, f"{err.field}:\n{err.reason[:80]}", transform=ax.transAxes,
            ha="center", va="center", fontsize=7, color="#333333", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)


def plot_cutouts(
    alert: Mapping[str, Any],
    *,
    stretch: str = "arcsinh",
    axes: Sequence[Axes] | None = None,
) -> Figure:
    """Draw the science, template and difference cutouts side by side.

    ``stretch`` is ``"arcsinh"`` (default: from 2 sigma below the sky to the 99.5th
    percentile, linear over the sky noise and logarithmic on bright sources, so faint
    hosts, sky and bright cores all show; the difference image is linear and
    symmetric around zero so that negative residuals show dark on grey) or ``"zscale"``
    (IRAF's zscale, linear, for all three).
    Each panel has North and East arrows (measured on the WCS when the cutout has one,
    else ZTF's nominal North-up East-left). A missing or corrupt cutout gives a grey
    panel saying so instead of an error. ``axes``: three axes to draw into (e.g. part
    of a larger figure); by default a new 900 x 340 px figure is made.
    Returns the figure. Raises :class:`VizError` only if ``alert`` is neither ZTF nor LSST.
    """
    if stretch not in STRETCHES:
        raise ValueError(f"stretch must be one of {STRETCHES}, not {stretch!r}")
    survey = survey_of(alert)
    if axes is None:
        fig = new_figure(CUTOUTS_FIGSIZE)
        axes = fig.subplots(1, 3)
        fig.subplots_adjust(left=0.02, right=0.98, bottom=0.04, top=0.88, wspace=0.08)
    else:
        if len(axes) != 3:
            raise ValueError(f"axes must hold 3 Axes, not {len(axes)}")
        fig = figure_of(axes[0])
    for ax, kind in zip(axes, KINDS, strict=True):
        title = kind.lower()
        try:
            data, header = read_cutout(alert, kind)
        except CutoutError as err:
            _draw_problem(ax, title, err)
            continue
        ax.imshow(data, origin="lower", cmap=CMAP, norm=_norm(data, stretch, kind),
                  interpolation="nearest")
        north, east, from_wcs = _compass(header, data.shape, survey)
        _draw_compass(ax, data.shape, north, east, from_wcs)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{title} ({data.shape[1]}x{data.shape[0]})", fontsize=10)
    return fig
