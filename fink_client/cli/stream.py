"""``finkctl stream TOPIC...``: alerts live on screen, or saved to disk, at least once.

Shown as a live table with a one-line status (count, rate, lag) on a terminal; as plain
lines (one per alert on stdout, a status line on stderr every few seconds) otherwise;
as JSON lines with ``--json``. With ``--save DIR`` alerts go to files through
:mod:`fink_client.sink`, and offsets are committed only once a file is durable.

SIGINT/SIGTERM stop cleanly: the current file is finished and offsets are committed
(exit 0). A second Ctrl-C aborts at once (exit 130): nothing more is committed, so the
alerts not yet saved are read again next time.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from fink_client.cli.auth import UsageError, add_connection_flags, quiet_librdkafka, user_config
from fink_client.cli.common import add_json_flag, print_json, seconds
from fink_client.consumer import AlertConsumer, Delivery
from fink_client.errors import ConfigError
from fink_client.offsets import OffsetsClient, parse_target
from fink_client.sink import FORMATS, DiskSink, StreamStats, check_folder, stream
from fink_client.table import FINK_FIELDS, alert_row

STATUS_EVERY = 2.0  # seconds between end-offset refreshes (plain status lines: every 5 s)


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``stream`` subcommand."""
    p = sub.add_parser(
        "stream",
        help="receive alerts: show them live, or save them to disk",
        description="Consume alerts from the topics with your registered credentials. "
        "Without --save they are shown as a live table (plain lines when not on a terminal); "
        "with --save DIR they are written to files, and offsets are committed only once a "
        "file is safely on disk. Ctrl-C or SIGTERM finish the current file, commit, and "
        "stop; a second Ctrl-C aborts.",
    )
    p.add_argument("topics", nargs="+", metavar="TOPIC")
    p.add_argument("--save", metavar="DIR", help="write the alerts into files in DIR")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="file format with --save (default avro)")
    p.add_argument("--batch-size", type=int, default=1000, metavar="N",
                   help="alerts per file with --save, at most (default 1000)")
    p.add_argument("--limit", type=int, metavar="N", help="stop after N alerts")
    p.add_argument(
        "--start-at", metavar="WHERE",
        help="earliest | latest | ISO time | -N (last N alerts of each partition): move the "
        "group there first (default: where the group stopped)",
    )
    p.add_argument("--until-end", action="store_true",
                   help="stop once the topics are drained (end offsets taken at start)")
    p.add_argument("--timeout", type=seconds, metavar="S",
                   help="stop after S seconds without any new alert")
    p.add_argument("--dead-letter", metavar="DIR",
                   help="keep undecodable messages (raw bytes + reason) in DIR and go on; "
                   "without it an undecodable message stops a --save run (exit 1) and is "
                   "skipped with a warning otherwise")
    p.add_argument("--png", action="store_true",
                   help="with --save: also draw one summary PNG per alert (cutouts, light "
                   "curve, classification) into DIR/png")
    p.add_argument("--schema", metavar="FILE", help="Avro schema to decode (and save) with, "
                   "instead of the schema each message names")
    add_connection_flags(p)
    add_json_flag(p)
    p.set_defaults(func=run)
    return p


