"""User configuration -> librdkafka configuration.

Users write the short keys of the seed API (``username``, ``password``, ``group_id``,
``bootstrap.servers``); everything else is passed to librdkafka unchanged, and
librdkafka itself is the authority on which of those keys exist (an unknown key is
reported as a :class:`ConfigError` naming it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fink_client.errors import ConfigError

#: Default bootstrap servers of Fink's public streams, per survey. Override them with
#: ``bootstrap.servers`` in the config. Only ZTF's address is public and stable;
#: Rubin/LSST users get their server with their Fink account.
DEFAULT_SERVERS: dict[str, str] = {
    "ztf": "kafka-ztf.fink-broker.org:24499",
}
DEFAULT_SURVEY = "ztf"

#: SASL mechanism used by Fink's servers when a username and password are given.
SASL_MECHANISM = "SCRAM-SHA-512"

#: Seconds to wait for the broker(s) when connecting, before raising
#: :class:`BrokerUnreachableError`. Set ``connect_timeout`` in the config to change it.
DEFAULT_CONNECT_TIMEOUT = 15.0

#: Keys that fink-client understands itself (they never reach librdkafka).
FINK_KEYS = frozenset({"username", "password", "group_id", "survey", "connect_timeout"})

#: librdkafka defaults that fink-client changes, and why.
CLIENT_DEFAULTS: dict[str, Any] = {
    # Fink's streams are read from the start of what the group has not seen.
    "auto.offset.reset": "earliest",
    # At-least-once: offsets are *stored* by us only once an alert has been handed to
    # the caller, and auto-commit then commits only stored offsets, periodically.
    "enable.auto.commit": True,
    "enable.auto.offset.store": False,
    "auto.commit.interval.ms": 5000,
    # Alerts are ~50-200 KB; fetch in large chunks for throughput.
    "fetch.max.bytes": 64 * 1024 * 1024,
    "max.partition.fetch.bytes": 16 * 1024 * 1024,
    # A 64 MB prefetch queue is as fast as 256 MB (benchmarks/) at a third of the RSS,
    # provided the fetcher resumes quickly once the queue drains (librdkafka waits
    # 1000 ms by default, which halves throughput).
    "queued.max.messages.kbytes": 64 * 1024,
    "fetch.queue.backoff.ms": 20,
}


def _require_str(cfg: Mapping[str, Any], key: str) -> str | None:
    value = cfg.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"config key {key!r} must be a non-empty string", field=key)
    return value


def kafka_config(user_config: Mapping[str, Any]) -> dict[str, Any]:
    """Translate a fink-client config into a confluent-kafka consumer config.

    Raises :class:`ConfigError` for a missing ``group_id``, a username without a
    password (or the reverse), or a non-string value where a string is needed.
    """
    if not isinstance(user_config, Mapping):
        raise ConfigError(f"config must be a dict, not {type(user_config).__name__}")
    cfg = dict(user_config)
    group_id = _require_str(cfg, "group_id") or _require_str(cfg, "group.id")
    if not group_id:
        raise ConfigError(
            "config needs a 'group_id': the consumer group under which Fink remembers "
            "which alerts you have already received",
            field="group_id",
        )
    username = _require_str(cfg, "username")
    password = cfg.get("password")
    if (username is None) != (password is None):
        missing = "password" if password is None else "username"
        raise ConfigError(
            f"config has a {'username' if username else 'password'} but no {missing}: "
            "give both (or neither, for a server without authentication)",
            field=missing,
        )
    survey = str(cfg.get("survey", DEFAULT_SURVEY)).lower()
    servers = _require_str(cfg, "bootstrap.servers")
    if servers is None:
        if survey not in DEFAULT_SERVERS:
            raise ConfigError(
                f"no default server for survey {survey!r}: set 'bootstrap.servers' "
                f"(known defaults: {', '.join(f'{k}={v}' for k, v in DEFAULT_SERVERS.items())})",
                field="bootstrap.servers",
            )
        servers = DEFAULT_SERVERS[survey]

    out: dict[str, Any] = dict(CLIENT_DEFAULTS)
    out["bootstrap.servers"] = servers
    out["group.id"] = group_id
    if username is not None:
        out.update(
            {
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanisms": SASL_MECHANISM,
                "sasl.username": username,
                "sasl.password": str(password),
            }
        )
    for key, value in cfg.items():
        if key in FINK_KEYS or key in ("group.id", "bootstrap.servers"):
            continue
        out[key] = value  # librdkafka key: passed through unchanged
    return out


def seconds(value: Any, name: str, *, forever_below_zero: bool = False) -> float:
    """``value`` as a finite number of seconds > 0, else :class:`ConfigError` naming ``name``.

    NaN and infinity are refused (a NaN deadline never passes: it would hang). With
    ``forever_below_zero`` (``poll``/``consume`` timeouts) ``None`` or a negative value
    means "wait indefinitely" (``inf``) and 0 means "do not wait".
    """
    if forever_below_zero and value is None:
        return math.inf
    try:
        if isinstance(value, bool):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number of seconds, not {value!r}",
                          field=name) from None
    if forever_below_zero and number < 0:
        return math.inf
    if not math.isfinite(number) or number < 0 or (number == 0 and not forever_below_zero):
        allowed = ">= 0 (or negative to wait indefinitely)" if forever_below_zero else "> 0"
        raise ConfigError(f"{name} must be a finite number of seconds {allowed}, not {value!r}",
                          field=name)
    return number


#: Largest ``num_alerts`` of one ``consume`` call (confluent-kafka's own limit).
MAX_BATCH = 1_000_000


def num_alerts(value: Any) -> int:
    """``value`` if it is an integer from 1 to :data:`MAX_BATCH`, else :class:`ConfigError`."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_BATCH:
        raise ConfigError(f"num_alerts must be an integer from 1 to {MAX_BATCH:,}, not "
                          f"{value!r}", field="num_alerts")
    return value


def connect_timeout(user_config: Mapping[str, Any]) -> float:
    """Seconds to wait for the broker, from ``connect_timeout`` in the user config."""
    return seconds(user_config.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT),
                   "connect_timeout")


#: librdkafka properties whose *value* is a secret (password, private key, token). They
#: are the properties librdkafka flags ``_RK_SENSITIVE`` (rdkafka_conf.c) minus those
#: whose value is not itself secret (``sasl.username``, ``ssl.key.location``: a path,
#: ``ssl.ca.pem``: a public certificate), plus the OIDC client secret. Never put them on
#: a command line (they would show in the process list).
SECRET_KEYS = frozenset({
    "sasl.password",
    "sasl.oauthbearer.config",
    "sasl.oauthbearer.client.secret",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl_key",
    "ssl.keystore.password",
})


def is_secret_key(key: str) -> bool:
    """True when the value of config key ``key`` is a secret (see :data:`SECRET_KEYS`)."""
    k = key.strip().lower()
    return k in SECRET_KEYS or "password" in k or "secret" in k


def redact(config: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of a config with every secret replaced by ``'***'`` (for logs and repr)."""
    return {
        k: ("***" if is_secret_key(k) or "ssl.key" in k.lower() else v)
        for k, v in config.items()
    }
