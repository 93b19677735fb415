"""``finkctl topics [--lag] [--json]``: the topics you can read, and your group's lag."""

from __future__ import annotations

import argparse

from fink_client.cli.options import add_command, user_config
from fink_client.cli.output import format_offsets, print_json
from fink_client.offsets import OffsetsClient


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``topics`` subcommand."""
    p = add_command(sub, "topics", run)
    p.add_argument("--lag", action="store_true", help="committed/end offsets and lag per partition")
    p.add_argument("--all", action="store_true",
                   help="also list schema side topics (<topic>_schema)")
    return p


def run(args: argparse.Namespace) -> int:
    """list the topics you can read (with --lag: your group's lag per partition)

    List the topics your credentials may read, with their partitions. With --lag, show
    per partition the committed offset of your group, the end offset and the lag (alerts
    not read yet).
    """
    config = user_config(args)
    with OffsetsClient(config) as oc:
        topics = oc.list_topics()
        if not args.all:
            topics = {t: n for t, n in topics.items() if not t.endswith("_schema")}
        rows = oc.describe(list(topics)) if args.lag and topics else []
    if args.json:
        out: dict = {"group_id": config["group_id"],
                     "topics": [{"topic": t, "partitions": n} for t, n in topics.items()]}
        if args.lag:
            out["offsets"] = [r.as_dict() for r in rows]
            out["total_lag"] = sum(r.lag for r in rows)
        print_json(out)
        return 0
    if not topics:
        print("no topic readable with these credentials (ask the Fink team for access)")
        return 0
    if args.lag:
        print(f"group {config['group_id']}")
        print(format_offsets(rows))
        print(f"total lag: {sum(r.lag for r in rows)}")
    else:
        width = max(len(t) for t in topics)
        print(f"{'topic'.ljust(width)}  partitions")
        for t, n in topics.items():
            print(f"{t.ljust(width)}  {n:>10}")
    return 0
