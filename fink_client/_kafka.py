"""Internal: the one place where fink-client sets up a librdkafka client.

Every Kafka client of the package (the :class:`~fink_client.consumer.AlertConsumer`, the
offsets client, the replay producer, the schema readers) is a :class:`Client`: a
confluent-kafka ``Consumer`` or ``Producer`` built from a librdkafka config, whose
asynchronous errors (``error_cb``: authentication failures arrive only that way) are
collected, drained and raised as the typed errors of :mod:`fink_client.errors`; blocking
calls are retried until a deadline (:meth:`Client.retry`), so an unreachable broker is a
:class:`BrokerUnreachableError` within the connect timeout, never a hang.

Also here: the producer config from a user config (the consumer's is
:func:`fink_client.config.kafka_config`; both take Fink's SASL settings from
:func:`fink_client.config.sasl_settings`), the metadata check of a topic, and the read of
the first message of a topic by assignment (nothing joins a group, nothing is committed).
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

import confluent_kafka
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka import KafkaError as RdKafkaError

from fink_client import config as _config
from fink_client.errors import (
    AlertError,
    AuthenticationError,
    BrokerUnreachableError,
    ConfigError,
    UnknownTopicError,
    translate_kafka_error,
)

#: Logger of librdkafka's own log lines (quiet unless the application asks).
LIBRDKAFKA_LOGGER = "fink_client.librdkafka"


def set_log_verbosity(verbose: int) -> None:
    """The one rule for a command's log output (``finkctl`` and its transfer workers):
    warnings by default, info with ``-v``, debug with ``-vv``; librdkafka's own lines
    (retries, auth failures: noisy, one per attempt) only with ``-v`` (warnings) or
    ``-vv`` (everything)."""
    logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger(LIBRDKAFKA_LOGGER).setLevel(
        logging.DEBUG if verbose >= 2 else logging.WARNING if verbose else logging.CRITICAL)

#: Failures of a blocking call that a retry may cure (the broker is slow, down or moving).
RETRIABLE = frozenset({
    RdKafkaError._TIMED_OUT, RdKafkaError._TRANSPORT, RdKafkaError._ALL_BROKERS_DOWN,
    RdKafkaError._WAIT_COORD, RdKafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    RdKafkaError.NOT_COORDINATOR, RdKafkaError.COORDINATOR_NOT_AVAILABLE,
})

_UNKNOWN_TOPIC = frozenset({
    RdKafkaError.UNKNOWN_TOPIC_OR_PART, RdKafkaError._UNKNOWN_TOPIC,
    RdKafkaError._UNKNOWN_PARTITION,
})

K = TypeVar("K", Consumer, Producer)


def producer_config(user_config: Mapping[str, Any]) -> dict[str, Any]:
    """confluent-kafka producer config from a fink-style config.

    ``bootstrap.servers`` is required; ``username``/``password`` switch to Fink's SASL
    settings; the consumer-only fink keys are dropped; other keys pass through.
    """
    cfg = dict(user_config)
    if not cfg.get("bootstrap.servers"):
        raise ConfigError("'bootstrap.servers' is required to publish", field="bootstrap.servers")
    out: dict[str, Any] = {
        "linger.ms": 20,
        "message.max.bytes": 16 * 1024 * 1024,
        "compression.type": "none",
    }
    username, password = cfg.pop("username", None), cfg.pop("password", None)
    for key in _config.FINK_KEYS:
        cfg.pop(key, None)
    if username is not None:
        out.update(_config.sasl_settings(username, password))
    out.update(cfg)
    return out


def config_error(exc: KafkaException) -> ConfigError:
    """The :class:`ConfigError` of a client librdkafka refused to create."""
    err = exc.args[0] if exc.args else None
    text = err.str() if isinstance(err, RdKafkaError) else str(exc)
    if "No such configuration property" in text:
        key = text.split('"')[1] if '"' in text else text
        return ConfigError(
            f"unknown config key {key!r}: it is neither a fink-client key "
            f"({', '.join(sorted(_config.FINK_KEYS))}) nor a librdkafka property",
            field=key,
        )
    return ConfigError(f"invalid Kafka configuration: {text}")


class Client(Generic[K]):
    """A confluent-kafka client with its asynchronous errors collected and typed.

    ``kind`` is ``Consumer`` or ``Producer``; ``kafka_config`` a librdkafka config (a
    user's own ``error_cb`` still gets every error; librdkafka's log lines go to
    :data:`LIBRDKAFKA_LOGGER` unless a ``logger`` is given). ``timeout`` bounds
    :meth:`retry`. ``on_transient`` is called with each error :meth:`raise_pending`
    drains without raising (the consumer watches them for outages).
    """

    def __init__(
        self,
        kind: type[K],
        kafka_config: Mapping[str, Any],
        *,
        timeout: float,
        on_transient: Callable[[confluent_kafka.KafkaError], None] | None = None,
    ) -> None:
        kcfg = dict(kafka_config)
        self.servers: str = str(kcfg.get("bootstrap.servers"))
        self.group: str | None = kcfg.get("group.id")
        self.timeout = timeout
        self._on_transient = on_transient
        self.errors: collections.deque[confluent_kafka.KafkaError] = collections.deque(
            maxlen=50)
        user_error_cb = kcfg.pop("error_cb", None)

        def on_error(err: confluent_kafka.KafkaError) -> None:
            self.errors.append(err)
            if user_error_cb is not None:
                user_error_cb(err)

        kcfg["error_cb"] = on_error
        kcfg.setdefault("logger", logging.getLogger(LIBRDKAFKA_LOGGER))
        try:
            self.kafka: K = kind(kcfg)
        except KafkaException as exc:
            raise config_error(exc) from None

    def translate(self, err: confluent_kafka.KafkaError, *, topic: str | None = None,
                  partition: int | None = None) -> AlertError:
        """``err`` as the typed error of this client's servers and group."""
        return translate_kafka_error(err, servers=self.servers, topic=topic,
                                     partition=partition, group=self.group)

    def checked(self, tps: Iterable[TopicPartition]) -> list[TopicPartition]:
        """``tps`` as a librdkafka call returned them (``committed``, ``commit``,
        ``offsets_for_times``), or the typed error of the first partition that failed."""
        out = list(tps)
        for tp in out:
            if tp.error is not None:
                raise self.translate(tp.error, topic=tp.topic, partition=tp.partition)
        return out

    def raise_pending(self, *, serve: bool = False) -> None:
        """Raise the first fatal error (authentication, or librdkafka-fatal) reported so
        far; the others go to ``on_transient``. ``serve`` first runs ``poll(0)``, which
        calls ``error_cb`` (only for clients whose poll hands out no message: a
        subscribed consumer's errors are served by its ``consume``)."""
        if serve:
            self.kafka.poll(0)
        while self.errors:
            err = self.errors.popleft()
            typed = self.translate(err)
            if isinstance(typed, AuthenticationError) or err.fatal():
                raise typed
            if self._on_transient is not None:
                self._on_transient(err)

    def retry(self, what: str, fn: Callable[..., Any], *args: Any, hint: str = "",
              **kw: Any) -> Any:
        """``fn(*args, timeout=..., **kw)`` retried until it answers or :attr:`timeout`
        seconds passed (then :class:`BrokerUnreachableError` saying ``what`` was being
        done, and ``hint``); errors a retry cannot cure are raised typed at once."""
        deadline = time.monotonic() + self.timeout
        while True:
            self.raise_pending(serve=True)
            remaining = deadline - time.monotonic()
            try:
                return fn(*args, timeout=max(0.1, min(remaining, 1.0)), **kw)
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                self.raise_pending(serve=True)
                if isinstance(err, RdKafkaError) and err.code() not in RETRIABLE:
                    raise self.translate(err) from None
                if time.monotonic() >= deadline:
                    raise BrokerUnreachableError(
                        f"no answer from the Kafka broker(s) {self.servers} within "
                        f"{self.timeout:g} s while {what}; check `bootstrap.servers`, your "
                        f"network and that the server is up{hint}"
                    ) from None
                time.sleep(0.1)

    def close(self) -> None:
        """Close a consumer (a producer has nothing to close: it is released when
        dropped, after its caller flushed it)."""
        if isinstance(self.kafka, Consumer):
            self.kafka.close()


