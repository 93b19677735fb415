"""AlertConsumer: Fink alerts from Kafka topics, as Python dicts, at least once.

Delivery rule (README "Delivery guarantees"): an alert counts as processed when the
caller comes back for more (the next ``poll``/``consume`` call or loop iteration) or
calls ``close()`` or ``commit()`` explicitly; only then is its offset *stored*, and
librdkafka commits stored offsets periodically and on close. A process that dies at any
moment therefore loses no alert; on restart with the same group it gets again at most
the alerts handed out since the last commit (``auto.commit.interval.ms``, 5 s by
default) plus those it held when it died.

The exception rule: leaving a ``with AlertConsumer(...)`` block because of an exception
(KeyboardInterrupt included), or an exception out of a ``for topic, alert in consumer``
loop, does not process the alerts handed out by the last call, and neither does garbage
collection (``del consumer`` without ``close()``): their offsets are not stored, so they
come again after a restart. Leaving the block normally commits them.

An undecodable message raises :class:`DecodeError` carrying topic/partition/offset and
the raw bytes; calling ``poll``/``consume`` again continues after it (the error *is*
the delivery of that message). ``on_error="skip"`` logs and skips instead, and
``dead_letter=DIR`` also keeps the raw bytes and the reason in ``DIR``.

Sinks that must store an offset only once the alert is durable elsewhere (the
``finkctl stream --save`` loop) pass ``auto_store=False`` and call
:meth:`AlertConsumer.store_delivered` (or :meth:`AlertConsumer.commit`) themselves after
each durable write; nothing is then stored implicitly, not even on ``close()``.
"""

from __future__ import annotations

import collections
import itertools
import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import confluent_kafka
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka import KafkaError as RdKafkaError

from fink_client import _kafka, codec
from fink_client import config as _config
from fink_client._kafka import check_topic_metadata
from fink_client.errors import (
    AlertError,
    ConfigError,
    DeadLetterError,
    DecodeError,
    SchemaError,
)
from fink_client.errors import translate_kafka_error as translate_kafka_error  # moved there
from fink_client.wire import CONTAINER_MAGIC, Decoder, IdResolver, SchemaLike

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

Alert = dict[str, Any]


class Delivery(NamedTuple):
    """An alert with where it came from (see :meth:`AlertConsumer.consume_messages`).

    ``timestamp`` is the Kafka message timestamp in ms since the epoch (or None);
    ``key`` the raw message key (for Fink streams, the schema as JSON text); ``value``
    the raw message value and ``schema`` the writer schema (JSON dict) it was decoded
    with, whatever the wire format (for sinks writing files). ``alert`` is ``None``
    only for a schemaless value validated but not decoded (``consume_messages(raw=True)``).
    """

    topic: str
    partition: int
    offset: int
    timestamp: int | None
    key: bytes | None
    alert: Alert | None
    value: bytes | None = None
    schema: Any = None

__all__ = ["AlertConsumer", "AlertError", "DecodeError", "Delivery"]

MAX_BATCH = _config.MAX_BATCH

