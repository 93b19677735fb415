"""fink_client.aio.AlertConsumer against the real embedded Kafka broker.

Each test runs its own event loop (``asyncio.run``). What is checked: every alert
arrives decoded as by the sync consumer; the event loop keeps running while alerts flow
(a ticker task); the at-least-once rule on cancellation and on exceptions (restart with
the same group); typed errors.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from typing import Any

import pytest
from confluent_kafka import Producer

from fink_client.aio import AlertConsumer
from fink_client.errors import AuthenticationError, DecodeError, UnknownTopicError
from fink_client.testing import assert_alerts_equal
from tests.helpers import SAMPLES, publish, source_alerts, unique_group

pytestmark = pytest.mark.integration

#: The loop must never stall this long. A blocking call of the sync consumer (a 1 s
#: poll slice, the group join, an empty poll(1.0)) would exceed it.
MAX_GAP = 0.2


class Ticker:
    """A task that records the time every 10 ms: the gaps show if the loop was blocked."""

    def __init__(self) -> None:
        self.ticks: list[float] = []
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            self.ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    def __enter__(self) -> Ticker:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self.ticks.append(time.monotonic())  # a loop blocked until now is one long gap

    def max_gap(self) -> float:
        return max(b - a for a, b in zip(self.ticks, self.ticks[1:], strict=False))


async def _collect(config: dict, topic: str, n: int) -> list[tuple[str, dict]]:
    """The next ``n`` alerts of the group, then a normal exit (which commits them)."""
    got: list[tuple[str, dict]] = []
    async with AlertConsumer([topic], config) as consumer:
        while len(got) < n:
            batch = await consumer.consume(n - len(got), timeout=20)
            assert batch, f"no alert within 20 s after {len(got)}"
            got.extend(batch)
        assert await consumer.poll(timeout=1) == (None, None)
    return got


def test_all_alerts_arrive_and_the_loop_keeps_ticking(kafka, topic, alice_config) -> None:
    expected = {}
    for sub in ("ztf/raw", "ztf/raw-datasim", "ztf/fink"):
        expected.update(source_alerts(SAMPLES / sub))
    n = publish(kafka, topic, SAMPLES / "ztf")
    assert n == len(expected) == 18

    async def main() -> tuple[list, float, int]:
        got = []
        with Ticker() as ticker:
            async with AlertConsumer([topic], alice_config(unique_group())) as consumer:
                async for t, alert in consumer:
                    got.append((t, alert))
                    if len(got) == n:
                        break
                # Nothing more: a blocking poll would hold the loop for the whole second.
                assert await consumer.poll(timeout=1.0) == (None, None)
                assert await consumer.consume(5, timeout=0.5) == []
        return got, ticker.max_gap(), len(ticker.ticks)

    got, gap, ticks = asyncio.run(main())
    print(f"aio: {n} alerts, {ticks} ticks, max tick gap {gap * 1000:.1f} ms")
    assert gap < MAX_GAP, f"event loop blocked for {gap * 1000:.0f} ms"
    assert ticks > 100  # the ticker did run for the whole time (>= 1.5 s of polls)
    assert len(got) == n
    for t, alert in got:
        assert t == topic
        assert_alerts_equal(alert, expected[alert["candid"]])


def test_poll_and_consume(kafka, topic, alice_config) -> None:
    publish(kafka, topic, SAMPLES / "ztf" / "raw-datasim")  # 10 alerts

    async def main() -> float:
        async with AlertConsumer([topic], alice_config(unique_group())) as consumer:
            got_topic, alert = await consumer.poll(timeout=20)
            assert got_topic == topic and alert["objectId"].startswith("ZTF")
            three = await consumer.consume(num_alerts=3, timeout=20)
            assert len(three) == 3
            rest = await consumer.consume(num_alerts=100, timeout=3)
            assert len(rest) == 6
            candids = [a["candid"] for _, a in [(got_topic, alert), *three, *rest]]
            assert len(set(candids)) == 10
            assert await consumer.consume(5, timeout=0.5) == []
            # A long wait, cancelled: it ends within a few slices, not after 30 s.
            task = asyncio.get_running_loop().create_task(consumer.poll(timeout=30))
            await asyncio.sleep(0.3)
            start = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            took = time.monotonic() - start
            assert await consumer.poll(timeout=0) == (None, None)  # still usable
            return took

    took = asyncio.run(main())
    print(f"aio: cancelled poll(30) returned in {took * 1000:.1f} ms")
    assert took < 2


def test_close_from_another_task_ends_async_for(kafka, topic, alice_config) -> None:
    publish(kafka, topic, SAMPLES / "ztf" / "raw-datasim")
    gid = unique_group()

    async def main() -> list[int]:
        seen: list[int] = []
        async with AlertConsumer([topic], alice_config(gid)) as consumer:

            async def reader() -> None:
                async for _, alert in consumer:
                    seen.append(alert["candid"])

            task = asyncio.get_running_loop().create_task(reader())
            while len(seen) < 10:
                await asyncio.sleep(0.05)
            await consumer.close()  # the loop ends, without an error
            await asyncio.wait_for(task, timeout=10)
        return seen

    seen = asyncio.run(main())
    assert len(set(seen)) == 10
    # close() counted them all as processed: the group has nothing left.
    async def rest() -> list:
        async with AlertConsumer([topic], alice_config(gid)) as consumer:
            return await consumer.consume(10, timeout=3)

    assert asyncio.run(rest()) == []


async def _cancel_at_fetch(consumer: AlertConsumer, call: Coroutine[Any, Any, Any]) -> None:
    """Run ``call`` (a ``poll`` or ``consume`` of ``consumer``) as a task and cancel it at
    the moment the worker has an alert for it, before the result can reach it; assert the
    task ended cancelled, by that fetch.

    Wraps the real sync ``consume_messages`` (real broker, real consumer) for the rest of
    the consumer's life; the wrapper cancels once.
    """
    sync = consumer._consumer
    real = sync.consume_messages
    loop = asyncio.get_running_loop()
    task_box: list = []

    def consume_messages(*args, **kwargs):
        out = real(*args, **kwargs)
        if out and task_box:
            loop.call_soon_threadsafe(task_box.pop().cancel)
            time.sleep(0.05)  # the cancellation lands before the result
        return out

    sync.consume_messages = consume_messages
    task = loop.create_task(call)
    task_box.append(task)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not task_box, "cancelled, but not by the fetch of an alert"


def test_cancelled_poll_stores_nothing_and_restart_gets_the_alert(kafka, topic,
                                                                  alice_config) -> None:
    n = publish(kafka, topic, SAMPLES / "ztf" / "fink")  # 4 alerts
    gid = unique_group()

    async def cancelled_first_poll() -> None:
        async with AlertConsumer([topic], alice_config(gid)) as consumer:
            await _cancel_at_fetch(consumer, consumer.poll(timeout=30))
        # left normally: close() stores only what reached a caller (nothing)

    asyncio.run(cancelled_first_poll())
    again = asyncio.run(_collect(alice_config(gid), topic, n))
    assert len({a["candid"] for _, a in again}) == n


def test_cancelled_poll_alert_goes_to_the_next_call(kafka, topic, alice_config) -> None:
    publish(kafka, topic, SAMPLES / "ztf" / "raw-datasim")  # 10 alerts
    expected = sorted(source_alerts(SAMPLES / "ztf" / "raw-datasim"))

    async def main() -> list[int]:
        async with AlertConsumer([topic], alice_config(unique_group())) as consumer:
            await _cancel_at_fetch(consumer, consumer.consume(3, timeout=30))
            got = []
            while len(got) < 10:
                batch = await consumer.consume(10, timeout=20)
                assert batch
                got.extend(batch)
            return [a["candid"] for _, a in got]

    candids = asyncio.run(main())
    # Nothing skipped, nothing twice, in offset order (single partition).
    assert sorted(candids) == expected
    assert len(candids) == 10


def test_task_cancelled_while_processing_leaves_its_alert(kafka, topic, alice_config) -> None:
    n = publish(kafka, topic, SAMPLES / "ztf" / "raw-datasim")
    gid = unique_group()
    seen: list[int] = []

    async def worker() -> None:
        async with AlertConsumer([topic], alice_config(gid)) as consumer:
            async for _, alert in consumer:
                seen.append(alert["candid"])
                if len(seen) == 3:
                    await asyncio.sleep(60)  # "processing" the third alert

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(worker())
        while len(seen) < 3:
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    again = asyncio.run(_collect(alice_config(gid), topic, n - 2))
    # Alerts 1-2 were processed (the loop came back for more); 3 was not: it comes again.
    assert again[0][1]["candid"] == seen[2]
    assert not {a["candid"] for _, a in again} & set(seen[:2])


def test_exception_in_async_with_redelivers_the_last_call(kafka, topic, alice_config) -> None:
    n = publish(kafka, topic, SAMPLES / "ztf" / "raw-datasim")
    gid = unique_group()

    async def failing() -> list[int]:
        got = []
        with pytest.raises(RuntimeError, match="filter crashed"):
            async with AlertConsumer([topic], alice_config(gid)) as consumer:
                got.extend(await consumer.consume(2, timeout=20))
                got.extend(await consumer.consume(3, timeout=20))
                assert len(got) == 5
                raise RuntimeError("filter crashed")
        return [a["candid"] for _, a in got]

    first = asyncio.run(failing())
    again = [a["candid"] for _, a in asyncio.run(_collect(alice_config(gid), topic, n - 2))]
    assert again[:3] == first[2:]  # the last call's alerts come again
    assert not set(again) & set(first[:2])  # those of the earlier call were processed


def test_commit_after_a_cancelled_poll_commits_only_what_was_handed(kafka, topic,
                                                                    alice_config) -> None:
    n = publish(kafka, topic, SAMPLES / "ztf" / "raw-datasim")
    gid = unique_group()

    async def main() -> list[int]:
        with pytest.raises(RuntimeError, match="crash"):
            async with AlertConsumer([topic], alice_config(gid)) as consumer:
                first = await consumer.consume(2, timeout=20)
                assert len(first) == 2
                await _cancel_at_fetch(consumer, consumer.poll(timeout=30))
                await consumer.commit()  # the 2 handed out; not the alert never received
                raise RuntimeError("crash")  # nothing stored after the commit
        return [a["candid"] for _, a in first]

    first = asyncio.run(main())
    again = asyncio.run(_collect(alice_config(gid), topic, n - 2))
    assert not set(first) & {a["candid"] for _, a in again}


@pytest.mark.parametrize(("good_before", "failing_call"), [(0, "poll"), (4, "consume")],
                         ids=["bad-first", "bad-after-4"])
def test_undecodable_message_is_a_typed_error_then_the_stream_goes_on(
    kafka, topic, alice_config, good_before: int, failing_call: str
) -> None:
    """An undecodable message is a DecodeError naming its offset, raised by ``poll`` or
    ``consume``; the alerts before it come first (one ``consume`` returns at the bad
    message, not at its timeout), and those after it come next."""
    if good_before:
        publish(kafka, topic, SAMPLES / "ztf" / "fink")
    producer = Producer({"bootstrap.servers": kafka.admin_servers})
    producer.produce(topic, value=b"\x07not an alert", key=b"nonsense")
    producer.flush(10)
    publish(kafka, topic, SAMPLES / "ztf" / "fink")

    async def main() -> float:
        async with AlertConsumer([topic], alice_config(unique_group())) as consumer:
            start = time.monotonic()
            if good_before:
                before = await consumer.consume(100, timeout=120)
                assert len(before) == good_before
            took = time.monotonic() - start
            with pytest.raises(DecodeError) as info:
                if failing_call == "poll":
                    await consumer.poll(timeout=20)
                else:
                    await consumer.consume(100, timeout=20)
            assert (info.value.topic, info.value.partition, info.value.offset) == (
                topic, 0, good_before)
            after = await consumer.consume(4, timeout=20)
            assert len(after) == 4
            return took

    assert asyncio.run(main()) < 60


def test_wrong_password_and_unknown_topic_are_typed_errors(kafka, topic, alice_config) -> None:
    bad = {**alice_config(unique_group()), "password": "wrong"}
    threads = threading.active_count()

    async def main() -> None:
        with pytest.raises(AuthenticationError, match="finkctl auth") as info:
            async with AlertConsumer([topic], bad):
                pass
        assert "wrong" not in str(info.value)
        with pytest.raises(UnknownTopicError, match="does not exist"):
            await AlertConsumer([f"{topic}-nope"], alice_config(unique_group())).poll(1)

    asyncio.run(main())
    deadline = time.monotonic() + 5
    while threading.active_count() > threads and time.monotonic() < deadline:
        time.sleep(0.1)
    assert threading.active_count() <= threads  # no worker thread left behind
