"""fink_client.viz: cutouts, light curves, summaries and schema trees render real content.

Every sample alert (raw ZTF, simulated ZTF, Fink ZTF, Fink LSST) and synthetic LSST
alerts are drawn to PNG; the PNGs are read back and checked for their pixel size and
for image content (the cutout panels must hold many grey levels, not a flat colour).
"""

from __future__ import annotations

import copy
import gzip
import io
import math
from pathlib import Path
from typing import Any

import fastavro
import matplotlib.image as mpimg
import numpy as np
import pytest
from matplotlib.figure import Figure

from fink_client import schemas, synth, viz
from fink_client.errors import AlertError, SchemaError
from fink_client.viz import (
    CutoutError,
    VizError,
    alert_header,
    format_schema_tree,
    lightcurve,
    plot_cutouts,
    plot_lightcurve,
    png_name,
    read_cutout,
    save_summary_png,
    schema_fields,
    summary_figure,
)
from fink_client.viz.cutouts import _compass

SAMPLES = Path(__file__).resolve().parents[2] / "fink_client" / "data" / "samples"
SAMPLE_FILES = sorted(SAMPLES.rglob("*.avro"))
ZTF_FINK = SAMPLES / "ztf" / "fink" / "fink-broker-sample-alert-1.avro"
ZTF_RAW = SAMPLES / "ztf" / "raw" / "ZTF19acihgng.avro"
LSST = SAMPLES / "lsst" / "fink-7.4" / "58804293150441522_58804293150441522.avro"
LSST_SCHEMA = "avro_schema_ftransfer_lsst_2026-03-18"


def load(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        return next(iter(fastavro.reader(fh)))


def px(figsize: tuple[float, float]) -> tuple[int, int]:
    """(height, width) in pixels of a figure of ``figsize`` inches at DPI."""
    return round(figsize[1] * viz.DPI), round(figsize[0] * viz.DPI)


def png_array(fig: Figure, tmp_path: Path, name: str = "fig.png") -> np.ndarray:
    path = tmp_path / name
    fig.savefig(path, dpi=viz.DPI)
    return mpimg.imread(path)


def panel_pixels(fig: Figure, image: np.ndarray, index: int) -> np.ndarray:
    """RGB pixels inside axes ``index`` of ``fig`` (as saved in ``image``)."""
    bbox = fig.axes[index].get_window_extent()
    h = image.shape[0]
    x0, x1 = math.ceil(bbox.x0) + 2, math.floor(bbox.x1) - 2
    y0, y1 = h - math.floor(bbox.y1) + 2, h - math.ceil(bbox.y0) - 2
    return image[y0:y1, x0:x1, :3]


def assert_rich_image(pixels: np.ndarray, min_std: float = 0.03, min_levels: int = 40,
                      max_dominant: float = 0.5) -> None:
    """Pixels that look like a picture: spread out, many distinct colours, and no single
    colour covering more than ``max_dominant`` of the area (a saturated or blank stamp
    with an overlay drawn on it fails that last check)."""
    assert pixels.size > 0
    assert float(pixels.std()) > min_std, f"flat image (std {pixels.std():.4f})"
    colours, counts = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0,
                                return_counts=True)
    assert len(colours) >= min_levels, f"only {len(colours)} distinct colours"
    dominant = counts.max() / counts.sum()
    assert dominant <= max_dominant, f"one colour covers {dominant:.0%} of the image"


def texts(fig: Figure) -> str:
    return "\n".join(t.get_text() for ax in fig.axes for t in ax.texts)


def synthetic_lsst(n: int) -> list[dict[str, Any]]:
    return list(synth.generate(LSST_SCHEMA, n, seed=7))


# -- every sample renders ----------------------------------------------------------------


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_sample_summary_png_has_expected_size_and_content(path: Path, tmp_path: Path):
    alert = load(path)
    out = save_summary_png(alert, tmp_path)
    assert out.name == png_name(alert)
    image = mpimg.imread(out)
    assert image.shape[:2] == px(viz.SUMMARY_FIGSIZE)
    assert_rich_image(image[..., :3], min_std=0.1, min_levels=300, max_dominant=1.0)
    # The three cutout panels, alone, are real pictures (not blank, not one colour).
    fig = summary_figure(alert)
    again = png_array(fig, tmp_path)
    for i in (1, 2, 3):
        assert_rich_image(panel_pixels(fig, again, i))
    assert "MISSING" not in texts(fig) and "CORRUPT" not in texts(fig)


