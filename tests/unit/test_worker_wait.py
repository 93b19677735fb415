"""How long a transfer worker's ``consume()`` waits (``Worker._wait``): briefly while
messages come or are buffered, longer once it has been idle for a while."""

from __future__ import annotations

import pytest

from fink_client import transfer_worker
from fink_client.transfer_worker import CONSUME_WAIT, IDLE_AFTER, IDLE_WAIT, Worker


def _worker(last: float, buffers: dict[int, list]) -> Worker:
    # pure logic: only the attributes _wait reads (no consumer, no broker)
    worker = object.__new__(Worker)
    worker._last_message = last
    worker.buffers = buffers
    return worker


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(transfer_worker.time, "monotonic", lambda: now[0])
    return now


def test_short_waits_while_messages_come(clock: list[float]) -> None:
    assert IDLE_WAIT > CONSUME_WAIT
    worker = _worker(last=clock[0] - IDLE_AFTER / 2, buffers={})
    assert worker._wait() == CONSUME_WAIT


def test_long_waits_once_idle(clock: list[float]) -> None:
    worker = _worker(last=clock[0] - IDLE_AFTER - 0.01, buffers={3: []})
    assert worker._wait() == IDLE_WAIT  # emptied buffers do not count as work


def test_short_waits_while_a_partial_batch_is_buffered(clock: list[float]) -> None:
    worker = _worker(last=clock[0] - 10 * IDLE_AFTER, buffers={3: [(7, b"v", None)]})
    assert worker._wait() == CONSUME_WAIT
