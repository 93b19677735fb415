"""``finkctl stream TOPIC...``: alerts live on screen, or saved to disk, at least once.

Shown as a live table with a one-line status (count, rate, lag) on a terminal; as plain
lines (one per alert on stdout, a status line on stderr every few seconds) otherwise;
as JSON lines with ``--json``. With ``--save DIR`` alerts go to files through
:mod:`fink_client.sink`, and offsets are committed only once a file is durable.

At least once, on every exit: an offset is stored only after its alert reached its
destination: its file durable (``--save``), its line flushed to stdout or, when stdout
is a pipe, taken by the reader. A write that fails (disk full, ``> /dev/full``) stores
nothing of its batch: exit 1, and the next run gets those alerts again. A reader that
closes the pipe early (``| head -3``) ends the run quietly with status 141 (128 +
SIGPIPE, as a Unix tool killed by SIGPIPE), after committing exactly the alerts it read.

SIGINT/SIGTERM stop cleanly: the current file is finished and offsets are committed
(exit 0). A second Ctrl-C aborts at once (exit 130): nothing more is committed, so the
alerts not yet saved are read again next time. Broker outages of any length are
waited out (WARNING lines when the brokers go and come back).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import fcntl
import json
import math
import os
import select
import stat
import struct
import sys
import termios
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fink_client.cli.errors import EXIT_BROKEN_PIPE, UsageError
from fink_client.cli.hooks import add_hook_flags, hook_from_args, hook_runner
from fink_client.cli.options import add_command, seconds, user_config
from fink_client.cli.output import print_json
from fink_client.cli.signals import Stopper
from fink_client.consumer import AlertConsumer, Delivery
from fink_client.errors import AlertError, ConfigError
from fink_client.hooks import Hook, HookSink
from fink_client.io.atomic import clean_stale_temps
from fink_client.offsets import OffsetsClient, parse_target
from fink_client.sink import FORMATS, DiskSink, check_folder
from fink_client.streamloop import StreamStats, stream
from fink_client.survey import LSST, MAIN_FINK_FIELDS, ZTF
from fink_client.table import alert_fields, alert_row

STATUS_EVERY = 2.0  # seconds between end-offset refreshes (plain status lines: every 5 s)


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``stream`` subcommand."""
    p = add_command(sub, "stream", run)
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
    add_hook_flags(p)
    return p


# -- output --------------------------------------------------------------------------
def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (bytes, dict, list)):
        return None
    return value


def alert_summary(d: Delivery) -> dict[str, Any]:
    """Machine-readable summary of one delivered alert (``--json``), ZTF or LSST.

    Built from :func:`fink_client.table.alert_fields` (so the ids and the UTC time are
    those of the table, the PNG and the file names), under the keys of each survey:
    ZTF ``objectId, candid, jd, magpsf, fid``; LSST ``diaObjectId`` (solar-system alerts:
    the ``ssObjectId``), ``diaSourceId, midpointMjdTai`` (TAI), ``psfFlux, band``; both
    ``mjd``/``time`` (UTC) and the survey's main Fink fields present.
    """
    a = d.alert or {}  # always decoded here: the display never asks for raw deliveries
    f = alert_fields(a)
    out: dict[str, Any] = {"type": "alert", "topic": d.topic, "partition": d.partition,
                           "offset": d.offset, "timestamp_ms": d.timestamp,
                           "survey": f["survey"]}
    if f["survey"] == LSST:
        src = a.get("diaSource") or {}
        out.update(diaObjectId=f["objectId"], diaSourceId=f["alertId"],
                   midpointMjdTai=src.get("midpointMjdTai"), psfFlux=f["flux"],
                   band=f["band"])
    else:
        cand = a.get("candidate") or {}
        out.update(objectId=f["objectId"], candid=f["alertId"], jd=cand.get("jd"),
                   magpsf=f["mag"], fid=cand.get("fid"))
    out.update(mjd=f["mjd"], time=f["time"])
    out.update((k, f[k]) for k in MAIN_FINK_FIELDS[f["survey"] or ZTF] if k in f)
    return {k: _clean(v) for k, v in out.items()}