@pytest.mark.parametrize("path", [ZTF_FINK, ZTF_RAW, LSST], ids=lambda p: p.stem)
def test_cutouts_and_lightcurve_figures_have_their_documented_sizes(path: Path, tmp_path):
    alert = load(path)
    cut = png_array(plot_cutouts(alert), tmp_path, "c.png")
    assert cut.shape[:2] == px(viz.CUTOUTS_FIGSIZE)
    lc = png_array(plot_lightcurve(alert), tmp_path, "l.png")
    assert lc.shape[:2] == px(viz.LIGHTCURVE_FIGSIZE)
    assert_rich_image(lc[..., :3], min_std=0.05, min_levels=50, max_dominant=1.0)


def test_zscale_stretch_renders_too(tmp_path: Path):
    fig = plot_cutouts(load(ZTF_FINK), stretch="zscale")
    image = png_array(fig, tmp_path)
    for i in range(3):
        assert_rich_image(panel_pixels(fig, image, i))
    with pytest.raises(ValueError, match="stretch"):
        plot_cutouts(load(ZTF_FINK), stretch="log")


def test_synthetic_lsst_alerts_render(tmp_path: Path):
    alerts = synthetic_lsst(3)
    paths = [save_summary_png(a, tmp_path) for a in alerts]
    assert len(set(paths)) == len(alerts)
    for p in paths:
        image = mpimg.imread(p)
        assert image.shape[:2] == px(viz.SUMMARY_FIGSIZE)
        assert_rich_image(image[..., :3], min_std=0.1, min_levels=100, max_dominant=1.0)


# -- cutouts ---------------------------------------------------------------------------


def test_read_cutout_ztf_gzipped_and_lsst_plain_fits():
    data, _ = read_cutout(load(ZTF_FINK), "Science")
    assert data.shape == (63, 63)
    template, _ = read_cutout(load(ZTF_FINK), "Template")
    # ZTF's -3.4e38 fill value becomes NaN, not a pixel that ruins the stretch.
    assert np.nanmin(template) > -1e30 and np.isnan(template).any()
    lsst, header = read_cutout(load(LSST), "Difference")
    assert lsst.ndim == 2 and np.isfinite(lsst).mean() > 0.9
    assert header["BUNIT"].strip() == "nJy"


def test_compass_uses_lsst_wcs_and_keeps_sky_parity():
    data, header = read_cutout(load(LSST), "Science")
    north, east, from_wcs = _compass(header, data.shape, "lsst")
    assert from_wcs
    assert abs(float(north @ east)) < 0.05  # perpendicular
    # On the sky seen from inside, East is 90 degrees counter-clockwise from North.
    assert north[0] * east[1] - north[1] * east[0] > 0.95
    # This cutout is rotated: North is not straight up.
    assert abs(north[0]) > 0.3
    zdata, zheader = read_cutout(load(ZTF_FINK), "Science")
    znorth, zeast, zwcs = _compass(zheader, zdata.shape, "ztf")
    assert not zwcs and list(znorth) == [0, 1] and list(zeast) == [-1, 0]


@pytest.mark.parametrize(
    ("path", "field", "value", "where"),
    [
        (ZTF_FINK, "cutoutScience", None, "cutoutScience"),
        (ZTF_FINK, "cutoutTemplate", {"fileName": "x", "stampData": None},
         "cutoutTemplate.stampData"),
        (LSST, "cutoutDifference", b"", "cutoutDifference"),
    ],
)
def test_missing_cutout_raises_in_read_and_is_drawn_as_missing(path, field, value, where,
                                                                tmp_path):
    alert = load(path)
    alert[field] = value
    kind = field.removeprefix("cutout")
    with pytest.raises(CutoutError, match="missing") as exc:
        read_cutout(alert, kind)
    assert exc.value.field == where
    assert isinstance(exc.value, AlertError)
    fig = plot_cutouts(alert)
    assert texts(fig).count("MISSING") == 1
    assert where in texts(fig)
    # The two other panels still show their images.
    image = png_array(fig, tmp_path)
    good = [i for i, k in enumerate(("Science", "Template", "Difference")) if k != kind]
    for i in good:
        assert_rich_image(panel_pixels(fig, image, i))


