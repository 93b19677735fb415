"""Publish alert files to a Kafka topic in Fink's wire format.

This gives users (and our tests and demo) a local stream that looks like Fink's, in
any of the wire formats of :mod:`fink_client.encoder` (``fink``, ``confluent``,
``container``; :class:`Encoder` is re-exported here).

Records are read from Avro container files (or folders of them) with their own
writer schema, so every field goes out exactly as stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import KafkaException, Producer

from fink_client import codec
from fink_client import config as _config
from fink_client.config import SASL_MECHANISM
from fink_client.encoder import WIRE_FORMATS as WIRE_FORMATS  # re-exported (compatibility)
from fink_client.encoder import Encoder as Encoder
from fink_client.errors import (
    AuthenticationError,
    BrokerUnreachableError,
    ConfigError,
    FileFormatError,
    KafkaError,
)


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


def producer_config(user_config: Mapping[str, Any]) -> dict[str, Any]:
    """confluent-kafka producer config from a fink-style config.

    ``bootstrap.servers`` is required; ``username``/``password`` switch to SASL/SCRAM;
    other keys pass through to librdkafka. librdkafka's own log lines (one per failed
    connection attempt) go to the ``fink_client.librdkafka`` logger, quiet by default.
    """
    cfg = dict(user_config)
    if not cfg.get("bootstrap.servers"):
        raise ConfigError("'bootstrap.servers' is required to publish", field="bootstrap.servers")
    out: dict[str, Any] = {
        "linger.ms": 20,
        "message.max.bytes": 16 * 1024 * 1024,
        "compression.type": "none",
        "logger": logging.getLogger("fink_client.librdkafka"),
    }
    username, password = cfg.pop("username", None), cfg.pop("password", None)
    for key in ("group_id", "connect_timeout", "survey"):
        cfg.pop(key, None)
    if username is not None:
        out.update({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": SASL_MECHANISM,
                    "sasl.username": username, "sasl.password": str(password)})
    out.update(cfg)
    return out


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
    errors: list[Any] = []
    pconf = producer_config(config)
    pconf["error_cb"] = errors.append
    try:
        producer = Producer(pconf)
    except KafkaException as exc:
        raise ConfigError(f"invalid Kafka configuration: {exc.args[0].str()}") from None
    _wait_for_broker(producer, errors, pconf["bootstrap.servers"],
                     _config.connect_timeout(config))
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


def _wait_for_broker(producer: Producer, errors: list[Any], servers: str,
                     timeout: float) -> None:
    """Return once the broker answers; typed error within ``timeout`` s otherwise."""
    from fink_client.consumer import translate_kafka_error

    deadline = time.monotonic() + timeout
    while True:
        try:
            producer.list_topics(timeout=max(0.1, min(deadline - time.monotonic(), 1.0)))
            return
        except KafkaException:
            producer.poll(0)  # serves error_cb: authentication failures land there
            for err in errors:
                typed = translate_kafka_error(err, servers=servers)
                if isinstance(typed, AuthenticationError) or err.fatal():
                    raise typed from None
            if time.monotonic() >= deadline:
                raise BrokerUnreachableError(
                    f"no answer from the Kafka broker(s) {servers} within {timeout:g} s; check "
                    "the servers, your network, and that the broker is up (`finkctl broker "
                    "status` for the local one)"
                ) from None


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