class AlertConsumer:
    """Consume Fink alerts from Kafka topics as Python dicts.

    >>> consumer = AlertConsumer(["rrlyr"], {"username": "...", "password": "...",
    ...                          "group_id": "client_group"})     # doctest: +SKIP
    >>> topic, alert = consumer.poll(timeout=5)                    # doctest: +SKIP

    ``topics``: names (a name starting with ``^`` is a regular expression).
    ``config``: ``username``, ``password``, ``group_id``, ``bootstrap.servers``,
    ``survey`` (``ztf`` selects the default server; also accepted as the ``survey=``
    keyword, as upstream), ``connect_timeout`` (s), plus any librdkafka key (upstream's
    ``group.id`` included). ``schema`` (path, dict or JSON) overrides schema detection.
    ``on_error``: ``"raise"`` (default) or ``"skip"`` for undecodable messages;
    ``dead_letter``: folder where undecodable messages are kept with their reason.
    ``auto_store=False``: offsets are stored only by :meth:`store_delivered` or
    :meth:`commit`, for callers that must first make alerts durable (sinks).

    At least once: an alert counts as processed when you come back for more (next
    ``poll``/``consume``/iteration) or call ``close()``/``commit()``. Leaving a ``with``
    block by an exception, or dropping the consumer without ``close()``, leaves the
    alerts of the last call to be delivered again after a restart (the exception rule).
    """

    def __init__(
        self,
        topics: Sequence[str] | str,
        config: dict[str, Any],
        schema: SchemaLike | None = None,
        *,
        on_error: str = "raise",
        dead_letter: str | Path | None = None,
        id_resolver: IdResolver | None = None,
        auto_store: bool = True,
        survey: str | None = None,
    ) -> None:
        self._auto_store = bool(auto_store)
        self._closed = True  # until the Kafka consumer exists (for __del__)
        config = _config.with_survey(config, survey)
        topics = _topic_list(topics)
        if on_error not in ("raise", "skip"):
            raise ConfigError(f"on_error must be 'raise' or 'skip', not {on_error!r}",
                              field="on_error")
        self.topics = topics
        self._kafka_config = _config.kafka_config(config)  # ConfigError unless a dict
        self._user_config = dict(config)
        self._connect_timeout = _config.connect_timeout(config)
        self._servers = self._kafka_config["bootstrap.servers"]
        self._group = self._kafka_config["group.id"]
        self._on_error = on_error
        self._dead_letter = None
        if dead_letter is not None:
            from fink_client.io.deadletter import DeadLetter

            self._dead_letter = DeadLetter(dead_letter)
        self._buffer: collections.deque[confluent_kafka.Message] = collections.deque()
        self._to_store: dict[tuple[str, int], int] = {}
        self._handed_out: dict[tuple[str, int], int] = {}
        self._decoder = Decoder(schema, id_resolver=id_resolver)
        self._connected_once = False  # any metadata answer seen: later failures are outages
        self._outage_since: float | None = None  # when every broker went away, if they did
        self._outage_probe = 0.0  # last reconnection probe during an outage

        self._client = _kafka.Client(Consumer, self._kafka_config,
                                     timeout=self._connect_timeout,
                                     on_transient=self._transient_error)
        self._consumer = self._client.kafka
        self._closed = False
        try:
            self._check_topics()
            self._load_side_schemas()
            try:
                self._consumer.subscribe(topics, on_revoke=self._on_revoke)
            except KafkaException as exc:  # e.g. a pattern librdkafka's regex refuses
                raise ConfigError(f"cannot subscribe to {topics!r}: {exc.args[0].str()}; "
                                  "check the topic names and patterns", field="topics") from None
        except BaseException:
            self._consumer.close()
            self._closed = True
            raise

    # -- start-up checks -----------------------------------------------------------
    def _raise_pending_error(self) -> None:
        """Raise the first fatal error reported asynchronously by librdkafka, if any."""
        self._client.raise_pending()

    def _transient_error(self, err: confluent_kafka.KafkaError) -> None:
        """A non-fatal asynchronous error: every broker gone after a first answer is an
        outage (librdkafka reconnects by itself); the others are only logged."""
        if err.code() == RdKafkaError._ALL_BROKERS_DOWN and self._connected_once:
            self._outage_started(err)
        log.debug("kafka: %s", err)

    def _outage_started(self, err: confluent_kafka.KafkaError) -> None:
        """Report (once) that every broker went away; librdkafka keeps reconnecting."""
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.warning(
                "lost the connection to every Kafka broker (%s): %s; waiting for them to "
                "come back (nothing is lost: reading resumes where it stopped)",
                self._servers, err.str(),
            )

    def _outage_check(self, got_messages: bool) -> None:
        """During an outage, report once the brokers answer again (probed every 2 s)."""
        if self._outage_since is None:
            return
        now = time.monotonic()
        if not got_messages:
            if now - self._outage_probe < 2.0:
                return
            self._outage_probe = now
            try:
                self._consumer.list_topics(timeout=0.5)
            except KafkaException:
                return
        log.warning("Kafka broker(s) %s reachable again after %.0f s; resuming",
                    self._servers, now - self._outage_since)
        self._outage_since = None

    def _metadata(self, topic: str | None = None) -> Any:
        md = self._client.retry("reading the topics' metadata", self._consumer.list_topics,
                                topic)
        self._connected_once = True
        return md

    def _check_topics(self) -> None:
        """Fail fast, with a useful message, on unknown or forbidden topics."""
        names = [t for t in self.topics if not t.startswith("^")]
        if not names:
            self._metadata()
            return
        for name in names:
            check_topic_metadata(
                self._metadata(name), name,
                available=lambda: (t for t in self._metadata().topics if not t.startswith("__")),
                servers=self._servers, group=self._group,
            )

    def _load_side_schemas(self) -> None:
        """Data-transfer topics carry their schema on the side topic ``<topic>_schema``."""
        from fink_client.transfer import fetch_side_schema, is_transfer_topic

        for name in self.topics:
            if is_transfer_topic(name):
                schema = fetch_side_schema(self._kafka_config, name, self._connect_timeout)
                if schema is not None:
                    self._decoder.set_topic_schema(name, schema)

    # -- offsets -------------------------------------------------------------------
    @property
    def auto_store(self) -> bool:
        """True when each call stores the offsets of the alerts the previous one handed
        out; False (sinks) when only :meth:`store_delivered` does."""
        return self._auto_store

    def _mark_delivered(self, msg: confluent_kafka.Message) -> None:
        topic, partition, offset = _position(msg)
        self._advance((topic, partition), offset + 1)

    def _mark_run(self, run: list[confluent_kafka.Message]) -> None:
        """:meth:`_mark_delivered` for a run of one topic (see :meth:`_take_run`): the
        buffer holds each partition's messages in offset order, so the last message of a
        partition in the run is its furthest, and each partition is advanced once."""
        topic, _, _ = _position(run[0])
        last = {m.partition(): m.offset() for m in run}
        for partition, offset in last.items():
            assert partition is not None and offset is not None  # see _position
            self._advance((topic, partition), offset + 1)

    def _advance(self, key: tuple[str, int], upto: int) -> None:
        """Record that ``key``'s messages before offset ``upto`` were handed out."""
        if self._to_store.get(key, -1) < upto:
            self._to_store[key] = upto
        if self._handed_out.get(key, -1) < upto:
            self._handed_out[key] = upto

    def delivered_positions(self) -> dict[tuple[str, int], int]:
        """``(topic, partition) -> offset after the last message handed out`` (alerts and
        undecodable messages alike) since this consumer started: how far it has read.
        """
        return dict(self._handed_out)

    def read_positions(self) -> dict[tuple[str, int], int]:
        """``(topic, partition) -> offset`` up to which each assigned partition has been
        read, records never handed to a consumer included (transaction markers,
        compacted-away offsets): a partition is drained when this reaches its end offset.
        Messages fetched but not handed out yet are not counted.
        """
        try:
            tps = self._consumer.position(self._consumer.assignment())
        except KafkaException:
            return {}
        out = {(tp.topic, tp.partition): tp.offset for tp in tps if tp.offset >= 0}
        for msg in self._buffer:
            key, offset = (msg.topic(), msg.partition()), msg.offset()
            if key in out and offset is not None:
                out[key] = min(out[key], offset)
        return out

    def _store_delivered(self) -> None:
        """Store the offsets of the alerts handed out by the previous call."""
        if not self._to_store:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._to_store.items()]
        self._to_store.clear()
        try:
            self._consumer.store_offsets(offsets=offsets)
        except KafkaException as exc:
            # Partition revoked meanwhile: its new owner will get the alerts again
            # (a duplicate, never a loss).
            log.info("could not store offsets %s: %s", offsets, exc)

    def store_delivered(self, offsets: dict[tuple[str, int], int] | None = None) -> None:
        """Store now the offsets of every alert handed out so far (committed by the next
        auto-commit, :meth:`commit` or :meth:`close`). Needed only with ``auto_store=False``.

        ``offsets`` (``(topic, partition) -> next offset``) stores only those instead, e.g.
        the alerts a sink did write when it stops on an error.
        """
        self._check_open()
        if offsets is None:
            self._store_delivered()
            return
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        for key, o in offsets.items():
            if self._to_store.get(key, -1) <= o:
                self._to_store.pop(key, None)
        try:
            self._consumer.store_offsets(offsets=tps)
        except KafkaException as exc:
            log.info("could not store offsets %s: %s", tps, exc)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._auto_store:
            self._store_delivered()
        else:  # the caller has not made these durable: its new owner reads them again
            revoked = {(tp.topic, tp.partition) for tp in partitions}
            for key in revoked & self._to_store.keys():
                del self._to_store[key]
        try:
            consumer.commit(asynchronous=False)
        except KafkaException as exc:
            log.debug("commit on revoke: %s", exc)
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        if self._buffer:
            self._buffer = collections.deque(
                m for m in self._buffer if (m.topic(), m.partition()) not in revoked
            )

    # -- delivery ------------------------------------------------------------------
    def _fetch(self, max_messages: int, timeout: float) -> None:
        """Fill the internal buffer with up to ``max_messages`` raw messages."""
        deadline = time.monotonic() + timeout
        while not self._buffer:
            self._raise_pending_error()
            remaining = deadline - time.monotonic()
            msgs = self._consumer.consume(
                num_messages=max(1, max_messages), timeout=max(0.0, min(remaining, 1.0))
            )
            if self._outage_since is not None:
                self._raise_pending_error()  # outage errors queued so far come before "back"
            self._outage_check(bool(msgs))
            for msg in msgs:
                err = msg.error()
                if err is None:
                    self._buffer.append(msg)
                elif err.code() == RdKafkaError._PARTITION_EOF:
                    continue
                else:
                    raise self._client.translate(err, topic=msg.topic(),
                                                 partition=msg.partition())
            if time.monotonic() >= deadline:
                self._raise_pending_error()
                return

    def _reject(self, msg: confluent_kafka.Message, exc: DecodeError) -> None:
        """Deliver an undecodable message as its error: dead-letter it, then raise or skip.

        The dead-letter entry is durable before the message counts as delivered; if it
        cannot be written, :class:`DeadLetterError` is raised and the message comes again.
        """
        if self._dead_letter is not None:
            try:
                self._dead_letter.write(msg.value(), msg.key(), exc)
            except DeadLetterError:
                self._buffer.appendleft(msg)  # the next call tries again
                raise
        self._mark_delivered(msg)  # the error is its delivery: it is not raised forever
        if self._on_error == "raise":
            raise exc
        log.warning("skipped undecodable message: %s", exc)

    def _next_message(self, want: int, deadline: float, *,
                      have: bool = False) -> confluent_kafka.Message | None:
        """The next buffered message, left in the buffer (fetching up to ``want`` at a
        time until ``deadline``), or None if none came in time. A caller that already
        ``has`` alerts to hand out gets None as soon as the deadline passed; one with
        none fetches at least once (``timeout=0`` still takes what is there)."""
        while not self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 and have:
                return None
            self._fetch(want, max(0.0, min(remaining, 3600.0)))
            if not self._buffer and time.monotonic() >= deadline:
                return None
        return self._buffer[0]

    def _take_run(self, want: int) -> tuple[list[confluent_kafka.Message], list[bytes],
                                            codec.Reader, Any] | None:
        """The longest run (at most ``want``) at the head of the (non-empty) buffer of
        bare schemaless values sharing one key and one topic, hence one reader
        (:meth:`fink_client.wire.Decoder.schemaless_reader`): the messages, their values,
        the reader and the schema, resolved once for the run. The messages stay in the
        buffer. ``None`` when the head message is not such a value (a container, a
        Confluent-framed or empty value, an unknown or bad schema): the caller then
        takes it alone, and gets its canonical error if it has one."""
        head = self._buffer[0]
        value, key, topic = head.value(), head.key(), head.topic()
        if not value:
            return None
        try:
            found = self._decoder.schemaless_reader(value, key, topic)
        except SchemaError:
            return None
        if found is None:
            return None
        run, values = [head], [value]
        # bytes equality (memcmp) rather than hashing the key (schema JSON) per message
        for msg in itertools.islice(self._buffer, 1, want):
            value = msg.value()
            if (not value or value.startswith(CONTAINER_MAGIC) or msg.key() != key
                    or msg.topic() != topic):
                break
            run.append(msg)
            values.append(value)
        return run, values, found[0], found[1]

    @staticmethod
    def _decode_run(reader: codec.Reader, values: list[bytes],
                    raw: bool) -> list[Alert | None] | None:
        """Every value of a run decoded (``raw``: only validated, giving ``None`` each),
        in one call into the C decoder when it is built; ``None`` if any value is bad
        (the caller then takes the run message by message, to say which)."""
        try:
            if raw:
                check = codec.validator(reader)
                for value in values:
                    check(value)
                return [None] * len(values)
            many = getattr(reader, "decode_many", None)
            return many(values) if many is not None else [reader(v) for v in values]
        except Exception:
            return None

    def _deliver(self, num_alerts: int, timeout: float, fetch: int | None = None, *,
                 raw: bool = False, pairs: bool = False) -> list[Any]:
        """The delivery loop of :meth:`poll`, :meth:`consume` and
        :meth:`consume_messages`: up to ``num_alerts`` decoded (``raw``: validated)
        alerts within ``timeout`` s, fetched ``fetch`` messages at a time (default: as
        many as still wanted), as :class:`Delivery` items (``pairs``: ``(topic, alert)``).

        Runs of messages with one reader (:meth:`_take_run`) are decoded in one call and
        their offsets recorded once per partition; a run holding a bad value is taken
        again message by message, the good alerts first and the bad one as its error."""
        self._check_open()
        wait = _config.seconds(timeout, "timeout", forever_below_zero=True)
        if self._auto_store:
            self._store_delivered()
        deadline = time.monotonic() + wait
        out: list[Any] = []
        single = 0  # messages still to take one at a time (a run of them had a bad value)
        while len(out) < num_alerts:
            msg = self._next_message(fetch or num_alerts - len(out), deadline, have=bool(out))
            if msg is None:
                break
            if single:
                single -= 1
            else:
                taken = self._take_run(num_alerts - len(out))
                if taken is not None:
                    run, values, reader, schema = taken
                    alerts = self._decode_run(reader, values, raw)
                    if alerts is not None:
                        for _ in run:
                            self._buffer.popleft()
                        self._mark_run(run)
                        out += _handed(run, alerts, schema, pairs)
                        continue
                    single = len(run) - 1
            try:
                alert, schema = self._decoder.decode_with_schema(
                    msg.value(), msg.key(), topic=msg.topic(), partition=msg.partition(),
                    offset=msg.offset(), validate_only=raw)
            except DecodeError as exc:
                if out:  # hand out the good alerts first; this error comes next call
                    break
                self._buffer.popleft()
                self._reject(msg, exc)
                continue
            self._buffer.popleft()
            out += _handed([msg], [alert], schema, pairs)
            self._mark_delivered(msg)
        return out

    def poll(self, timeout: float = -1) -> tuple[str, Alert] | tuple[None, None]:
        """Next alert as ``(topic, alert)``, or ``(None, None)`` if none came in ``timeout`` s.

        ``timeout=-1`` waits indefinitely (as in confluent-kafka).
        """
        got = self._deliver(1, timeout, fetch=500, pairs=True)
        return got[0] if got else (None, None)

    def consume(self, num_alerts: int = 1, timeout: float = -1) -> list[tuple[str, Alert]]:
        """Up to ``num_alerts`` (1 to :data:`MAX_BATCH`) alerts as ``(topic, alert)`` pairs,
        waiting at most ``timeout`` s (negative: indefinitely; NaN is a :class:`ConfigError`).

        Returns what arrived in time (possibly an empty list). If a message cannot be
        decoded, the alerts before it are returned and the next call raises its error.
        """
        self._check_open()
        return self._deliver(_config.num_alerts(num_alerts), timeout, pairs=True)

    def consume_messages(self, num_alerts: int = 1, timeout: float = -1, *,
                         raw: bool = False) -> list[Delivery]:
        """As :meth:`consume`, but each alert comes as a :class:`Delivery` that also
        gives its partition, offset, timestamp and raw key (for sinks and lag display).

        ``raw=True`` (sinks that copy the bytes: Avro pass-through): a schemaless value
        is only validated, not decoded, and its Delivery has ``alert=None`` (its
        ``value`` is the record's Avro encoding); other wire formats are decoded.
        """
        self._check_open()
        return self._deliver(_config.num_alerts(num_alerts), timeout, raw=raw)

    def consume_arrow(self, num_alerts: int = 1000, timeout: float = -1) -> pa.RecordBatch | None:
        """Up to ``num_alerts`` alerts as one ``pyarrow.RecordBatch`` built from the Avro
        bytes (in C when built), or ``None`` if none came within ``timeout`` s.

        A batch holds one topic and one schema (it ends early where they change); its
        Arrow schema is :func:`fink_client.io.arrow.avro_to_arrow_schema`'s, with the
        topic in the metadata key ``fink.topic``. Offsets and errors as :meth:`consume`.
        See :mod:`fink_client.arrowbatch`.
        """
        from fink_client.arrowbatch import consume_arrow

        return consume_arrow(self, num_alerts, timeout)

    def __iter__(self) -> Iterator[tuple[str, Alert]]:
        """Iterate over alerts forever (until ``close()`` or KeyboardInterrupt).

        An alert is processed when the loop asks for the next one: an exception in the
        loop body leaves it to be delivered again (unless ``close()`` is then called).
        """
        while not self._closed:
            got = self.poll(1.0)
            if got[0] is not None:
                yield got

    # -- lifecycle -----------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise AlertError("this AlertConsumer is closed")

    def commit(self) -> None:
        """Commit now the offsets of every alert already handed out (synchronously)."""
        self._check_open()
        self._store_delivered()
        try:
            self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            err = exc.args[0]
            if err.code() != RdKafkaError._NO_OFFSET:
                raise self._client.translate(err) from None

    def close(self) -> None:
        """Commit the offsets of the alerts handed out, and leave the group. Idempotent.

        Calling ``close()`` says the alerts of the last call were processed (see the
        exception rule in the module docstring).
        """
        self._close(store_last=self._auto_store)

    def _close(self, *, store_last: bool) -> None:
        """Leave the group; store the last call's alerts only if ``store_last``.

        Alerts of earlier calls were stored when the caller came back for more, and
        librdkafka commits those on close either way.
        """
        if self._closed:
            return
        self._closed = True
        if store_last:
            self._store_delivered()
        else:  # not processed: the group gets them again after a restart
            self._to_store.clear()
        try:
            self._consumer.close()  # commits stored offsets (auto-commit is on)
        except (KafkaException, RuntimeError) as exc:
            log.warning("error while closing the consumer: %s", exc)

    def __enter__(self) -> AlertConsumer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        # The exception rule: leaving the block by an exception (KeyboardInterrupt
        # included) does not count as processing the alerts of the last call.
        self._close(store_last=self._auto_store and exc_type is None)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (f"AlertConsumer(topics={self.topics!r}, group_id={self._group!r}, "
                f"servers={self._servers!r}, {state})")

    def __del__(self) -> None:
        # Best effort: never leave a consumer in the group. Garbage collection is not a
        # sign that the last alerts were processed: they are not stored.
        try:
            if not self._closed:
                self._close(store_last=False)
        except Exception:
            pass