def _gz_fits(alert: dict[str, Any], kind: str) -> bytes:
    return alert[f"cutout{kind}"]["stampData"]


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda raw: raw[: len(raw) // 2],  # truncated gzip
        lambda raw: b"\x1f\x8b" + b"\x00garbage" * 10,  # bad gzip header
        lambda raw: gzip.compress(b"not a fits file at all" * 10),  # gzip of junk
        lambda raw: gzip.compress(gzip.decompress(raw)[:4000]),  # FITS cut inside the data
    ],
    ids=["truncated-gzip", "bad-gzip", "not-fits", "truncated-fits"],
)
def test_corrupt_ztf_cutout_is_a_typed_error_and_a_corrupt_panel(corrupt):
    alert = load(ZTF_FINK)
    alert["cutoutScience"] = dict(alert["cutoutScience"],
                                  stampData=corrupt(_gz_fits(alert, "Science")))
    with pytest.raises(CutoutError, match="corrupt") as exc:
        read_cutout(alert, "Science")
    assert exc.value.field == "cutoutScience.stampData"
    assert "cutoutScience.stampData" in str(exc.value)
    fig = plot_cutouts(alert)
    assert "CORRUPT" in texts(fig)
    summary = summary_figure(alert)  # still renders the rest
    assert "CORRUPT" in texts(summary)


def test_corrupt_lsst_cutout(tmp_path: Path):
    alert = load(LSST)
    alert["cutoutTemplate"] = alert["cutoutTemplate"][:3000]
    with pytest.raises(CutoutError, match="corrupt") as exc:
        read_cutout(alert, "Template")
    assert exc.value.field == "cutoutTemplate"
    out = save_summary_png(alert, tmp_path)
    assert mpimg.imread(out).shape[:2] == px(viz.SUMMARY_FIGSIZE)


# -- light curves ------------------------------------------------------------------------


def test_ztf_lightcurve_table_detections_and_upper_limits():
    alert = load(ZTF_FINK)
    table = lightcurve(alert)
    prv = alert["prv_candidates"]
    assert len(table) == len(prv) + 1
    assert table["mjd"].is_monotonic_increasing
    assert int((~table["detected"]).sum()) == sum(p["magpsf"] is None for p in prv)
    assert set(table["band"]) <= {"g", "r", "i"}
    current = table[table["source"] == "candidate"].iloc[0]
    assert current["magpsf"] == pytest.approx(alert["candidate"]["magpsf"])
    assert current["mjd"] == pytest.approx(alert["candidate"]["jd"] - 2400000.5)


def test_ztf_lightcurve_plot_is_inverted_with_limits():
    alert = load(ZTF_FINK)
    fig = plot_lightcurve(alert)
    ax = fig.axes[0]
    assert ax.yaxis_inverted()  # brighter (smaller magnitude) is up
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("upper limit" in lab for lab in labels)
    assert any(lab.startswith("ztf g") for lab in labels)


def test_lsst_lightcurve_has_fluxes_and_forced_photometry():
    alert = load(LSST)
    table = lightcurve(alert)
    n_forced = len(alert["prvDiaForcedSources"])
    assert int(table["forced"].sum()) == n_forced
    assert len(table) == 1 + len(alert["prvDiaSources"]) + n_forced
    assert table.loc[table["source"] == "diaSource", "psfFlux"].iloc[0] == pytest.approx(
        alert["diaSource"]["psfFlux"])
    ax = plot_lightcurve(alert).axes[0]
    assert "nJy" in ax.get_ylabel()
    assert not ax.yaxis_inverted()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("forced" in lab for lab in labels)


@pytest.mark.parametrize("path", [ZTF_FINK, LSST], ids=["ztf", "lsst"])
def test_alert_without_history_draws_its_single_point(path: Path, tmp_path: Path):
    alert = load(path)
    for field in ("prv_candidates", "prvDiaSources", "prvDiaForcedSources"):
        if field in alert:
            alert[field] = None
    assert len(lightcurve(alert)) == 1
    fig = plot_lightcurve(alert)
    assert "no history" in texts(fig)
    out = save_summary_png(alert, tmp_path)
    assert mpimg.imread(out).shape[:2] == px(viz.SUMMARY_FIGSIZE)


def test_no_photometry_at_all_is_an_error_naming_the_field_but_summary_still_renders():
    alert = load(ZTF_FINK)
    alert["prv_candidates"] = []
    alert["candidate"] = dict(alert["candidate"], magpsf=None, diffmaglim=None)
    with pytest.raises(VizError) as exc:
        plot_lightcurve(alert)
    assert exc.value.field == "candidate.magpsf"
    fig = summary_figure(alert)
    assert "no light curve" in texts(fig)


