"""``finkctl replay FILES... --topic T``: publish alert files in Fink's wire format."""

from __future__ import annotations

import argparse
import os

from fink_client.cli.options import add_command, positive_int, positive_number
from fink_client.cli.output import print_json
from fink_client.errors import BrokerUnreachableError, ConfigError
from fink_client.replay import WIRE_FORMATS, replay


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``replay`` subcommand."""
    p = add_command(sub, "replay", run, connection="publish")
    p.add_argument("files", nargs="+", help="Avro files or folders (searched recursively)")
    p.add_argument("--topic", required=True, help="destination topic")
    p.add_argument("--wire", choices=WIRE_FORMATS, default="fink",
                   help="wire format (default: fink = schema in key)")
    p.add_argument("--rate", type=positive_number, default=None, metavar="N",
                   help="send at most N alerts per second")
    p.add_argument("--loop", type=positive_int, default=1, metavar="K",
                   help="send the files K times")
    return p


def _target(args: argparse.Namespace) -> dict:
    """Producer config: ``--servers`` (and credentials), else the local broker's."""
    cfg = _servers(args)
    if args.connect_timeout is not None:
        cfg["connect_timeout"] = args.connect_timeout
    return cfg


def _servers(args: argparse.Namespace) -> dict:
    if args.servers:
        cfg: dict = {"bootstrap.servers": args.servers}
        if args.username:
            password = os.environ.get(args.password_env)
            if password is None:
                raise ConfigError(f"--username given but ${args.password_env} is not set")
            cfg.update(username=args.username, password=password)
        return cfg
    from fink_client.cli.broker import running_broker

    state = running_broker()
    if state is None:
        raise BrokerUnreachableError(
            "no --servers given and no local broker is running: start it with "
            "`finkctl broker start`, or give --servers HOST:PORT"
        )
    return {"bootstrap.servers": state["admin_servers"]}


def run(args: argparse.Namespace) -> int:
    """publish alert files to a Kafka topic in Fink's wire format

    Publish every alert of the given Avro files (or folders) to a topic, as Fink does:
    schemaless Avro value, schema JSON as key. Without --servers, publishes to the local
    broker started by `finkctl broker start`.
    """
    n = replay(args.files, args.topic, _target(args), wire=args.wire, rate=args.rate,
               loop=args.loop)
    if args.json:
        print_json({"topic": args.topic, "published": n})
    else:
        print(f"published {n} alerts to {args.topic}")
    return 0
