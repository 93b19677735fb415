"""Offsets of a consumer group: committed, earliest/end, lag, and resets.

:class:`OffsetsClient` uses a Kafka consumer that never joins the group (it only reads
metadata and the group's committed offsets, and commits new ones on a reset), so it can
be used beside a running :class:`~fink_client.consumer.AlertConsumer` to measure lag.

>>> with OffsetsClient(config) as oc:                       # doctest: +SKIP
...     for p in oc.describe(["rrlyr"]):
...         print(p.topic, p.partition, p.committed, p.high, p.lag)
...     oc.reset(["rrlyr"], "earliest")      # the group re-reads everything

A reset target is ``"earliest"``, ``"latest"``, a time (``datetime`` or ISO 8601 text:
the first alert at or after it, through Kafka's ``offsets_for_times``) or a negative
integer ``-N`` (the last N alerts of each partition).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka import KafkaError as RdKafkaError

from fink_client import _kafka
from fink_client import config as _config
from fink_client._kafka import check_topic_metadata
from fink_client.errors import ConfigError, KafkaError

Target = str | int | dt.datetime
TP = tuple[str, int]


@dataclasses.dataclass(frozen=True)
class PartitionOffsets:
    """Offsets of one partition for one group.

    ``low``/``high``: first offset still stored and the end offset (next to be written);
    ``committed``: the group's committed offset, or None if it never committed;
    ``lag``: alerts the group has not read yet (``high - max(committed, low)``).
    """

    topic: str
    partition: int
    low: int
    high: int
    committed: int | None

    @property
    def position(self) -> int:
        """Where the group resumes: its committed offset, else the earliest (Fink default)."""
        if self.committed is None:
            return self.low
        return min(max(self.committed, self.low), self.high)

    @property
    def lag(self) -> int:
        """Alerts between the group's position and the end of the partition."""
        return max(0, self.high - self.position)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for ``--json``)."""
        d = dataclasses.asdict(self)
        d["lag"] = self.lag
        return d


def parse_time(text: str) -> dt.datetime:
    """ISO 8601 date/time -> aware datetime (naive times are taken as UTC)."""
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        when = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise ConfigError(
            f"{text!r} is not an ISO 8601 time (e.g. 2024-05-01T12:00:00Z)", field="time"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when


def parse_target(text: str | int | dt.datetime) -> Target:
    """``earliest``, ``latest``, ``-N`` (last N per partition) or an ISO time -> a target.

    Raises :class:`ConfigError` with the accepted forms for anything else.
    """
    if isinstance(text, (int, dt.datetime)):
        if isinstance(text, int) and text >= 0:
            raise ConfigError("a numeric start must be negative: -N means the last N alerts")
        return text
    value = text.strip().lower()
    if value in ("earliest", "latest"):
        return value
    if value.startswith("-") and value[1:].isdigit():
        n = int(value)
        if n == 0:
            raise ConfigError("-0 is not a start: use 'latest' to read only new alerts")
        return n
    try:
        return parse_time(text)
    except ConfigError:
        raise ConfigError(
            f"invalid start {text!r}: use earliest, latest, -N (last N alerts of each "
            "partition) or an ISO time such as 2024-05-01T12:00:00Z",
            field="start",
        ) from None


class OffsetsClient:
    """Read and reset the offsets of the consumer group given in ``config``.

    ``config`` is a fink-client config (``group_id``, ``username``, ``password``,
    ``bootstrap.servers``...). Errors are the typed errors of :mod:`fink_client.errors`,
    raised within ``connect_timeout`` seconds (never a hang).
    """

    def __init__(self, config: Mapping[str, Any], *, timeout: float | None = None) -> None:
        kcfg = _config.kafka_config(config)
        timeout = timeout if timeout is not None else _config.connect_timeout(config)
        # This client commits only on reset().
        self._client: _kafka.Client[Consumer] = _kafka.consumer(kcfg, timeout=timeout)
        self._consumer = self._client.kafka
        self._servers = self._client.servers
        self.group = kcfg["group.id"]
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------
    def close(self) -> None:
        """Release the connection (idempotent)."""
        if not self._closed:
            self._closed = True
            self._consumer.close()

    def __enter__(self) -> OffsetsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OffsetsClient(group_id={self.group!r}, servers={self._servers!r})"

    def list_topics(self) -> dict[str, int]:
        """Topic name -> partition count, for every topic this user may see.

        Kafka lists only the topics the user has permission to describe; internal topics
        (``__consumer_offsets``...) are left out.
        """
        md = self._client.retry("listing topics", self._consumer.list_topics)
        return {
            name: len(t.partitions)
            for name, t in sorted(md.topics.items())
            if not name.startswith("__") and t.error is None
        }

    def partitions(self, topics: Sequence[str]) -> list[TopicPartition]:
        """Every partition of ``topics``; :class:`UnknownTopicError` names the missing ones."""
        out: list[TopicPartition] = []
        for name in topics:
            md = self._client.retry(f"describing topic {name!r}", self._consumer.list_topics,
                                    name)
            tmd = check_topic_metadata(md, name, available=self.list_topics,
                                       servers=self._servers, group=self.group)
            out.extend(TopicPartition(name, p) for p in sorted(tmd.partitions))
        return out

    def watermarks(self, tps: Sequence[TopicPartition]) -> dict[TP, tuple[int, int]]:
        """``(low, high)`` offsets of each partition, straight from the broker."""
        return {
            (tp.topic, tp.partition): tuple(self._client.retry(
                f"reading the end offsets of {tp.topic!r}",
                self._consumer.get_watermark_offsets, tp, cached=False,
            ))
            for tp in tps
        }

    def committed(self, tps: Sequence[TopicPartition]) -> dict[TP, int | None]:
        """The group's committed offset of each partition (None where it never committed)."""
        if not tps:
            return {}
        got = self._client.retry(f"reading the offsets of group {self.group!r}",
                                 self._consumer.committed, list(tps))
        return {(tp.topic, tp.partition): tp.offset if tp.offset >= 0 else None
                for tp in self._client.checked(got)}

    # -- public reports --------------------------------------------------------------
    def describe(self, topics: Sequence[str]) -> list[PartitionOffsets]:
        """Low/high/committed offsets (and so lag) of every partition of ``topics``."""
        tps = self.partitions(topics)
        marks = self.watermarks(tps)
        committed = self.committed(tps)
        return [
            PartitionOffsets(tp.topic, tp.partition, *marks[(tp.topic, tp.partition)],
                             committed.get((tp.topic, tp.partition)))
            for tp in tps
        ]

    def targets(self, topics: Sequence[str], target: Target | str) -> dict[TP, int]:
        """Offset each partition would start from for ``target`` (see :func:`parse_target`).

        A time after the last alert gives the end offset (nothing to read yet).
        """
        target = parse_target(target)
        tps = self.partitions(topics)
        marks = self.watermarks(tps)
        if isinstance(target, dt.datetime):
            millis = int(target.timestamp() * 1000)
            query = [TopicPartition(tp.topic, tp.partition, millis) for tp in tps]
            found = self._client.retry("looking up offsets by time",
                                       self._consumer.offsets_for_times, query)
            return {(tp.topic, tp.partition):
                    tp.offset if tp.offset >= 0 else marks[(tp.topic, tp.partition)][1]
                    for tp in self._client.checked(found)}
        if target == "earliest":
            return {k: low for k, (low, _) in marks.items()}
        if target == "latest":
            return {k: high for k, (_, high) in marks.items()}
        assert isinstance(target, int)
        return {k: max(low, high + target) for k, (low, high) in marks.items()}

    def commit(self, offsets: Mapping[TP, int]) -> None:
        """Commit ``offsets`` for the group (it must have no active member)."""
        if not offsets:
            return
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            got = self._consumer.commit(offsets=tps, asynchronous=False)
        except KafkaException as exc:
            err = exc.args[0]
            if err.code() in (RdKafkaError.UNKNOWN_MEMBER_ID, RdKafkaError.REBALANCE_IN_PROGRESS,
                              RdKafkaError.ILLEGAL_GENERATION):
                raise KafkaError(
                    f"cannot reset the offsets of group {self.group!r} while it has active "
                    "consumers: stop them first",
                    code=err.name(),
                ) from None
            raise self._client.translate(err) from None
        self._client.checked(got or [])

    def reset(self, topics: Sequence[str], target: Target | str) -> list[PartitionOffsets]:
        """Move the group's committed offsets of ``topics`` to ``target``; return the result."""
        self.commit(self.targets(topics, target))
        return self.describe(topics)


def describe(config: Mapping[str, Any], topics: Sequence[str]) -> list[PartitionOffsets]:
    """Offsets and lag of the group of ``config`` on ``topics`` (see :class:`OffsetsClient`)."""
    with OffsetsClient(config) as oc:
        return oc.describe(topics)


def reset(config: Mapping[str, Any], topics: Sequence[str],
          target: Target | str) -> list[PartitionOffsets]:
    """Reset the group of ``config`` on ``topics`` to ``target``; return the new offsets."""
    with OffsetsClient(config) as oc:
        return oc.reset(topics, target)


__all__ = [
    "OffsetsClient",
    "PartitionOffsets",
    "describe",
    "parse_target",
    "parse_time",
    "reset",
]