def _handed(run: list[confluent_kafka.Message], alerts: list[Alert | None], schema: Any,
            pairs: bool) -> list[Any]:
    """What :meth:`AlertConsumer._deliver` hands out for messages of one topic and their
    alerts: ``(topic, alert)`` pairs (``pairs``; always decoded then), or Deliveries."""
    if pairs:
        topic = run[0].topic()
        return [(topic, alert) for alert in alerts]
    out = []
    for msg, alert in zip(run, alerts, strict=True):
        ts_type, ts = msg.timestamp()
        out.append(Delivery(*_position(msg),
                            ts if ts_type != confluent_kafka.TIMESTAMP_NOT_AVAILABLE else None,
                            msg.key(), alert, msg.value(), schema))
    return out


def _position(msg: confluent_kafka.Message) -> tuple[str, int, int]:
    """Topic, partition and offset of a fetched message.

    confluent-kafka types them optional because an error event may lack them; a message
    without error (the only kind buffered for delivery) always has all three.
    """
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    assert topic is not None and partition is not None and offset is not None, msg
    return topic, partition, offset


def _topic_list(topics: Any) -> list[str]:
    """``topics`` as a list of names, or :class:`ConfigError` (patterns checked too)."""
    if isinstance(topics, str):
        topics = [topics]
    if not isinstance(topics, Iterable):
        raise ConfigError(f"topics must be a topic name or a list of them, not {topics!r}",
                          field="topics")
    topics = list(topics)
    if not topics or not all(isinstance(t, str) and t for t in topics):
        raise ConfigError(f"topics must be a non-empty list of topic names, not {topics!r}",
                          field="topics")
    for name in topics:
        if name.startswith("^"):
            try:
                re.compile(name)
            except re.error as exc:
                raise ConfigError(f"topic pattern {name!r} is not a valid regular expression: "
                                  f"{exc}", field="topics") from None
    return topics
