"""Helpers shared by the finkctl subcommands."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any


def seconds(text: str) -> float:
    """argparse type of every option that takes seconds: a finite number > 0.

    ``nan`` and ``inf`` are refused as usage errors (exit 2): a NaN deadline never
    passes, so the command would wait forever.
    """
    from fink_client.config import seconds as check
    from fink_client.errors import ConfigError

    try:
        return check(text, "seconds")
    except ConfigError:
        raise argparse.ArgumentTypeError(
            f"expected a finite number of seconds > 0, not {text!r}") from None


def positive_number(text: str) -> float:
    """argparse type of a finite number > 0 (e.g. a rate in alerts per second)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, not {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type of an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, not {text!r}")
    return value


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """Add the ``--json`` flag (machine-readable output on stdout)."""
    parser.add_argument("--json", action="store_true", help="machine-readable JSON output")


def print_json(obj: Any) -> None:
    """Print ``obj`` as one JSON document on stdout."""
    json.dump(obj, sys.stdout, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()


def add_server_flags(parser: argparse.ArgumentParser) -> None:
    """``--servers``, ``--username``, ``--password-env`` for commands that talk to Kafka.

    The password is never taken on the command line (it would show in ``ps``): it comes
    from the environment variable named by ``--password-env`` or the credentials file.
    """
    parser.add_argument("--servers", help="Kafka bootstrap servers host:port[,host:port]")
    parser.add_argument("--username", help="SASL/SCRAM username")
    parser.add_argument(
        "--password-env", metavar="VAR", default="FINK_PASSWORD",
        help="environment variable holding the password (default: FINK_PASSWORD)",
    )
    parser.add_argument("--connect-timeout", type=seconds, default=None, metavar="S",
                        help="seconds to wait for the servers before failing (default 15)")
