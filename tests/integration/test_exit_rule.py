"""The exception rule (at least once on every exit), against the real broker.

An alert counts as processed when the caller comes back for more or calls
``close()``/``commit()``. Leaving a ``with`` block by an exception, an exception out of a
``for`` loop over the consumer, and garbage collection must leave the alerts of the last
call to be delivered again to the next consumer of the same group; a normal exit commits.
"""

from __future__ import annotations

import gc

import pytest

from fink_client.consumer import AlertConsumer
from tests.helpers import SAMPLES, publish
from tests.helpers import unique_group as group

pytestmark = pytest.mark.integration


@pytest.fixture
def alerts_topic(kafka, topic) -> str:
    """The single-partition topic holding the four Fink ZTF sample alerts, in order."""
    assert publish(kafka, topic, SAMPLES / "ztf" / "fink") == 4
    return topic


def _next_candid(topic: str, config: dict) -> int:
    """candid of the first alert a new consumer of ``config``'s group gets."""
    with AlertConsumer([topic], config) as consumer:
        t, alert = consumer.poll(30)
    assert t == topic
    return alert["candid"]


def test_exception_in_with_block_does_not_commit_last_alert(alerts_topic, alice_config) -> None:
    g = group()
    with pytest.raises(RuntimeError), AlertConsumer([alerts_topic], alice_config(g)) as c:
        _, first = c.poll(30)
        _, second = c.poll(30)  # coming back for more: `first` is processed
        raise RuntimeError("user code failed on the second alert")
    assert first["candid"] != second["candid"]
    assert _next_candid(alerts_topic, alice_config(g)) == second["candid"]


def test_exception_after_consume_redelivers_the_whole_batch(alerts_topic, alice_config) -> None:
    g = group()
    with pytest.raises(KeyboardInterrupt), AlertConsumer([alerts_topic], alice_config(g)) as c:
        batch = c.consume(2, timeout=30)
        assert len(batch) == 2
        raise KeyboardInterrupt
    assert _next_candid(alerts_topic, alice_config(g)) == batch[0][1]["candid"]


def test_normal_exit_of_with_block_commits(alerts_topic, alice_config) -> None:
    g = group()
    with AlertConsumer([alerts_topic], alice_config(g)) as c:
        _, first = c.poll(30)
        _, second = c.poll(30)
    third = _next_candid(alerts_topic, alice_config(g))
    assert third not in (first["candid"], second["candid"])


def test_explicit_close_after_exception_commits(alerts_topic, alice_config) -> None:
    g = group()
    c = AlertConsumer([alerts_topic], alice_config(g))
    try:
        _, first = c.poll(30)
        raise ValueError("handled by the caller")
    except ValueError:
        c.close()  # the caller says it is done with `first`
    assert _next_candid(alerts_topic, alice_config(g)) != first["candid"]


def _poll_twice_and_drop(topic: str, config: dict) -> int:
    consumer = AlertConsumer([topic], config)
    consumer.poll(30)
    _, second = consumer.poll(30)
    del consumer  # no close(), no with: garbage collection only
    return second["candid"]


def test_garbage_collection_does_not_commit_last_alert(alerts_topic, alice_config) -> None:
    g = group()
    second = _poll_twice_and_drop(alerts_topic, alice_config(g))
    gc.collect()
    assert _next_candid(alerts_topic, alice_config(g)) == second


def test_exception_in_for_loop_inside_with(alerts_topic, alice_config) -> None:
    g = group()
    seen = []
    with pytest.raises(RuntimeError), AlertConsumer([alerts_topic], alice_config(g)) as c:
        for _, alert in c:
            seen.append(alert["candid"])
            if len(seen) == 2:
                raise RuntimeError("loop body failed")
    assert _next_candid(alerts_topic, alice_config(g)) == seen[1]


def _iterate_until_failure(topic: str, config: dict, seen: list[int]) -> None:
    consumer = AlertConsumer([topic], config)
    try:
        for _, alert in consumer:
            seen.append(alert["candid"])
            if len(seen) == 3:
                raise RuntimeError("loop body failed")
    except RuntimeError:
        pass  # the caller gives up on the consumer without closing it


def test_exception_in_for_loop_without_with(alerts_topic, alice_config) -> None:
    g = group()
    seen: list[int] = []
    _iterate_until_failure(alerts_topic, alice_config(g), seen)
    gc.collect()
    assert len(seen) == 3
    assert _next_candid(alerts_topic, alice_config(g)) == seen[2]