def _pipe_fd(stream: Any) -> int | None:
    """File descriptor of ``stream`` when it is a pipe, else None."""
    try:
        fd = stream.fileno()
        return fd if stat.S_ISFIFO(os.fstat(fd).st_mode) else None
    except (AttributeError, OSError, ValueError):
        return None


def _unread(fd: int) -> int:
    """Bytes written into pipe ``fd`` that its reader has not taken yet (Linux FIONREAD)."""
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]


def _reader_gone(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(ev & select.POLLERR for _, ev in poller.poll(0))


def wait_taken(fd: int, should_stop: Callable[[], bool]) -> bool:
    """Wait until the reader of pipe ``fd`` has taken everything written into it.

    True once taken; False if a stop was asked meanwhile. Raises BrokenPipeError when
    the reader went away first (what it had not read is lost with the pipe).
    """
    delay = 0.0001
    while _unread(fd):
        if _reader_gone(fd):
            raise BrokenPipeError(errno.EPIPE, "the reader of stdout went away")
        if should_stop():
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return True


class Display:
    """Alerts and the status line: rich live table, plain lines, or JSON lines.

    :meth:`show` returns only once each alert reached its destination: the live frame
    redrawn on a terminal; the line written and flushed to a file; on a pipe, the line
    *taken by the reader* (written one at a time), so that a reader that stops early
    (``| head -3``) leaves the alerts it never read to the next run.
    """

    def __init__(self, *, json_mode: bool, show_alerts: bool, lag: Any,
                 should_stop: Callable[[], bool] = lambda: False) -> None:
        self.json_mode = json_mode
        self.show_alerts = show_alerts
        self._lag = lag
        self._should_stop = should_stop
        self._rows: deque[dict[str, str]] = deque(maxlen=20)
        self._last_status = 0.0
        self._live: Any = None
        self._status_text = ""
        self._pipe = _pipe_fd(sys.stdout)
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

    def _line(self, d: Delivery) -> str:
        if self.json_mode:
            return json.dumps(alert_summary(d), default=str) + "\n"
        return "\t".join(alert_row(d.topic, d.alert or {}).values()) + "\n"

    def show(self, got: Sequence[Delivery], done: list[Delivery]) -> None:
        """Put ``got`` on screen/stdout; append to ``done`` each delivery that reached it."""
        if not got:
            return
        if self._live is not None:
            self._rows.extend(alert_row(d.topic, d.alert or {}) for d in got)
            self._live.refresh()
            done.extend(got)
            return
        if self._pipe is None:
            sys.stdout.write("".join(self._line(d) for d in got))
            sys.stdout.flush()
            done.extend(got)
            return
        for d in got:
            sys.stdout.write(self._line(d))
            sys.stdout.flush()
            if not wait_taken(self._pipe, self._should_stop):
                return  # stopping: what the reader has not taken comes again next run
            done.append(d)

    def update(self, got: list[Delivery], stats: StreamStats, files: int | None) -> None:
        """Refresh the status line now and then."""
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


class StdoutError(OSError):
    """Writing the alerts to stdout failed (not a closed pipe)."""


class DisplaySink:
    """The sink of a run without ``--save``: alerts go to :class:`Display`, and their
    offsets are stored once they reached it (never for a line that failed to be
    written, or that a pipe's reader never took)."""

    batch_size = 200

    def __init__(self, consumer: AlertConsumer, display: Display) -> None:
        self.consumer = consumer
        self.display = display

    def add(self, deliveries: Sequence[Delivery]) -> None:
        """Show ``deliveries``; store the offsets of those shown."""
        if not deliveries:
            return
        done: list[Delivery] = []
        try:
            self.display.show(deliveries, done)
        except BrokenPipeError:
            raise
        except OSError as exc:  # disk full, /dev/full, I/O error
            raise StdoutError(exc.errno, f"cannot write the alerts to stdout "
                              f"({exc.strerror}); the alerts not written were not committed: "
                              "the next run gets them again") from None
        finally:
            if len(done) == len(deliveries):
                self.consumer.store_delivered()  # also skipped undecodable messages
            elif done:
                upto: dict[tuple[str, int], int] = {}
                for d in done:
                    upto[(d.topic, d.partition)] = max(upto.get((d.topic, d.partition), 0),
                                                       d.offset + 1)
                self.consumer.store_delivered(upto)

    def close(self, *, only_written: bool = False) -> None:
        """Nothing is buffered here."""


class LagMeter:
    """Lag for the status line, which must never stop the stream: end offsets are
    refreshed with a short timeout, and while the broker does not answer (an outage)
    the last known ones are kept and refreshes back off up to a minute."""

    def __init__(self, config: dict[str, Any], report: Sequence[Any]) -> None:
        from confluent_kafka import TopicPartition

        self._starts = {(r.topic, r.partition): r.position for r in report}
        self.ends = {(r.topic, r.partition): r.high for r in report}
        self._tps = [TopicPartition(r.topic, r.partition) for r in report]
        self._client = OffsetsClient(config, timeout=1.0) if report else None
        self._next = time.monotonic() + STATUS_EVERY
        self._backoff = STATUS_EVERY

    def __call__(self, stats: StreamStats) -> int | None:
        if self._client is None:
            return None
        if time.monotonic() >= self._next:
            try:
                self.ends = {k: hi for k, (_, hi) in self._client.watermarks(self._tps).items()}
                self._backoff = STATUS_EVERY
            except AlertError:
                self._backoff = min(60.0, self._backoff * 2)
            self._next = time.monotonic() + self._backoff
        return sum(max(0, hi - stats.positions.get(tp, self._starts.get(tp, 0)))
                   for tp, hi in self.ends.items())

    def close(self) -> None:
        """Release the client."""
        if self._client is not None:
            self._client.close()


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


def _silence_stdout() -> None:
    """After stdout failed, send what is left in its buffer to /dev/null: the exit must
    not print a second error (or a traceback) while flushing it."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


@dataclasses.dataclass
class _Plan:
    """What a run was asked to do, checked before anything connects."""

    target: Any  # where --start-at moves the group, or None
    hook: Hook | None
    config: dict[str, Any]
    save: Path | None
    dead: Path | None
    schema: dict[str, Any] | None
    dead_before: int

    @property
    def plain(self) -> bool:
        """No sink of its own: the alerts go to the display."""
        return self.save is None and self.hook is None


def _plan(args: argparse.Namespace) -> _Plan:
    """Options checked, config built, folders ready (dead-letter leftovers cleaned)."""
    target = _validate(args)
    hook = hook_from_args(args)
    config = user_config(args)
    save = check_folder(args.save) if args.save else None
    dead = Path(args.dead_letter).expanduser() if args.dead_letter else None
    if dead is not None:
        check_folder(dead)
        clean_stale_temps(dead)
    schema = None
    if args.schema:
        from fink_client.wire import load_schema

        schema = load_schema(Path(args.schema))
    return _Plan(target, hook, config, save, dead, schema, _count_dead(dead))


def _positions(plan: _Plan, topics: Sequence[str]) -> list[Any]:
    """Move the group to ``--start-at`` first; where each partition starts and ends."""
    oc = OffsetsClient(plan.config)
    try:
        names = [t for t in topics if not t.startswith("^")]
        if plan.target is not None:
            oc.reset(names, plan.target)
        return oc.describe(names) if names else []
    finally:
        oc.close()


def _sink(args: argparse.Namespace, plan: _Plan, consumer: AlertConsumer,
          display: Display) -> Any:
    """Where the alerts go: files (``--save``), hooks, or the display; each stores an
    offset only once its alert reached it."""
    if plan.save is not None:
        from fink_client.io.deadletter import DeadLetter

        dead_letter = DeadLetter(plan.dead) if plan.dead is not None else None
        return DiskSink(consumer, plan.save, args.format or "avro", schema=plan.schema,
                        batch_size=args.batch_size, dead_letter=dead_letter,
                        png_folder=plan.save / "png" if args.png else None)
    if plan.hook is not None:
        return HookSink(consumer, hook_runner(args, plan.hook, plan.dead))
    return DisplaySink(consumer, display)


def _consume(args: argparse.Namespace, plan: _Plan, report: list[Any],
             lag: LagMeter) -> tuple[StreamStats, Any]:
    """The stream loop until the limit, the end, the timeout or a signal; the consumer
    closed (committing what the sink stored, nothing else)."""
    starts = {(r.topic, r.partition): r.position for r in report}
    ends = {(r.topic, r.partition): r.high for r in report}
    stopper = Stopper("stream", "finishing the current file and committing")
    on_error = "skip" if plan.dead is not None or plan.plain else "raise"
    consumer = AlertConsumer(args.topics, plan.config, plan.schema, on_error=on_error,
                             dead_letter=plan.dead, auto_store=False)
    display = Display(json_mode=args.json, show_alerts=plan.plain, lag=lag,
                      should_stop=stopper.stopped)
    try:
        sink = _sink(args, plan, consumer, display)
        files = (lambda: len(sink.files)) if plan.save is not None else (lambda: None)
        with stopper:
            stats = stream(
                consumer, sink=sink, limit=args.limit, starts=starts,
                ends=ends if args.until_end else None, idle_timeout=args.timeout,
                should_stop=stopper.stopped,
                on_alerts=lambda got, st: display.update(got, st, files()),
            )
            if stopper.signal:
                stats.reason = stopper.signal
    finally:
        display.close()
        consumer.close()
    return stats, sink


def _report(args: argparse.Namespace, plan: _Plan, stats: StreamStats, sink: Any) -> int:
    """The end-of-run summary: a JSON object on stdout (``--json``) or a line on stderr."""
    summary: dict[str, Any] = {
        "type": "summary", "alerts": stats.count, "seconds": round(stats.elapsed, 3),
        "rate": round(stats.rate, 1), "stopped": stats.reason,
        "group_id": plan.config["group_id"],
        "files": [str(p) for p in sink.files] if plan.save is not None else [],
        "dead_letters": _count_dead(plan.dead) - plan.dead_before,
    }
    if plan.hook is not None:
        runner = sink.runner
        summary["hooks"] = {"succeeded": runner.succeeded, "dead_lettered": runner.dead_lettered,
                            "tries": runner.attempts}
    if args.json:
        try:
            print_json(summary)
        except BrokenPipeError:  # offsets are committed already; the reader left
            _silence_stdout()
            return EXIT_BROKEN_PIPE
        return 0
    where = f" into {len(summary['files'])} file(s) in {plan.save}" if plan.save else ""
    dl = (f", {summary['dead_letters']} dead-lettered in {plan.dead}"
          if summary["dead_letters"] else "")
    print(f"finkctl stream: {stats.count} alerts{where} in {stats.elapsed:.1f} s "
          f"({stats.rate:.1f}/s){dl}; stopped: {stats.reason}; offsets committed",
          file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    """receive alerts: show them live, or save them to disk

    Consume alerts from the topics with your registered credentials. Without --save they
    are shown as a live table (plain lines when not on a terminal); with --save DIR they
    are written to files, and offsets are committed only once a file is safely on disk.
    Ctrl-C or SIGTERM finish the current file, commit, and stop; a second Ctrl-C aborts.
    """
    plan = _plan(args)
    report = _positions(plan, args.topics)
    lag = LagMeter(plan.config, report)
    try:
        stats, sink = _consume(args, plan, report, lag)
    except BrokenPipeError:
        _silence_stdout()  # the reader left: quiet, as a Unix tool killed by SIGPIPE
        return EXIT_BROKEN_PIPE
    except StdoutError:
        _silence_stdout()
        raise
    finally:
        lag.close()
    return _report(args, plan, stats, sink)