def test_not_an_alert_is_a_typed_error():
    with pytest.raises(VizError, match="neither"):
        plot_cutouts({"foo": 1})
    with pytest.raises(VizError):
        lightcurve({"objectId": "x"})
    with pytest.raises(VizError):
        summary_figure([1, 2])  # type: ignore[arg-type]


# -- header and names ----------------------------------------------------------------------


def test_header_ztf_fields_and_nan_skipped():
    alert = load(ZTF_FINK)
    alert.update(rf_snia_vs_nonia=0.25, snn_snia_vs_nonia=float("nan"), roid=3,
                 mulens={"class_1": "ML", "class_2": None})
    h = alert_header(alert)
    assert h["objectId"] == "ZTF18abvcdqu" and h["survey"] == "ztf"
    assert h["time_utc"].startswith("2019-11-15")
    assert h["ra"] == pytest.approx(alert["candidate"]["ra"])
    assert h["fink"]["cdsxmatch"] == "RRLyr"
    assert h["fink"]["rf_snia_vs_nonia"] == 0.25 and h["fink"]["roid"] == 3
    assert "snn_snia_vs_nonia" not in h["fink"]  # NaN is not shown
    shown = texts(summary_figure(alert))
    for piece in ("ZTF18abvcdqu", "cdsxmatch=RRLyr", "rf_snia_vs_nonia=0.250", "roid=3",
                  "class_1: ML", "2019-11-15"):
        assert piece in shown


def test_header_lsst_uses_tai_and_dia_ids():
    alert = load(LSST)
    h = alert_header(alert)
    assert h["objectId"] == str(alert["diaSource"]["diaObjectId"])
    assert h["alertId"] == str(alert["diaSource"]["diaSourceId"])
    assert h["time_scale"] == "TAI"
    # TAI is 37 s ahead of UTC in 2025.
    assert h["time_utc"].startswith("2025-04-11 20:03:15")
    assert "snn_sn_vs_others" in h["fink"]


def test_png_names_unique_and_rerun_rewrites_same_file(tmp_path: Path):
    alerts = [load(p) for p in SAMPLE_FILES]
    names = {png_name(a) for a in alerts}
    assert len(names) == len(alerts)
    first = save_summary_png(alerts[0], tmp_path)
    again = save_summary_png(copy.deepcopy(alerts[0]), tmp_path)
    assert first == again and len(list(tmp_path.iterdir())) == 1
    odd = load(ZTF_FINK)
    odd["objectId"] = "ZTF/../x y"
    assert "/" not in png_name(odd) and " " not in png_name(odd)
    del odd["objectId"]
    with pytest.raises(VizError) as exc:
        png_name(odd)
    assert exc.value.field == "objectId"


# -- schema tree ---------------------------------------------------------------------------


def test_schema_tree_of_ztf_schema():
    schema = schemas.load("ztf_alert_3.3")
    text = format_schema_tree(schema)
    assert text.splitlines()[0] == "ztf.alert (record)"
    assert "├── candidate: record candidate" in text
    assert "│   ├── jd: double — Observation Julian date at start of exposure [days]" in text
    assert "cutoutTemplate: record cutout (as above) | null" in text
    paths = {f.path for f in schema_fields(schema)}
    assert {"candidate.magpsf", "prv_candidates.diffmaglim", "cutoutScience.stampData"} <= paths
    top = format_schema_tree(schema, max_depth=1, docs=False)
    assert "jd" not in top and "└── cutoutDifference" in top
    assert "—" not in top


def test_schema_tree_of_every_bundled_schema_and_errors():
    for name in schemas.bundled():
        rows = schema_fields(schemas.load(name))
        assert len(rows) > 50, name
    lsst = {f.path for f in schema_fields(schemas.load(LSST_SCHEMA))}
    assert {"diaSource.psfFlux", "prvDiaForcedSources.band", "clf.cats_class"} <= lsst
    with pytest.raises(SchemaError):
        schema_fields({"type": "array", "items": "int"})
    with pytest.raises(SchemaError):
        schema_fields({"type": "record", "name": "x", "fields": [{"type": "int"}]})


def test_schema_tree_from_avro_file_header():
    with open(LSST, "rb") as fh:
        schema = fastavro.reader(fh).writer_schema
    rows = schema_fields(schema)
    assert any(r.path == "diaSource.midpointMjdTai" for r in rows)
    buf = io.StringIO()
    buf.write(format_schema_tree(schema))
    assert buf.getvalue().count("\n") == len(rows)
