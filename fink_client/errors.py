"""Typed errors of fink-client.

Every error the library raises on purpose is an :class:`AlertError`. Subclasses say
*what* went wrong; attributes say *where* (topic, partition, offset, file, field) so
that a caller can log it, skip the message, or dead-letter it without parsing text.
Messages end with what the user can do about it.
"""

from __future__ import annotations

from typing import Any, TypedDict


class MessagePlace(TypedDict, total=False):
    """Where a Kafka message is: the keywords a decoder passes on to its errors."""

    topic: str | None
    partition: int | None
    offset: int | None


class AlertError(Exception):
    """Base class of every error raised by fink-client.

    Attributes ``topic``, ``partition``, ``offset``, ``path`` and ``field`` locate the
    problem when they are known (``None`` otherwise).
    """

    def __init__(
        self,
        message: str,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
        path: str | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = message
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.path = path
        self.field = field
        super().__init__(self._render())

    def location(self) -> str:
        """Human readable location, e.g. ``topic 'rrlyr' partition 0 offset 12``."""
        parts = []
        if self.path is not None:
            parts.append(f"file '{self.path}'")
        if self.topic is not None:
            parts.append(f"topic '{self.topic}'")
        if self.partition is not None:
            parts.append(f"partition {self.partition}")
        if self.offset is not None:
            parts.append(f"offset {self.offset}")
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        return " ".join(parts)

    def _render(self) -> str:
        where = self.location()
        return f"{self.reason} ({where})" if where else self.reason

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep the keyword attributes when errors cross process boundaries.
        return (_rebuild, (type(self), self.reason, self.__dict__.copy()))


def _rebuild(cls: type[AlertError], message: str, state: dict[str, Any]) -> AlertError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    Exception.__init__(err, err._render())
    return err


class ConfigError(AlertError, ValueError):
    """The user configuration is invalid (missing group id, unknown key, bad value)."""


class CredentialsError(ConfigError):
    """The credentials file is missing, unreadable or too widely readable."""


class AuthenticationError(AlertError):
    """The broker refused the username/password (SASL authentication failed)."""


class AuthorizationError(AlertError):
    """The user is authenticated but not allowed to read a topic or use a group."""


class TopicAuthorizationError(AuthorizationError):
    """No READ permission on a topic."""


class GroupAuthorizationError(AuthorizationError):
    """No permission on the consumer group."""


class UnknownTopicError(AlertError):
    """A subscribed topic does not exist on the broker."""


class BrokerUnreachableError(AlertError):
    """No broker could be reached within the allotted time."""


class KafkaError(AlertError):
    """Any other error reported by the Kafka client, with librdkafka's code name."""

    def __init__(self, message: str, *, code: str | None = None, **where: Any) -> None:
        self.code = code
        super().__init__(message, **where)


class SchemaError(AlertError):
    """A schema could not be found, fetched or parsed."""


class DecodeError(AlertError):
    """A payload could not be decoded into an alert.

    ``raw_value`` and ``raw_key`` keep the undecodable bytes so that callers can
    dead-letter them; they are never included in the message text.
    """

    def __init__(
        self,
        message: str,
        *,
        raw_value: bytes | None = None,
        raw_key: bytes | None = None,
        **where: Any,
    ) -> None:
        self.raw_value = raw_value
        self.raw_key = raw_key
        super().__init__(message, **where)


class DeadLetterError(AlertError):
    """An undecodable message could not be kept in the dead-letter folder (disk full,
    folder not writable). The message was not marked delivered: it comes again.
    ``path`` is the folder; topic/partition/offset name the message.
    """


class FileFormatError(AlertError):
    """An alert file (Avro, Parquet, JSON) is corrupt or of an unknown format."""


class BrokerError(AlertError):
    """The embedded broker (fink_client.localkafka) could not be set up or started."""


# -- librdkafka errors -> typed errors -----------------------------------------------------
# librdkafka error names (``KafkaError.name()``, stable across versions) grouped by the
# typed error they become; matching by name keeps this module free of confluent-kafka.
_AUTH_NAMES = frozenset({"_AUTHENTICATION", "SASL_AUTHENTICATION_FAILED"})
_TOPIC_AUTH_NAMES = frozenset({"TOPIC_AUTHORIZATION_FAILED"})
_GROUP_AUTH_NAMES = frozenset({"GROUP_AUTHORIZATION_FAILED"})
_UNKNOWN_TOPIC_NAMES = frozenset({"UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC", "_UNKNOWN_PARTITION"})
_DOWN_NAMES = frozenset({"_ALL_BROKERS_DOWN", "_TRANSPORT", "_RESOLVE"})


def translate_kafka_error(
    err: Any, *, servers: str = "", topic: str | None = None,
    partition: int | None = None, group: str | None = None
) -> AlertError:
    """Map a librdkafka error (a ``confluent_kafka.KafkaError``) to the typed error that
    says what to do; ``servers``, ``topic``, ``partition`` and ``group`` say where."""
    name = err.name()
    text = err.str()
    if name in _AUTH_NAMES or "authentication" in text.lower():
        return AuthenticationError(
            f"authentication failed on {servers}: check the username/password registered "
            "with `finkctl auth` (or given in the config)",
        )
    if name in _TOPIC_AUTH_NAMES:
        return TopicAuthorizationError(
            f"not authorised to read topic {topic!r}: ask the Fink team for access, or "
            "check the topic name with `finkctl topics`",
            topic=topic,
            partition=partition,
        )
    if name in _GROUP_AUTH_NAMES:
        return GroupAuthorizationError(
            f"not authorised to use consumer group {group!r}: use the group_id you "
            "registered with Fink",
            field="group_id",
        )
    if name in _UNKNOWN_TOPIC_NAMES:
        return UnknownTopicError(
            f"topic {topic!r} does not exist (check its name with `finkctl topics`)",
            topic=topic,
            partition=partition,
        )
    if name in _DOWN_NAMES:
        return BrokerUnreachableError(
            f"cannot reach the Kafka broker(s) {servers}: {text}; check `bootstrap.servers` "
            "and your network",
        )
    return KafkaError(f"Kafka error {name}: {text}", code=name, topic=topic,
                      partition=partition)


__all__ = [
    "AlertError",
    "AuthenticationError",
    "AuthorizationError",
    "BrokerError",
    "BrokerUnreachableError",
    "ConfigError",
    "CredentialsError",
    "DeadLetterError",
    "DecodeError",
    "FileFormatError",
    "GroupAuthorizationError",
    "KafkaError",
    "SchemaError",
    "TopicAuthorizationError",
    "UnknownTopicError",
    "translate_kafka_error",
]