# -- signals -------------------------------------------------------------------------
class Stopper:
    """First SIGINT/SIGTERM asks the loop to stop cleanly; a second one aborts."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self._old: dict[int, Any] = {}

    def __call__(self, signum: int, frame: Any) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name
        sys.stderr.write(f"\nfinkctl stream: {self.signal}: finishing the current file and "
                         "committing (Ctrl-C again to abort)\n")
        sys.stderr.flush()

    def __enter__(self) -> Stopper:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def stopped(self) -> bool:
        """True once a signal asked to stop."""
        return self.signal is not None


# -- output --------------------------------------------------------------------------
def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (bytes, dict, list)):
        return None
    return value


def alert_summary(d: Delivery) -> dict[str, Any]:
    """Machine-readable summary of one delivered alert (``--json``), ZTF or LSST."""
    a = d.alert
    out: dict[str, Any] = {"type": "alert", "topic": d.topic, "partition": d.partition,
                           "offset": d.offset, "timestamp_ms": d.timestamp}
    cand = a.get("candidate")
    if isinstance(cand, dict):
        out.update(survey="ztf", objectId=a.get("objectId"), candid=a.get("candid"),
                   jd=cand.get("jd"), magpsf=cand.get("magpsf"), fid=cand.get("fid"))
    else:
        src = a.get("diaSource") or {}
        obj = a.get("diaObject") or {}
        out.update(survey="lsst", diaObjectId=obj.get("diaObjectId"),
                   diaSourceId=a.get("diaSourceId") or src.get("diaSourceId"),
                   midpointMjdTai=src.get("midpointMjdTai"), psfFlux=src.get("psfFlux"),
                   band=src.get("band"))
    for field in FINK_FIELDS:
        if field in a:
            out[field] = a[field]
    return {k: _clean(v) for k, v in out.items()}


class Display:
    """Alerts and the status line: rich live table, plain lines, or JSON lines."""

    def __init__(self, *, json_mode: bool, show_alerts: bool, lag: Any) -> None:
        self.json_mode = json_mode
        self.show_alerts = show_alerts
        self._lag = lag
        self._rows: deque[dict[str, str]] = deque(maxlen=20)
        self._last_status = 0.0
        self._live: Any = None
        self._status_text = ""
        if not json_mode and sys.stdout.isatty():
            try:
                from rich.console import Console
                from rich.live import Live
            except ImportError:  # plain lines it is
                pass
            else:
                self._live = Live(console=Console(), refresh_per_second=4,
                                  get_renderable=self._renderable, transient=False)
                self._live.start()

    def _renderable(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, header_style="bold", pad_edge=False)
        columns: list[str] = []
        for row in self._rows:
            columns.extend(c for c in row if c not in columns)
        for c in columns or ["(waiting for alerts)"]:
            table.add_column(c)
        for row in self._rows:
            table.add_row(*(row.get(c, "-") for c in columns))
        parts: list[Any] = [table] if self.show_alerts else []
        parts.append(Text(self._status_text, style="dim"))
        return Group(*parts)

    def status_text(self, stats: StreamStats, files: int | None) -> str:
        """One-line status: count, rate, lag (and files when saving)."""
        lag = self._lag(stats)
        text = (f"{stats.count} alerts · {stats.rate:.1f}/s · lag "
                f"{'?' if lag is None else lag} · {stats.elapsed:.0f} s")
        return text + (f" · {files} files" if files is not None else "")

    def update(self, got: list[Delivery], stats: StreamStats, files: int | None) -> None:
        """Show new alerts; refresh the status line now and then."""
        for d in got:
            if self.json_mode:
                if self.show_alerts:
                    print_json(alert_summary(d))
            elif self._live is not None:
                self._rows.append(alert_row(d.topic, d.alert))
            elif self.show_alerts:
                row = alert_row(d.topic, d.alert)
                sys.stdout.write("\t".join(row.values()) + "\n")
        if not self.json_mode and self._live is None and got and self.show_alerts:
            sys.stdout.flush()
        if self._live is not None:  # the live frame always shows the current status
            self._status_text = self.status_text(stats, files)
            return
        now = time.monotonic()
        if now - self._last_status >= STATUS_EVERY * 2.5:
            self._last_status = now
            sys.stderr.write(f"finkctl stream: {self.status_text(stats, files)}\n")
            sys.stderr.flush()

    def close(self) -> None:
        """Stop the live display (its last frame stays on screen)."""
        if self._live is not None:
            self._live.stop()
            self._live = None


# -- the command -----------------------------------------------------------------------
def _validate(args: argparse.Namespace) -> Any:
    if args.format and not args.save:
        raise UsageError("--format needs --save DIR")
    if args.png and not args.save:
        raise UsageError("--png needs --save DIR")
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be a positive number of alerts")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    if args.batch_size < 1:
        raise UsageError("--batch-size must be positive")
    regex = [t for t in args.topics if t.startswith("^")]
    if regex and (args.until_end or args.start_at):
        raise UsageError("--until-end and --start-at need topic names, not patterns")
    if args.start_at is None:
        return None
    try:
        return parse_target(args.start_at)
    except ConfigError as exc:
        raise UsageError(f"--start-at: {exc.reason}") from None


def _count_dead(folder: Path | None) -> int:
    return len(list(folder.glob("*.json"))) if folder is not None and folder.is_dir() else 0


def run(args: argparse.Namespace) -> int:
    """Stream alerts until the limit, the end, the timeout or a signal."""
    target = _validate(args)
    quiet_librdkafka(getattr(args, "verbose", 0))
    config = user_config(args)
    save = check_folder(args.save) if args.save else None
    dead = Path(args.dead_letter).expanduser() if args.dead_letter else None
    if dead is not None:
        check_folder(dead)
    schema = None
    if args.schema:
        from fink_client.wire import load_schema

        schema = load_schema(Path(args.schema))
    dead_before = _count_dead(dead)

    oc = OffsetsClient(config)
    try:
        names = [t for t in args.topics if not t.startswith("^")]
        if target is not None:
            oc.reset(names, target)
        report = oc.describe(names) if names else []
        starts = {(r.topic, r.partition): r.position for r in report}
        ends = {(r.topic, r.partition): r.high for r in report}
        ends_now, ends_at = dict(ends), time.monotonic()

        def lag(stats: StreamStats) -> int | None:
            nonlocal ends_now, ends_at
            if not ends:
                return None
            if time.monotonic() - ends_at > STATUS_EVERY:
                ends_now = {k: hi for k, (_, hi) in oc.watermarks(oc.partitions(names)).items()}
                ends_at = time.monotonic()
            return sum(max(0, hi - stats.positions.get(tp, starts.get(tp, 0)))
                       for tp, hi in ends_now.items())

        on_error = "skip" if dead is not None or save is None else "raise"
        consumer = AlertConsumer(args.topics, config, schema, on_error=on_error,
                                 dead_letter=dead, auto_store=save is None)
        display = Display(json_mode=args.json, show_alerts=save is None, lag=lag)
        sink = None
        stats = None
        try:
            if save is not None:
                sink = DiskSink(consumer, save, args.format or "avro", schema=schema,
                                batch_size=args.batch_size,
                                png_folder=Path(save) / "png" if args.png else None)
            with Stopper() as stopper:
                stats = stream(
                    consumer, sink=sink, limit=args.limit, starts=starts,
                    ends=ends if args.until_end else None, idle_timeout=args.timeout,
                    should_stop=stopper.stopped,
                    on_alerts=lambda got, st: display.update(
                        got, st, len(sink.files) if sink is not None else None),
                )
                if stopper.signal:
                    stats.reason = stopper.signal
        finally:
            display.close()
            consumer.close()  # commits what was stored (all written files' alerts)
    finally:
        oc.close()

    summary = {
        "type": "summary", "alerts": stats.count, "seconds": round(stats.elapsed, 3),
        "rate": round(stats.rate, 1), "stopped": stats.reason,
        "group_id": config["group_id"],
        "files": [str(p) for p in sink.files] if sink is not None else [],
        "dead_letters": _count_dead(dead) - dead_before,
    }
    if args.json:
        print_json(summary)
    else:
        where = f" into {len(summary['files'])} file(s) in {save}" if save else ""
        dl = f", {summary['dead_letters']} dead-lettered in {dead}" if summary["dead_letters"] \
            else ""
        print(f"finkctl stream: {stats.count} alerts{where} in {stats.elapsed:.1f} s "
              f"({stats.rate:.1f}/s){dl}; stopped: {stats.reason}; offsets committed",
              file=sys.stderr)
    return 0
