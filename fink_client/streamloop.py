"""The stream loop behind ``finkctl stream``: consume, hand each batch to a sink, stop on a
limit, the end offsets, an idle timeout or a signal.

Delivery rule (README "Delivery guarantees"): the loop never stores an offset itself. The
sink makes each batch durable (a file, the reader of stdout) and only then stores its
offsets; on an error the sink stores only what is already durable, and a second Ctrl-C
(``KeyboardInterrupt``) stores nothing more. The disk sink is
:class:`fink_client.sink.DiskSink`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from fink_client.consumer import AlertConsumer, Delivery

TP = tuple[str, int]


@dataclasses.dataclass
class StreamStats:
    """What a stream run did; ``reason`` says why it stopped."""

    count: int = 0
    started: float = dataclasses.field(default_factory=time.monotonic)
    reason: str = ""
    positions: dict[TP, int] = dataclasses.field(default_factory=dict)

    @property
    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        """Alerts per second since the start."""
        return self.count / self.elapsed if self.elapsed > 0 else 0.0


def drained(positions: Mapping[TP, int], starts: Mapping[TP, int],
            ends: Mapping[TP, int]) -> bool:
    """True when every partition of ``ends`` has been read up to its end offset."""
    return all(positions.get(tp, starts.get(tp, 0)) >= end for tp, end in ends.items())


def read_up_to(consumer: AlertConsumer) -> dict[TP, int]:
    """How far each partition has been read: past the last alert handed out, and past
    records no consumer ever gets (transaction markers, compacted offsets), so that a
    partition whose end offset sits after such records still counts as drained."""
    out = consumer.delivered_positions()
    for tp, pos in consumer.read_positions().items():
        out[tp] = max(out.get(tp, pos), pos)
    return out


class Sink(Protocol):
    """Where the stream loop hands alerts: it makes them durable (a file, the reader of
    stdout), then stores their offsets in the consumer; never before."""

    batch_size: int

    def add(self, deliveries: Sequence[Delivery]) -> Any:
        """Take ``deliveries`` (possibly none: a chance to write an old partial batch)."""

    def close(self, *, only_written: bool = False) -> None:
        """Finish; ``only_written`` after an error: store only what is durable."""


def stream(
    consumer: AlertConsumer,
    *,
    sink: Sink | None = None,
    limit: int | None = None,
    starts: Mapping[TP, int] | None = None,
    ends: Mapping[TP, int] | None = None,
    idle_timeout: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_alerts: Callable[[list[Delivery], StreamStats], None] | None = None,
    batch: int = 200,
    poll_interval: float = 0.5,
) -> StreamStats:
    """Consume until ``limit`` alerts, the ``ends`` offsets (``--until-end``), ``idle_timeout``
    seconds without an alert, or ``should_stop()``; then flush the sink.

    ``starts``/``ends`` map each partition to where reading starts and the end offset to
    reach. ``sink`` makes each batch durable and stores its offsets; ``on_alerts`` sees
    every batch afterwards (status line). Returns the stats; its ``reason`` is
    ``limit``, ``end``, ``timeout`` or ``stopped``.
    """
    if sink is not None:
        batch = max(1, min(batch, sink.batch_size))
    stats = StreamStats()
    starts = dict(starts or {})
    last_alert = time.monotonic()
    try:
        while True:
            if should_stop():
                stats.reason = "stopped"
                break
            if limit is not None and stats.count >= limit:
                stats.reason = "limit"
                break
            stats.positions = read_up_to(consumer)
            if ends is not None and drained(stats.positions, starts, ends):
                stats.reason = "end"
                break
            want = batch if limit is None else min(batch, limit - stats.count)
            got = consumer.consume_messages(want, timeout=poll_interval,
                                            raw=getattr(sink, "raw", False))
            now = time.monotonic()
            if got:
                last_alert = now
                stats.count += len(got)
                if sink is not None:
                    sink.add(got)
            elif sink is not None:
                sink.add([])  # lets an old, partly filled batch reach the disk
            stats.positions = read_up_to(consumer)
            if on_alerts is not None:
                on_alerts(got, stats)
            if idle_timeout is not None and now - last_alert >= idle_timeout:
                stats.reason = "timeout"
                break
    except KeyboardInterrupt:  # second Ctrl-C: abort now, store nothing more
        abort = getattr(sink, "abort", None)  # a write in flight: its temp file goes now
        if abort is not None:
            abort()
        raise
    except BaseException:
        # The alerts already buffered decoded fine: write and commit them, but not the
        # offset of whatever failed (an undecodable message is read again next time).
        if sink is not None:
            sink.close(only_written=True)
        raise
    if sink is not None:
        sink.close()
    return stats


__all__ = ["Sink", "StreamStats", "drained", "read_up_to", "stream"]
