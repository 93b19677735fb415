"""Entry point of ``finkctl``.

Each subcommand lives in its own module ``fink_client.cli.<name>`` that defines
``register(subparsers) -> argparse.ArgumentParser``; the parser it returns must set
``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an exit code).

Exit codes (README "The `finkctl` command", defined in :mod:`fink_client.cli.errors`):
0 ok, 1 runtime error, 2 usage error (argparse's, or a :class:`UsageError` a command
raises), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from fink_client.cli.errors import EXIT_INTERRUPTED, EXIT_RUNTIME, EXIT_USAGE, UsageError
from fink_client.errors import AlertError

# Order is the order shown by --help.
SUBCOMMANDS: tuple[str, ...] = ("auth", "topics", "stream", "transfer", "offsets", "show",
                                 "schema", "broker", "replay", "demo")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="finkctl",
        description="Receive, store and look at the alert streams of the Fink broker.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"fink_client.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``finkctl`` and return its exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    from fink_client._kafka import set_log_verbosity

    set_log_verbosity(args.verbose)
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"finkctl: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AlertError as exc:
        print(f"finkctl: error: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        print("finkctl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        print(f"finkctl: error: {exc}", file=sys.stderr)
        return EXIT_RUNTIME


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
