"""AlertConsumer.consume decodes runs of messages in one call: the per-message rules hold.

The stand-in of tests/unit/test_consume_arrow_rules.py (real bookkeeping, scripted
fetch) with the consumer's own delivery loop: a bad value inside a run, a change of
key or topic inside a batch, and the offsets recorded per partition.
"""

from __future__ import annotations

import pytest

from fink_client.consumer import AlertConsumer
from fink_client.errors import DecodeError
from tests.unit.test_consume_arrow_rules import FakeConsumer, Msg, messages


class DictConsumer(FakeConsumer):
    _deliver = AlertConsumer._deliver
    _decode_run = staticmethod(AlertConsumer._decode_run)
    consume = AlertConsumer.consume
    consume_messages = AlertConsumer.consume_messages


def test_bad_value_inside_a_run_comes_after_the_good_ones() -> None:
    msgs = messages(6)
    msgs[3] = Msg(msgs[3].value()[:-10], msgs[3].key(), 3)
    c = DictConsumer([msgs])
    good = c.consume(10, timeout=0)
    assert [a["candid"] for _, a in good] == [m_alert(m) for m in msgs[:3]]
    assert c._to_store == {("t", 0): 3}
    with pytest.raises(DecodeError) as info:
        c.consume(10, timeout=0)
    assert (info.value.topic, info.value.partition, info.value.offset) == ("t", 0, 3)
    rest = c.consume(10, timeout=0)
    assert [a["candid"] for _, a in rest] == [m_alert(m) for m in msgs[4:]]
    assert c._to_store == {("t", 0): 6}


def test_key_and_topic_changes_split_runs_but_not_the_batch() -> None:
    ztf = messages(3)
    lsst = messages(2, start=3, sub="lsst")
    other = [Msg(m.value(), m.key(), 5 + i, topic="u") for i, m in enumerate(messages(2))]
    c = DictConsumer([ztf + lsst + other])
    got = c.consume_messages(10, timeout=0)
    assert [(d.topic, d.offset) for d in got] == [("t", i) for i in range(5)] + [
        ("u", 5), ("u", 6)]
    assert got[0].schema is got[2].schema and got[3].schema is not got[0].schema
    assert c._to_store == {("t", 0): 5, ("u", 0): 7}
    assert c._handed_out == c._to_store


def m_alert(msg: Msg) -> object:
    """The alert id of a message, decoded on its own."""
    from fink_client.wire import Decoder

    return Decoder().decode(msg.value(), msg.key())["candid"]
