"""asyncio front end of :class:`fink_client.consumer.AlertConsumer`.

>>> from fink_client.aio import AlertConsumer
>>> async def main():                                             # doctest: +SKIP
...     async with AlertConsumer(["rrlyr"], config) as consumer:
...         async for topic, alert in consumer:
...             print(topic, alert["objectId"])

Same arguments, decoding, typed errors and delivery rules as the synchronous consumer,
which does all the work: every librdkafka call runs in one dedicated worker thread (one
per consumer, so calls keep their order), in slices of at most :data:`SLICE` seconds,
and the event loop only waits on their futures. It is never blocked, and a cancelled
``poll``/``consume`` returns within one slice.

Delivery rule (at least once, as in :mod:`fink_client.consumer`): an alert counts as
processed when the caller comes back for more (the next ``poll``/``consume`` call or loop
iteration) or calls ``close()``/``commit()``; only then is its offset stored. Leaving
``async with`` by an exception (cancellation included) stores nothing of the last call.
A task cancelled while it waited never received its alerts: they are not stored, and the
next call on this consumer gets them first (a Kafka offset covers every alert before it,
so storing later ones would lose them). Garbage collection without ``close()`` stores
nothing of the last call either.

The synchronous consumer runs with ``auto_store=False``: this module stores exactly the
offsets of the alerts that reached the caller, through
:meth:`~fink_client.consumer.AlertConsumer.store_delivered`.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fink_client import config as _config
from fink_client import consumer as _sync
from fink_client.errors import AlertError, ConfigError, DecodeError

__all__ = ["SLICE", "AlertConsumer"]

#: Longest blocking librdkafka call (s): bounds how late a cancellation takes effect.
SLICE = 0.1

Alert = dict[str, Any]
Offsets = dict[tuple[str, int], int]


class AlertConsumer:
    """Consume Fink alerts from Kafka topics in an asyncio program.

    Arguments are those of :class:`fink_client.consumer.AlertConsumer` (``topics``,
    ``config``, ``schema``, ``survey``, ``on_error``, ``dead_letter``, ``id_resolver``),
    except ``auto_store``: offsets are stored by the rule in the module docstring.
    Connecting happens on ``async with`` (or the first call), in the worker thread.
    """

    def __init__(
        self, topics: Sequence[str] | str, config: dict[str, Any], schema: Any = None,
        **options: Any,
    ) -> None:
        if "auto_store" in options:
            raise ConfigError("the asyncio AlertConsumer stores offsets itself: "
                              "auto_store is not an option here", field="auto_store")
        # Bad configuration fails here, as with the sync consumer (pure checks, no I/O).
        _config.kafka_config(_config.with_survey(config, options.get("survey")))
        _config.connect_timeout(config)
        self._args = (topics, config, schema)
        self._options = options
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fink-aio")
        self._consumer: _sync.AlertConsumer | None = None
        self._closed = False
        self._call_lock = asyncio.Lock()  # one poll/consume at a time
        # Fetched by the worker but not yet handed to a caller (alerts as Deliveries,
        # errors to raise in order); filled by the worker thread, emptied by the loop.
        self._ready: collections.deque[_sync.Delivery | Exception] = collections.deque()
        self._ready_lock = threading.Lock()
        self._handed: Offsets = {}  # offsets of the last call's alerts (not yet stored)

    # -- worker-thread side ---------------------------------------------------------
    def _open(self) -> None:
        topics, config, schema = self._args
        self._consumer = _sync.AlertConsumer(topics, config, schema, auto_store=False,
                                             **self._options)

    def _fetch(self, store: Offsets, num: int, timeout: float) -> None:
        """Store the previous call's offsets, then fetch up to ``num`` alerts into _ready."""
        assert self._consumer is not None
        if store:
            self._consumer.store_delivered(store)
        try:
            got: list[_sync.Delivery | Exception] = list(
                self._consumer.consume_messages(num, timeout)
            )
        except Exception as exc:  # handed to the caller in order, like an alert
            got = [exc]
        with self._ready_lock:
            self._ready.extend(got)

    def _commit(self, store: Offsets) -> None:
        assert self._consumer is not None
        self._consumer.store_delivered(store)
        # The sync consumer counts as delivered whatever it passed to this module, which
        # includes alerts still waiting in _ready for a caller: forget those, so that
        # commit() commits exactly the offsets stored above and before.
        self._consumer._to_store.clear()
        self._consumer.commit()

    def _shutdown(self, store: Offsets) -> None:
        if self._consumer is not None:
            if store:
                self._consumer.store_delivered(store)
            self._consumer.close()  # commits what was stored; auto_store=False: only that

    # -- event-loop side ------------------------------------------------------------
    def _run(self, fn: Any, *args: Any) -> asyncio.Future[Any]:
        """Submit ``fn(*args)`` to the worker thread now; await the result."""
        return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _check_open(self) -> None:
        if self._closed:
            raise AlertError("this AlertConsumer is closed")

    async def start(self) -> AlertConsumer:
        """Connect (check the topics, join the group); done by ``async with`` already."""
        self._check_open()
        if self._consumer is None:
            try:
                await self._run(self._open)
            except BaseException:
                # Failed (the sync consumer cleaned up), or cancelled: then the worker
                # finishes connecting, and closes that consumer right after.
                self._closed = True
                self._executor.submit(self._shutdown, {})
                self._executor.shutdown(wait=False)
                raise
        return self

    def _take(self, num: int, *, first: bool) -> tuple[list[_sync.Delivery], bool]:
        """Up to ``num`` fetched alerts, and whether a fetched error is next in line.

        That error is raised if it comes ``first`` (nothing handed yet in this call);
        after alerts, it waits for the next call, as in the sync consumer.
        """
        out: list[_sync.Delivery] = []
        with self._ready_lock:
            while self._ready and len(out) < num:
                item = self._ready[0]
                if isinstance(item, Exception):
                    if out or not first:
                        return out, True
                    self._ready.popleft()
                    if (isinstance(item, DecodeError) and item.topic is not None
                            and item.partition is not None and item.offset is not None):
                        # The error is that message's delivery (as in the sync consumer).
                        self._handed[(item.topic, item.partition)] = item.offset + 1
                    raise item
                out.append(item)
                self._ready.popleft()
            return out, bool(self._ready) and isinstance(self._ready[0], Exception)

    async def _deliver(self, num: int, timeout: float | None) -> list[_sync.Delivery]:
        self._check_open()
        _config.num_alerts(num)  # bad arguments fail at once, as in the sync consumer
        wait = _config.seconds(timeout, "timeout", forever_below_zero=True)
        async with self._call_lock:
            await self.start()
            deadline = time.monotonic() + wait
            store, self._handed = self._handed, {}  # the caller came back: processed
            out: list[_sync.Delivery] = []
            fetched = False
            try:
                while True:
                    got, error_next = self._take(num - len(out), first=not out)
                    out.extend(got)
                    remaining = deadline - time.monotonic()
                    if (len(out) >= num or error_next or (fetched and remaining <= 0)
                            or self._closed):  # closed by another task meanwhile
                        break
                    job = self._run(self._fetch, store, num - len(out),
                                    min(SLICE, max(0.0, remaining)))
                    store, fetched = {}, True  # the job stores them, even if cancelled
                    await job
            except BaseException:
                # Not handed to this caller (cancelled, or an error after them): the
                # next call gets these alerts first; their offsets are not stored.
                with self._ready_lock:
                    self._ready.extendleft(reversed(out))
                raise
            finally:
                if store and self._consumer is not None and not self._closed:
                    # no fetch ran: store the previous call's alerts on their own
                    self._executor.submit(self._consumer.store_delivered, store)
            for d in out:
                key = (d.topic, d.partition)
                self._handed[key] = max(self._handed.get(key, -1), d.offset + 1)
            return out

    async def poll(self, timeout: float = -1) -> tuple[str, Alert] | tuple[None, None]:
        """Next alert as ``(topic, alert)``, or ``(None, None)`` if none came in ``timeout`` s.

        ``timeout=-1`` waits indefinitely.
        """
        got = await self._deliver(1, timeout)
        return (got[0].topic, got[0].alert or {}) if got else (None, None)

    async def consume(self, num_alerts: int = 1, timeout: float = -1) -> list[tuple[str, Alert]]:
        """Up to ``num_alerts`` ``(topic, alert)`` pairs, waiting at most ``timeout`` s."""
        return [(d.topic, d.alert or {}) for d in await self._deliver(num_alerts, timeout)]

    async def consume_messages(self, num_alerts: int = 1, timeout: float = -1
                               ) -> list[_sync.Delivery]:
        """As :meth:`consume`, each alert as a :class:`~fink_client.consumer.Delivery`."""
        return await self._deliver(num_alerts, timeout)

    def __aiter__(self) -> AlertConsumer:
        return self

    async def __anext__(self) -> tuple[str, Alert]:
        """Alerts forever, until ``close()`` (from any task); asking for the next one
        processes the last.
        """
        while not self._closed:
            topic, alert = await self.poll(1.0)
            if topic is not None and alert is not None:
                return topic, alert
        raise StopAsyncIteration

    async def commit(self) -> None:
        """Commit now the offsets of every alert handed out (synchronously, in the worker)."""
        self._check_open()
        async with self._call_lock:
            await self.start()
            store, self._handed = self._handed, {}
            await self._run(self._commit, store)

    async def close(self) -> None:
        """Commit the offsets of the alerts handed out, and leave the group. Idempotent."""
        await self._close(store_last=True)

    async def _close(self, *, store_last: bool) -> None:
        if self._closed:
            return
        self._closed = True
        store, self._handed = (self._handed if store_last else {}), {}
        # Queued behind any running fetch; shielded so a cancellation here still closes.
        try:
            await asyncio.shield(self._run(self._shutdown, store))
        finally:
            self._executor.shutdown(wait=False)

    async def __aenter__(self) -> AlertConsumer:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        # The exception rule: leaving the block by an exception (cancellation included)
        # does not count as processing the alerts of the last call.
        await self._close(store_last=exc_type is None)

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._consumer else "not started")
        return f"aio.AlertConsumer({self._args[0]!r}, {state})"

    def __del__(self) -> None:
        # Best effort, without an event loop: leave the group, store nothing more.
        try:
            if not self._closed:
                self._closed = True
                self._executor.submit(self._shutdown, {})
                self._executor.shutdown(wait=False)
        except Exception:
            pass
