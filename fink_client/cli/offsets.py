"""``finkctl offsets TOPIC... [--reset earliest|latest|TIME|-N]``: see or move your group."""

from __future__ import annotations

import argparse

from fink_client.cli.errors import UsageError
from fink_client.cli.options import add_command, user_config
from fink_client.cli.output import format_offsets, print_json
from fink_client.errors import ConfigError
from fink_client.offsets import OffsetsClient, parse_target


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``offsets`` subcommand."""
    p = add_command(sub, "offsets", run)
    p.add_argument("topics", nargs="+", metavar="TOPIC")
    p.add_argument(
        "--reset", metavar="TO",
        help="earliest | latest | an ISO time (first alert at or after it, e.g. "
        "2024-05-01T12:00:00Z) | -N (the last N alerts of each partition)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    """show your group's offsets on topics, or reset them

    Show the committed offset of your consumer group, the earliest and end offsets and
    the lag of each partition of the topics. With --reset, first move the group's
    committed offsets (no consumer of the group may be running).
    """
    target = None
    if args.reset is not None:
        try:
            target = parse_target(args.reset)
        except ConfigError as exc:
            raise UsageError(f"--reset: {exc.reason}") from None
    config = user_config(args)
    with OffsetsClient(config) as oc:
        before = oc.describe(args.topics)
        after = oc.reset(args.topics, target) if target is not None else None
    if args.json:
        out: dict = {"group_id": config["group_id"],
                     "offsets": [r.as_dict() for r in (after or before)]}
        if after is not None:
            out["reset_to"] = str(target)
            out["before"] = [r.as_dict() for r in before]
        print_json(out)
        return 0
    print(f"group {config['group_id']}")
    if after is not None:
        print(f"before reset:\n{format_offsets(before)}\n\nafter reset to {args.reset}:")
    print(format_offsets(after or before))
    return 0
