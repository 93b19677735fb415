"""Helpers shared by the finkctl subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


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
