"""Delivery logic of consume_arrow (pure logic: a stand-in for the Kafka side).

The consumer's own bookkeeping methods (``_mark_delivered``, ``_mark_run``,
``_take_run``, ``_reject``) are used; only fetching is faked, so that a failing fetch
can be injected at a chosen moment.
The same rules run against the real broker in tests/integration/test_consume_arrow.py.
"""

from __future__ import annotations

import collections
from typing import Any

import pytest

from fink_client import arrowbatch
from fink_client.consumer import AlertConsumer
from fink_client.errors import BrokerUnreachableError, DecodeError
from fink_client.replay import Encoder
from fink_client.wire import Decoder
from tests.faults.helpers import SAMPLES, sample_records


class Msg:
    def __init__(self, value: bytes, key: bytes | None, offset: int, topic: str = "t") -> None:
        self._value, self._key, self._offset, self._topic = value, key, offset, topic

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (0, 0)  # confluent_kafka.TIMESTAMP_NOT_AVAILABLE


class FakeConsumer:
    """AlertConsumer's delivery state with a scripted fetch."""

    _mark_delivered = AlertConsumer._mark_delivered
    _mark_run = AlertConsumer._mark_run
    _advance = AlertConsumer._advance
    _take_run = AlertConsumer._take_run
    _reject = AlertConsumer._reject
    _next_message = AlertConsumer._next_message

    def __init__(self, batches: list[list[Msg] | Exception], on_error: str = "raise") -> None:
        self._buffer: collections.deque = collections.deque()
        self._to_store: dict = {}
        self._handed_out: dict = {}
        self._auto_store = True
        self._decoder = Decoder()
        self._dead_letter = None
        self._on_error = on_error
        self._script = list(batches)
        self.stored: list[dict] = []

    def _check_open(self) -> None:
        pass

    def _store_delivered(self) -> None:
        if self._to_store:
            self.stored.append(dict(self._to_store))
            self._to_store.clear()

    def _fetch(self, max_messages: int, timeout: float) -> None:
        if not self._script:
            return
        step = self._script.pop(0)
        if isinstance(step, Exception):
            raise step
        self._buffer.extend(step)


def messages(n: int, start: int = 0, sub: str = "ztf/raw-datasim") -> list[Msg]:
    enc = Encoder("fink")
    recs = sample_records(SAMPLES / sub)
    out = []
    for i in range(n):
        value, key = enc.encode(*recs[i % len(recs)])
        out.append(Msg(value, key, start + i))
    return out


def test_fetch_error_puts_gathered_messages_back() -> None:
    first = messages(3)
    c = FakeConsumer([first, BrokerUnreachableError("gone")])
    with pytest.raises(BrokerUnreachableError):
        arrowbatch.consume_arrow(c, 10, timeout=5)
    assert list(c._buffer) == first  # in order, nothing lost
    assert c._to_store == {}  # nothing counted as delivered
    batch = arrowbatch.consume_arrow(c, 10, timeout=0)
    assert batch is not None and batch.num_rows == 3
    assert c._to_store == {("t", 0): 3}


def test_bad_value_splits_the_batch_and_is_the_next_error() -> None:
    msgs = messages(5)
    msgs[2] = Msg(msgs[2].value()[:-10], msgs[2].key(), 2)
    c = FakeConsumer([msgs])
    batch = arrowbatch.consume_arrow(c, 10, timeout=0)
    assert batch is not None and batch.num_rows == 2
    assert c._to_store == {("t", 0): 2}
    with pytest.raises(DecodeError) as info:
        arrowbatch.consume_arrow(c, 10, timeout=0)
    assert (info.value.topic, info.value.partition, info.value.offset) == ("t", 0, 2)
    assert c.stored == [{("t", 0): 2}]  # coming back stored the first batch
    rest = arrowbatch.consume_arrow(c, 10, timeout=0)
    assert rest is not None and rest.num_rows == 2
    assert c._to_store == {("t", 0): 5}


def test_skip_mode_goes_on_after_a_bad_value() -> None:
    msgs = messages(4)
    msgs[0] = Msg(b"\x00garbage", msgs[0].key(), 0)
    c = FakeConsumer([msgs], on_error="skip")
    batch = arrowbatch.consume_arrow(c, 10, timeout=0)
    assert batch is not None and batch.num_rows == 3


def test_schema_change_ends_the_batch() -> None:
    ztf = messages(3)
    lsst = messages(2, start=3, sub="lsst")
    c = FakeConsumer([ztf + lsst])
    sizes = []
    while (batch := arrowbatch.consume_arrow(c, 10, timeout=0)) is not None:
        sizes.append(batch.num_rows)
    assert sizes == [3, 2]


def test_topic_in_metadata_and_rows_equal_the_decoder_dicts() -> None:
    msgs = messages(3)
    c = FakeConsumer([msgs])
    batch = arrowbatch.consume_arrow(c, 10, timeout=0)
    assert batch is not None
    assert batch.schema.metadata[arrowbatch.TOPIC_KEY] == b"t"
    dicts = [Decoder().decode(m.value(), m.key()) for m in msgs]
    want = arrowbatch.BatchDecoder(arrowbatch.wire.schema_from_key(msgs[0].key()))
    expected: Any = want.from_records(dicts)
    assert batch.column("candid").to_pylist() == expected.column("candid").to_pylist()
    assert batch.column("objectId").to_pylist() == [d["objectId"] for d in dicts]


def test_forced_schema_topic_schema_and_confluent_ids() -> None:
    """The Decoder's resolution order: forced schema, topic schema, Confluent id."""
    schema, record = sample_records(SAMPLES / "ztf" / "raw")[0]
    value, _key = Encoder("fink").encode(schema, record)
    forced = FakeConsumer([[Msg(value, None, 0), Msg(value, b"not a schema", 1)]])
    forced._decoder = Decoder(schema)
    batch = arrowbatch.consume_arrow(forced, 10, timeout=0)
    assert batch is not None and batch.num_rows == 2

    by_topic = FakeConsumer([[Msg(value, None, 0)]])
    by_topic._decoder = Decoder(topic_schemas={"t": schema})
    batch = arrowbatch.consume_arrow(by_topic, 10, timeout=0)
    assert batch is not None and batch.column("candid").to_pylist() == [record["candid"]]

    framed = Encoder("confluent", schema_id=10).encode(schema, record)[0]
    confluent = FakeConsumer([[Msg(framed, None, 0), Msg(b"", None, 1)]])
    batch = arrowbatch.consume_arrow(confluent, 10, timeout=0)
    assert batch is not None and batch.column("candid").to_pylist() == [record["candid"]]
    with pytest.raises(DecodeError, match="empty"):
        arrowbatch.consume_arrow(confluent, 10, timeout=0)
