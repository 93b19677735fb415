"""``finkctl show FILE|DIR... [--out DIR]``: one PNG picture per alert.

Each alert of the given files (Avro, Avro.gz, Parquet, JSON lines, or folders of them,
read with :class:`fink_client.io.AlertReader`) becomes ``<objectId>_<alertId>.png``
(LSST: ``<diaObjectId>_<diaSourceId>.png``): header, cutouts and light curve. Names
depend only on the alert, so a rerun rewrites the same files and never another
alert's. A missing or corrupt cutout is drawn as such (see :mod:`fink_client.viz`);
an alert that cannot be drawn at all is reported and skipped, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fink_client.cli.errors import EXIT_OK, EXIT_RUNTIME, UsageError
from fink_client.cli.options import add_command
from fink_client.cli.output import print_json
from fink_client.errors import AlertError

KINDS = ("summary", "cutouts", "lightcurve")


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``show`` subcommand."""
    p = add_command(sub, "show", run, connection=None)
    p.add_argument("paths", nargs="+", metavar="FILE|DIR",
                   help="alert files (.avro, .avro.gz, .parquet, .jsonl) or folders")
    p.add_argument("--out", metavar="DIR", default=".",
                   help="folder for the PNG files (default: the current folder)")
    p.add_argument("--kind", choices=KINDS, default="summary",
                   help="what to draw: the whole summary (default), or only the cutouts "
                   "or only the light curve")
    p.add_argument("--stretch", choices=("arcsinh", "zscale"), default="arcsinh",
                   help="cutout intensity stretch (default arcsinh)")
    p.add_argument("--limit", type=int, metavar="N", help="draw at most N alerts")
    return p


def _save(alert: dict[str, Any], out: Path, kind: str, stretch: str) -> Path:
    from fink_client.io.atomic import atomic_write
    from fink_client.viz import DPI, plot_cutouts, plot_lightcurve, png_name, save_summary_png

    if kind == "summary":
        return save_summary_png(alert, out, stretch=stretch)
    fig = plot_cutouts(alert, stretch=stretch) if kind == "cutouts" else plot_lightcurve(alert)
    path = out / png_name(alert).replace(".png", f"_{kind}.png")
    with atomic_write(path, overwrite=True) as fh:
        fig.savefig(fh, format="png", dpi=DPI)
    return path


def run(args: argparse.Namespace) -> int:
    """draw alerts from files as PNG pictures (cutouts + light curve)

    Write one PNG per alert found in the files or folders: a header (objectId, time,
    position, Fink classification), the science/template/difference cutouts and the
    light curve. Files are named <objectId>_<alertId>.png.
    """
    from fink_client.io import AlertReader

    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be positive")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    failed: list[dict[str, Any]] = []
    for i, alert in enumerate(AlertReader(args.paths)):
        if args.limit is not None and i >= args.limit:
            break
        try:
            path = _save(alert, out, args.kind, args.stretch)
        except AlertError as exc:  # this alert cannot be drawn: say why, go on
            failed.append({"index": i, "error": str(exc)})
            print(f"finkctl show: alert #{i}: {exc}", file=sys.stderr)
            continue
        written.append(str(path))
        if not args.json:
            print(path, flush=True)
    if args.json:
        print_json({"written": written, "failed": failed})
    elif not written and not failed:
        print("no alert found", file=sys.stderr)
    return EXIT_RUNTIME if failed else EXIT_OK