def consumer(kafka_config: Mapping[str, Any], *, timeout: float,
             on_transient: Callable[[confluent_kafka.KafkaError], None] | None = None,
             ) -> Client[Consumer]:
    """A :class:`Client` around a ``Consumer`` that commits nothing by itself."""
    return Client(Consumer, {**kafka_config, "enable.auto.commit": False}, timeout=timeout,
                  on_transient=on_transient)


def check_topic_metadata(
    md: Any, name: str, *, available: Callable[[], Iterable[str]], servers: str,
    group: str | None = None,
) -> Any:
    """Return the metadata of topic ``name`` from ``md``, or raise its typed error.

    A missing topic raises :class:`UnknownTopicError` listing ``available()`` topics;
    a topic-level error (e.g. not authorised) raises the error it translates to.
    """
    tmd = md.topics.get(name)
    err = tmd.error if tmd is not None else None
    if err is not None and err.code() not in _UNKNOWN_TOPIC:
        raise translate_kafka_error(err, servers=servers, topic=name, group=group)
    if tmd is None or err is not None or not tmd.partitions:
        names = sorted(available())
        raise UnknownTopicError(
            f"topic {name!r} does not exist; available: "
            f"{', '.join(names) if names else '(none readable)'}",
            topic=name,
        )
    return tmd


def is_unknown_topic(err: confluent_kafka.KafkaError | None) -> bool:
    """True for the errors librdkafka gives a topic that does not exist."""
    return err is not None and err.code() in _UNKNOWN_TOPIC


def first_message(
    client: Client[Consumer], topic: str, partitions: Iterable[int], timeout: float
) -> confluent_kafka.Message | None:
    """The first message of ``partitions`` of ``topic`` read from their beginning by
    assignment (no group join, no commit), or ``None`` if none came within ``timeout``
    seconds. Errors a retry cannot cure (not authorised, fatal) are raised typed."""
    client.kafka.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = client.kafka.poll(0.5)
        if msg is None:
            continue
        err = msg.error()
        if err is None:
            return msg
        if err.fatal() or not err.retriable():
            raise client.translate(err, topic=topic, partition=msg.partition())
    return None


__all__ = [
    "LIBRDKAFKA_LOGGER",
    "RETRIABLE",
    "Client",
    "check_topic_metadata",
    "config_error",
    "consumer",
    "first_message",
    "is_unknown_topic",
    "producer_config",
    "set_log_verbosity",
]
