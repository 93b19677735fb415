"""``finkctl auth register|show|remove``: the per-user credentials file.

Passwords are never taken from the command line (they would show in ``ps``): they come
from ``--password-stdin``, ``$FINK_PASSWORD`` or a no-echo prompt. The commands that
read with these credentials build their config with :mod:`fink_client.cli.options`.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from fink_client import credentials
from fink_client.cli.errors import UsageError
from fink_client.cli.options import add_json_flag, librdkafka_logger, seconds
from fink_client.cli.output import print_json
from fink_client.config import DEFAULT_SERVERS
from fink_client.errors import CredentialsError


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``auth`` and its ``register``, ``show`` and ``remove`` actions."""
    p = sub.add_parser(
        "auth",
        help="register, show or remove your Fink credentials",
        description="Manage your Fink credentials, stored per survey in "
        f"{credentials.credentials_path()} (mode 0600; set ${credentials.CONFIG_DIR_ENV} to "
        "move it). FINK_USERNAME, FINK_PASSWORD, FINK_GROUP_ID and FINK_SERVERS override "
        "the file. A file readable by the group or others is refused.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    r = actions.add_parser(
        "register", help="store username, password, group id and servers",
        description="Store your credentials for a survey. The password is read from "
        "--password-stdin, else $FINK_PASSWORD, else prompted without echo; it is never "
        "accepted as an argument.",
    )
    r.add_argument("--survey", default="ztf", choices=credentials.SURVEYS,
                   help="survey these credentials are for (default ztf)")
    r.add_argument("--username", help="your Fink username (default: $FINK_USERNAME or prompt)")
    r.add_argument("--group-id", help="your consumer group id (default: $FINK_GROUP_ID)")
    r.add_argument("--servers", help="bootstrap servers (default: $FINK_SERVERS or, for ZTF, "
                   f"{DEFAULT_SERVERS['ztf']})")
    r.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input")
    r.add_argument("--check", action="store_true",
                   help="connect once with these credentials before saving them")
    r.add_argument("--connect-timeout", type=seconds, default=15.0, metavar="S",
                   help="seconds to wait for the servers with --check (default 15)")
    r.set_defaults(func=run_register)

    s = actions.add_parser("show", help="show the effective credentials (password masked)")
    s.add_argument("--survey", choices=credentials.SURVEYS,
                   help="survey to show (default: every registered one)")
    add_json_flag(s)
    s.set_defaults(func=run_show)

    m = actions.add_parser("remove", help="forget the credentials of a survey")
    m.add_argument("--survey", default="ztf", choices=credentials.SURVEYS,
                   help="survey to forget (default ztf)")
    m.set_defaults(func=run_remove)
    return p


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise UsageError("--password-stdin: standard input held no password")
        return password
    if os.environ.get(credentials.ENV_VARS["password"]):
        return os.environ[credentials.ENV_VARS["password"]]
    if not sys.stdin.isatty():
        raise UsageError(
            "no password: use --password-stdin, set FINK_PASSWORD, or run in a terminal "
            "to be prompted"
        )
    password = getpass.getpass("Fink password (not echoed): ")
    if not password:
        raise UsageError("empty password")
    return password


def _pick(flag: str | None, field: str, prompt: str | None = None) -> str | None:
    value = flag or os.environ.get(credentials.ENV_VARS[field]) or None
    if value is None and prompt and sys.stdin.isatty():
        value = input(prompt).strip() or None
    return value


def run_register(args: argparse.Namespace) -> int:
    """Store the credentials (after an optional connection check)."""
    username = _pick(args.username, "username", "Fink username: ")
    if not username:
        raise UsageError("no username: give --username or set FINK_USERNAME")
    group_id = _pick(args.group_id, "group_id", "Consumer group id: ")
    if not group_id:
        raise UsageError("no group id: give --group-id or set FINK_GROUP_ID")
    servers = _pick(args.servers, "servers")
    if not servers and args.survey not in DEFAULT_SERVERS:
        raise UsageError(f"survey {args.survey!r} has no default server: give --servers")
    password = _read_password(args)
    entry = {"username": username, "password": password, "group_id": group_id,
             "servers": servers}
    if args.check:
        from fink_client.offsets import OffsetsClient

        cfg = credentials.Credentials(args.survey, username, password, group_id,
                                      servers or DEFAULT_SERVERS[args.survey])
        conf = cfg.to_config(connect_timeout=args.connect_timeout, logger=librdkafka_logger())
        with OffsetsClient(conf) as oc:
            topics = oc.list_topics()
        print(f"connected as {username}: {len(topics)} topic(s) readable", file=sys.stderr)
    path = credentials.save(args.survey, entry)
    print(f"credentials for {args.survey} saved in {path} (mode 0600)")
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Print the effective credentials of one or every survey, password masked."""
    stored = credentials.load_file()
    surveys = [args.survey] if args.survey else (sorted(stored) or [credentials.default_survey()])
    shown = [credentials.resolve(s) for s in surveys]
    shown = [c for c in shown if c.username or c.group_id or c.survey in stored]
    if not shown:
        raise CredentialsError(
            f"no credentials registered ({credentials.credentials_path()} does not exist "
            "or is empty) and no FINK_* variable set: run `finkctl auth register`"
        )
    if args.json:
        print_json({"file": str(credentials.credentials_path()),
                    "surveys": [c.public() for c in shown]})
        return 0
    print(f"file: {credentials.credentials_path()}")
    for c in shown:
        pub = c.public()
        print(f"[{c.survey}]")
        for field in credentials.FIELDS:
            value = pub[field] if pub[field] is not None else "(not set)"
            source = c.sources.get(field, "")
            print(f"  {field:9} {value}" + (f"   ({source})" if source else ""))
    return 0


def run_remove(args: argparse.Namespace) -> int:
    """Forget the credentials of a survey."""
    if not credentials.remove(args.survey):
        raise CredentialsError(
            f"no credentials stored for {args.survey} in {credentials.credentials_path()}"
        )
    print(f"credentials for {args.survey} removed")
    return 0
