"""Publish alert files to a Kafka topic in Fink's wire format.

This gives users (and our tests and demo) a local stream that looks like Fink's, in
any of the wire formats of :mod:`fink_client.encoder` (``fink``, ``confluent``,
``container``; :class:`Encoder` is re-exported here).

Records are read from Avro container files (or folders of them) with their own
writer schema, so every field goes out exactly as stored.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import KafkaException, Producer

from fink_client import _kafka, codec
from fink_client import config as _config
from fink_client.encoder import WIRE_FORMATS as WIRE_FORMATS  # re-exported (compatibility)
from fink_client.encoder import Encoder as Encoder
from fink_client.errors import FileFormatError, KafkaError


def iter_avro_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Every ``.avro`` file in ``paths`` (files as given, folders recursively, sorted)."""
    for p in paths:
        path = Path(p)
        if path.is_dir():
            yield from sorted(q for q in path.rglob("*.avro") if q.is_file())
        elif path.is_file():
            yield path
        else:
            raise FileFormatError("no such file or folder", path=str(path))


def read_records(paths: Iterable[str | Path]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """``(writer_schema, record)`` for every record of every Avro container file."""
    for path in iter_avro_files(paths):
        try:
            with open(path, "rb") as fh:
                reader = fastavro.reader(fh)
                schema = reader.writer_schema
                if not isinstance(schema, dict):
                    raise FileFormatError("the file's Avro schema is not a record schema",
                                          path=str(path))
                for record in reader:
                    yield schema, codec.as_record(record)
        except (ValueError, EOFError, OSError) as exc:
            raise FileFormatError(f"cannot read Avro file: {exc}", path=str(path)) from exc


def publish(
    records: Iterable[tuple[dict[str, Any], dict[str, Any]]],
    topic: str,
    config: Mapping[str, Any],
    *,
    wire: str = "fink",
    schema_id: int = 1,
    rate: float | None = None,
    flush_timeout: float = 60.0,
) -> int:
    """Send ``(schema, record)`` pairs to ``topic``; return how many were delivered.

    ``rate`` limits the send rate (alerts per second). The broker must answer within
    ``connect_timeout`` seconds (config key, 15 s by default), else
    :class:`BrokerUnreachableError` (or :class:`AuthenticationError`) is raised before
    anything is sent. Raises :class:`KafkaError` if any message could not be delivered.
    """
    client = _kafka.Client(Producer, _kafka.producer_config(config),
                           timeout=_config.connect_timeout(config))
    producer = client.kafka
    client.retry("connecting to publish", producer.list_topics,
                 hint=" (`finkctl broker status` for the local one)")
    encoder = Encoder(wire, schema_id)
    failures: list[str] = []
    delivered = 0

    def on_delivery(err: Any, msg: Any) -> None:
        nonlocal delivered
        if err is not None:
            failures.append(f"{err.name()}: {err.str()}")
        else:
            delivered += 1

    start = time.monotonic()
    for n, (schema, record) in enumerate(records):
        value, key = encoder.encode(schema, record)
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)  # local queue full: let deliveries drain
            except KafkaException as exc:
                raise KafkaError(f"cannot publish: {exc}", topic=topic) from exc
        producer.poll(0)
        if rate:
            ahead = (n + 1) / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    remaining = producer.flush(flush_timeout)
    if remaining or failures:
        raise KafkaError(
            f"{len(failures) + remaining} message(s) not delivered to {topic!r}"
            + (f": {failures[0]}" if failures else f" within {flush_timeout:g} s"),
            topic=topic,
        )
    return delivered


def replay(
    paths: Iterable[str | Path],
    topic: str,
    config: Mapping[str, Any],
    *,
    wire: str = "fink",
    rate: float | None = None,
    loop: int = 1,
) -> int:
    """Publish every alert of the Avro files in ``paths`` to ``topic``, ``loop`` times.

    Returns the number of alerts delivered.
    """
    paths = list(paths)

    def records() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        for _ in range(max(1, loop)):
            yield from read_records(paths)

    return publish(records(), topic, config, wire=wire, rate=rate)
