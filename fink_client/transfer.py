"""Fink data-transfer topics (``ftransfer_<survey>_<date>_<id>``).

Their values are schemaless Avro and their keys carry no schema: the schema is the
key of the first message of the side topic ``<topic>_schema``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from fink_client.errors import SchemaError


def side_topic(topic: str) -> str:
    """Name of the topic holding the schema of data-transfer topic ``topic``."""
    return f"{topic}_schema"


def fetch_side_schema(
    kafka_config: dict[str, Any], topic: str, timeout: float = 15.0
) -> dict[str, Any] | None:
    """Schema of ``topic`` read from the key of the first message of ``<topic>_schema``.

    Returns ``None`` if the side topic does not exist (the topic's messages may carry
    their schema themselves). Raises :class:`SchemaError` if it exists but holds no
    usable schema within ``timeout`` seconds. Commits nothing.
    """
    cfg = {k: v for k, v in kafka_config.items() if k not in ("error_cb",)}
    cfg["enable.auto.commit"] = False
    side = side_topic(topic)
    consumer = Consumer(cfg)
    try:
        md = consumer.list_topics(side, timeout=timeout)
        tmd = md.topics.get(side)
        if tmd is None or tmd.error is not None or not tmd.partitions:
            return None
        consumer.assign([TopicPartition(side, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            try:
                key = msg.key()
                if key is None:
                    raise ValueError("the message has no key")
                return json.loads(key)
            except ValueError as exc:
                raise SchemaError(
                    f"the first message of {side!r} has no schema JSON in its key: {exc}",
                    topic=side, partition=0, offset=msg.offset(),
                ) from exc
        raise SchemaError(f"no message on schema topic {side!r} within {timeout:g} s",
                          topic=side)
    finally:
        consumer.close()
