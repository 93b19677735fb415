"""Options shared by the finkctl subcommands, and the Kafka config they build.

- argparse types: :func:`seconds`, :func:`positive_number`, :func:`positive_int`;
- :func:`add_command`: a subcommand's parser with the flags the data commands share;
- flags: ``--json`` (:func:`add_json_flag`); the connection flags of the commands that
  read with your Fink credentials (:func:`add_connection_flags`: ``--survey``,
  ``--servers``, ``--group-id``, ``--connect-timeout``, ``-X``) and of those that publish
  (:func:`add_server_flags`);
- :func:`user_config`: the fink-client config from the credentials file, the FINK_*
  variables and those flags, with librdkafka's lines sent to one logger (its level is
  set from ``-v`` by :func:`fink_client._kafka.set_log_verbosity`).

Passwords are never taken from the command line (they would show in ``ps``): they come
from the credentials file, ``$FINK_PASSWORD``, ``--password-stdin`` or a no-echo prompt.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import math
from collections.abc import Callable
from typing import Any, Literal

from fink_client import credentials
from fink_client.cli.errors import UsageError
from fink_client.config import is_secret_key
from fink_client.errors import CredentialsError


# -- argparse types ----------------------------------------------------------------------
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


# -- flags -------------------------------------------------------------------------------
def add_command(
    sub: argparse._SubParsersAction,
    name: str,
    run: Callable[[argparse.Namespace], int],
    connection: Literal["read", "publish"] | None = "read",
) -> argparse.ArgumentParser:
    """The parser of the subcommand ``name``, run by ``run``, with the shared flags.

    ``run``'s docstring is the command's help, written once: its first line is the
    command's line in ``finkctl --help`` (lower case, no full stop, like argparse's own),
    the paragraphs after it the text of ``finkctl NAME --help``. Every data command has
    ``--json``; ``connection`` says how it reaches Kafka: ``"read"`` with your Fink
    credentials (:func:`add_connection_flags`), ``"publish"`` to a broker of your choice
    (:func:`add_server_flags`), ``None`` not at all (commands on files). The command adds
    its own arguments to the parser returned.
    """
    summary, _, description = inspect.cleandoc(run.__doc__ or "").partition("\n")
    parser = sub.add_parser(name, help=summary or None, description=description.strip() or None)
    parser.set_defaults(func=run)
    add_json_flag(parser)
    if connection == "read":
        add_connection_flags(parser)
    elif connection == "publish":
        add_server_flags(parser)
    return parser


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """Add the ``--json`` flag (machine-readable output on stdout)."""
    parser.add_argument("--json", action="store_true", help="machine-readable JSON output")


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    """``--survey``, ``--servers``, ``--group-id``, ``--connect-timeout``, ``-X`` (no
    password flag): how a command reads with your Fink credentials."""
    g = parser.add_argument_group("connection (defaults: `finkctl auth register`, FINK_* env)")
    g.add_argument("--survey", choices=credentials.SURVEYS,
                   help="whose credentials to use (default: the only registered one, or ztf)")
    g.add_argument("--servers", help="Kafka bootstrap servers host:port[,host:port]")
    g.add_argument("--group-id", help="consumer group (overrides the registered one)")
    g.add_argument("--connect-timeout", type=seconds, default=None, metavar="S",
                   help="seconds to wait for the servers before failing (default 15)")
    g.add_argument("-X", dest="kafka_options", action="append", default=[],
                   metavar="KEY=VALUE",
                   help="extra librdkafka setting, repeatable (e.g. -X session.timeout.ms=6000)")


def add_server_flags(parser: argparse.ArgumentParser) -> None:
    """``--servers``, ``--username``, ``--password-env``, ``--connect-timeout`` for the
    commands that publish (``finkctl replay``).

    The password is never taken on the command line (it would show in ``ps``): it comes
    from the environment variable named by ``--password-env`` or the credentials file.
    """
    g = parser.add_argument_group("connection (default: the broker of `finkctl broker start`)")
    g.add_argument("--servers", help="Kafka bootstrap servers host:port[,host:port]")
    g.add_argument("--username", help="SASL/SCRAM username")
    g.add_argument(
        "--password-env", metavar="VAR", default="FINK_PASSWORD",
        help="environment variable holding the password (default: FINK_PASSWORD)",
    )
    g.add_argument("--connect-timeout", type=seconds, default=None, metavar="S",
                   help="seconds to wait for the servers before failing (default 15)")


# -- config ------------------------------------------------------------------------------
def kafka_options(pairs: list[str]) -> dict[str, str]:
    """``-X key=value`` flags as a dict; secrets are refused (they would show in ``ps``)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"-X expects KEY=VALUE, not {pair!r}")
        if is_secret_key(key):
            raise UsageError(f"-X {key}=...: never put a secret on the command line (it shows "
                             "in the process list); register passwords with `finkctl auth "
                             "register`, give private keys as files (-X ssl.key.location=...)")
        out[key] = value
    return out


def librdkafka_logger() -> logging.Logger:
    """The logger given to the Kafka clients the commands make."""
    from fink_client._kafka import LIBRDKAFKA_LOGGER  # imports confluent-kafka: only when used

    return logging.getLogger(LIBRDKAFKA_LOGGER)


def user_config(args: argparse.Namespace) -> dict[str, Any]:
    """fink-client config from the credentials file, FINK_* variables and the flags of
    :func:`add_connection_flags`."""
    creds = credentials.resolve(
        args.survey, {"servers": args.servers, "group_id": args.group_id}
    )
    if not creds.servers:
        raise CredentialsError(
            f"no server known for survey {creds.survey!r}: give --servers, set FINK_SERVERS "
            f"or register one with `finkctl auth register --survey {creds.survey} --servers ...`"
        )
    extra: dict[str, Any] = {"logger": librdkafka_logger()}
    if args.connect_timeout is not None:
        if args.connect_timeout <= 0:
            raise UsageError("--connect-timeout must be positive")
        extra["connect_timeout"] = args.connect_timeout
    extra.update(kafka_options(getattr(args, "kafka_options", [])))
    return creds.to_config(**extra)
