"""``finkctl schema [TOPIC|FILE]``: print an alert schema as a tree of fields, types, docs.

Where the schema comes from, in this order:

- no argument: the list of schemas bundled with fink-client;
- an existing file or folder: ``.avsc``/``.json`` schema files, or the schema of alert
  files (Avro container header, ``.avro.gz``, Parquet metadata);
- the name of a bundled schema (e.g. ``ztf_alert_3.3``);
- otherwise a topic: the schema Fink sends with it, i.e. the key of the first message
  of ``<topic>_schema`` (data-transfer topics) or of the topic itself (live streams:
  schema JSON or a schema version string), or the header of a container message.
  Connection as for ``finkctl stream`` (``finkctl auth``, FINK_* variables, flags).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from fink_client import schemas
from fink_client.cli.errors import UsageError
from fink_client.cli.options import add_command, seconds, user_config
from fink_client.cli.output import print_json
from fink_client.errors import CredentialsError, SchemaError, UnknownTopicError

ALERT_SUFFIXES = (".avro", ".gz", ".parquet", ".jsonl")
#: Consumer group used to read a schema when none is registered (nothing is committed).
SCHEMA_GROUP = "finkctl-schema"


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``schema`` subcommand."""
    p = add_command(sub, "schema", run)
    p.add_argument("source", nargs="?", metavar="TOPIC|FILE", help="where to take the schema")
    p.add_argument("--depth", type=int, metavar="N",
                   help="show N levels of nesting (1 = top-level fields only)")
    p.add_argument("--no-doc", action="store_true", help="hide the field docs")
    p.add_argument("--timeout", type=seconds, default=15.0, metavar="S",
                   help="seconds to wait for a topic's first message (default 15)")
    return p


# -- sources ---------------------------------------------------------------------------
def schema_from_path(path: Path) -> dict[str, Any]:
    """Schema of a schema file, an alert file, or the first alert file of a folder."""
    if path.is_file() and path.suffix in (".avsc", ".json"):
        try:
            schema = schemas.load_file(path)
        except SchemaError:
            schema = None
        if isinstance(schema, dict) and "type" in schema:
            return schema
    from fink_client.io import AlertReader

    found = AlertReader(path).schema
    if found is None:
        raise SchemaError("no Avro schema in this file (JSON lines carry none: "
                          "pass the .avsc file instead)", path=str(path))
    return found


def _schema_from_message(key: bytes | None, value: bytes | None, topic: str,
                         partition: int | None, offset: int | None) -> dict[str, Any]:
    where: dict[str, Any] = {"topic": topic, "partition": partition, "offset": offset}
    if value and value.startswith(b"Obj\x01"):
        import io

        import fastavro

        found = fastavro.reader(io.BytesIO(value)).writer_schema
        if not isinstance(found, dict):
            raise SchemaError("the message's Avro container holds no record schema", **where)
        return found
    if key:
        text = key.decode("utf-8", errors="replace").strip()
        if text.startswith("{"):
            try:
                return json.loads(text)
            except ValueError as exc:
                raise SchemaError(f"message key looks like JSON but is not: {exc}",
                                  **where) from exc
        bundled = schemas.for_version(text)
        if bundled is not None:
            return bundled
        raise SchemaError(f"message key {text[:60]!r} is neither a schema nor a known "
                          f"schema version ({', '.join(schemas.versions())})", **where)
    if value and value[0] == 0 and len(value) > 5:
        schema_id = int.from_bytes(value[1:5], "big")
        raise SchemaError(f"Confluent-framed message (schema id {schema_id}): its schema is "
                          "in a schema registry, not in the message; pass the .avsc file",
                          **where)
    raise SchemaError("the first message carries no schema (no key, no container header)",
                      **where)


def schema_from_topic(user_cfg: dict[str, Any], topic: str,
                      timeout: float = 15.0) -> dict[str, Any]:
    """The schema Fink publishes with ``topic`` (see the module docstring). Commits nothing.

    Raises :class:`UnknownTopicError` (listing the readable topics) if it does not exist,
    :class:`SchemaError` if it is empty within ``timeout`` or its first message holds
    no schema, and the typed connection errors of :mod:`fink_client.consumer`.
    """
    from confluent_kafka import KafkaException

    from fink_client import _kafka
    from fink_client import config as fink_config
    from fink_client.transfer import fetch_side_schema

    kcfg = fink_config.kafka_config(user_cfg)
    side = fetch_side_schema(kcfg, topic, timeout=timeout)
    if side is not None:
        return side
    client = _kafka.consumer(kcfg, timeout=timeout)
    try:
        try:
            md = client.kafka.list_topics(timeout=timeout)
        except KafkaException as exc:
            raise client.translate(exc.args[0], topic=topic) from exc
        tmd = md.topics.get(topic)
        if tmd is None or tmd.error is not None or not tmd.partitions:
            names = sorted(t for t in md.topics if not t.startswith("__"))
            raise UnknownTopicError(
                f"topic {topic!r} does not exist or is not readable; available: "
                f"{', '.join(names) or 'none'} (or give a schema file)", topic=topic)
        msg = _kafka.first_message(client, topic, tmd.partitions, timeout)
        if msg is None:
            raise SchemaError(f"no message on topic {topic!r} within {timeout:g} s: its "
                              "schema cannot be read from an empty topic", topic=topic)
        return _schema_from_message(msg.key(), msg.value(), topic, msg.partition(),
                                    msg.offset())
    finally:
        client.close()


def _looks_like_path(source: str) -> bool:
    return "/" in source or source.endswith((".avsc", ".json", *ALERT_SUFFIXES))


def resolve_schema(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """``(schema, where it came from)`` for the command's SOURCE."""
    source: str = args.source
    path = Path(source)
    if path.exists():
        return schema_from_path(path), f"file {path}"
    if source in schemas.bundled():
        return schemas.load(source), f"bundled schema {source}"
    if _looks_like_path(source):
        raise SchemaError("no such file, and not a bundled schema name", path=source)
    try:
        cfg = user_config(args)
    except CredentialsError as exc:
        if "group id" not in str(exc):
            raise
        args.group_id = SCHEMA_GROUP  # reading a schema commits nothing: any group will do
        cfg = user_config(args)
    return schema_from_topic(cfg, source, timeout=args.timeout), f"topic {source}"


def run(args: argparse.Namespace) -> int:
    """print an alert schema as a tree (from a file, a bundled schema or a topic)

    Print the alert schema as a tree of field names, types and docs. SOURCE is a schema
    file (.avsc/.json), an alert file or folder (.avro, .avro.gz, Parquet), a bundled
    schema name, or a topic (its schema is read from the key of its first message, or of
    <topic>_schema). Without SOURCE, list bundled schemas.
    """
    from fink_client.viz import format_schema_tree, schema_fields

    if args.depth is not None and args.depth < 1:
        raise UsageError("--depth must be at least 1")
    if args.source is None:
        names = list(schemas.bundled())
        if args.json:
            print_json({"bundled": names})
        else:
            print("bundled schemas (give one, a file or a topic as SOURCE):")
            for name in names:
                print(f"  {name}")
        return 0
    schema, origin = resolve_schema(args)
    if args.json:
        print_json({
            "source": origin,
            "name": schema.get("name"),
            "fields": [{"path": f.path, "type": f.type, "doc": f.doc}
                       for f in schema_fields(schema, max_depth=args.depth)],
        })
    else:
        print(f"# {origin}")
        print(format_schema_tree(schema, max_depth=args.depth, docs=not args.no_doc))
    return 0
