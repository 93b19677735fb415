"""``finkctl transfer TOPIC --out DIR``: download a Fink Data Transfer topic into a dataset.

A thin layer over :func:`fink_client.transfer.transfer`: flags, a rich progress bar
(alerts, MB, rate, ETA from the group's lag) on a terminal, a final summary (plain, or
``--json``). SIGINT/SIGTERM stop cleanly (batches in progress are finished and committed,
exit 0); a second Ctrl-C aborts (exit 130, nothing more committed).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fink_client.cli.errors import UsageError
from fink_client.cli.options import add_command, seconds, user_config
from fink_client.cli.output import print_json
from fink_client.cli.signals import Stopper
from fink_client.transfer import FORMATS, Progress, request_stop, transfer


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``transfer`` subcommand."""
    p = add_command(sub, "transfer", run)
    p.add_argument("topic", metavar="TOPIC")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (the dataset)")
    p.add_argument("--format", choices=FORMATS, default="parquet",
                   help="file format (default parquet)")
    p.add_argument("--partition-by", default="none", metavar="WHAT",
                   help="none | time (year=/month=/day= of the observation) | finkclass | "
                   "tnsclass | any field, dotted for nested ones (diaSource.band); "
                   "default none")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes (default: the number of CPUs)")
    p.add_argument("--limit", type=int, metavar="N", help="stop after N alerts")
    p.add_argument("--batch-size", type=int, default=1000, metavar="N",
                   help="alerts per file and per commit, at most (default 1000)")
    p.add_argument("--timeout", type=seconds, default=60.0, metavar="S",
                   help="stop after S seconds without progress of the group (default 60)")
    p.add_argument("--restart-from-beginning", action="store_true",
                   help="move the group to the start of the topic first (download it again)")
    p.add_argument("--schema", metavar="FILE",
                   help="Avro schema of the values (instead of the one on TOPIC_schema)")
    p.add_argument("--dead-letter", metavar="DIR",
                   help="keep undecodable messages (raw bytes + reason) in DIR and go on; "
                   "without it an undecodable message stops the transfer (exit 1)")
    return p


class ProgressBar:
    """rich progress bar on a terminal; a status line on stderr every 10 s otherwise."""

    def __init__(self, quiet: bool) -> None:
        self._bar: Any = None
        self._task: Any = None
        self._quiet = quiet
        self._last = 0.0
        if not quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                TaskProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
                TextColumn("{task.fields[alerts]} alerts · {task.fields[mb]:.1f} MB · "
                           "{task.fields[rate]:.0f}/s · lag {task.fields[lag]}"),
                TimeRemainingColumn(), console=Console(stderr=True), transient=False)
            self._bar.start()

    def __call__(self, p: Progress) -> None:
        done = max(0, p.total - p.lag)
        if self._bar is not None:
            if self._task is None:
                self._task = self._bar.add_task(p.topic, total=max(p.total, 1), alerts=0,
                                                mb=0.0, rate=0.0, lag=p.lag)
            self._bar.update(self._task, completed=done, alerts=p.alerts,
                             mb=p.payload_bytes / 1e6, rate=p.rate, lag=p.lag)
        elif not self._quiet and p.seconds - self._last >= 10:
            self._last = p.seconds
            eta = f"{p.eta:.0f} s" if p.eta is not None else "?"
            print(f"finkctl transfer: {p.alerts} alerts · {p.payload_bytes / 1e6:.1f} MB · "
                  f"{p.rate:.0f}/s · lag {p.lag} · ETA {eta}", file=sys.stderr, flush=True)

    def close(self) -> None:
        """Stop the bar (its last frame stays)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _validate(args: argparse.Namespace) -> None:
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be a positive number of alerts")
    if args.batch_size < 1:
        raise UsageError("--batch-size must be positive")
    if args.topic.startswith("^"):
        raise UsageError("transfer takes one topic name, not a pattern")


def run(args: argparse.Namespace) -> int:
    """download a Fink Data Transfer topic (ftransfer_*, fxmatch_*) into files

    Download a whole Fink Data Transfer topic into DIR as one dataset (Parquet by
    default), with N worker processes of your consumer group. The same command on several
    machines with the same group shares the partitions. Offsets are committed only once a
    file is on disk: stop or kill it at any time, then run it again to resume. A rerun
    after completion does nothing.
    """
    _validate(args)
    verbose = getattr(args, "verbose", 0)
    config = user_config(args)
    bar = ProgressBar(quiet=args.json)
    try:
        with Stopper("transfer", "finishing the batches in progress",
                     on_stop=request_stop) as stopper:
            result = transfer(
                args.topic, args.out, config, fmt=args.format, partition_by=args.partition_by,
                workers=args.workers, limit=args.limit, batch_size=args.batch_size,
                timeout=args.timeout, restart_from_beginning=args.restart_from_beginning,
                schema=args.schema, dead_letter=args.dead_letter, progress=bar,
                verbose=verbose,
            )
            if stopper.signal:
                result.reason = stopper.signal
    finally:
        bar.close()
    if args.json:
        print_json({"type": "summary", **result.as_dict()})
    elif result.reason == "nothing to do":
        print(f"finkctl transfer: nothing to do: group {result.group_id!r} has already "
              f"transferred every alert of {result.topic!r} (use --restart-from-beginning "
              "to download it again)", file=sys.stderr)
    else:
        dl = f", {result.dead_letters} dead-lettered" if result.dead_letters else ""
        mbs = result.payload_bytes / 1e6 / max(result.seconds, 1e-9)
        print(f"finkctl transfer: {result.alerts} alerts into {result.files} file(s) "
              f"({result.disk_bytes / 1e6:.1f} MB) in {result.out} in {result.seconds:.1f} s "
              f"({result.rate:.0f} alerts/s, {mbs:.1f} MB/s){dl}; lag left {result.lag}; "
              f"stopped: {result.reason}", file=sys.stderr)
    return 0
