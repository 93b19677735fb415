"""User configuration -> librdkafka configuration.

Users write the short keys of the seed API (``username``, ``password``, ``group_id``,
``bootstrap.servers``, ``survey``); everything else is passed to librdkafka unchanged, and
librdkafka itself is the authority on which of those keys exist (an unknown key is
reported as a :class:`ConfigError` naming it).

Upstream fink-client's spellings are accepted as they are (docs/migrating.md):
``"group.id"`` is the same thing as ``group_id`` (the Kafka consumer group, under which
the broker remembers what was read), so it is taken without a deprecation warning; giving
both with different values is a :class:`ConfigError`. Upstream's ``survey=`` keyword of
``AlertConsumer`` is the ``survey`` key here (:func:`with_survey`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fink_client.errors import ConfigError

#: Surveys whose Fink streams this client reads (``survey`` in the config).
SURVEYS = ("ztf", "lsst")

#: Default bootstrap servers of Fink's public streams, per survey, used when the config
#: has no ``bootstrap.servers``. Only ZTF's address is public and stable; Rubin/LSST
#: users get their server with their Fink account, so ``survey="lsst"`` without
#: ``bootstrap.servers`` is a :class:`ConfigError` saying so.
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


def _group_id(cfg: Mapping[str, Any]) -> str | None:
    """The consumer group, from ``group_id`` or upstream's ``group.id`` (same meaning)."""
    ours, theirs = _require_str(cfg, "group_id"), _require_str(cfg, "group.id")
    if ours and theirs and ours != theirs:
        raise ConfigError(
            f"config gives two consumer groups, group_id={ours!r} and group.id={theirs!r}: "
            "they are the same setting, keep one (group_id)",
            field="group.id",
        )
    return ours or theirs


def survey_of(cfg: Mapping[str, Any]) -> str:
    """The config's ``survey`` (lower case, one of :data:`SURVEYS`), ZTF by default."""
    value = cfg.get("survey", DEFAULT_SURVEY)
    survey = value.strip().lower() if isinstance(value, str) else None
    if survey not in SURVEYS:
        raise ConfigError(f"unknown survey {value!r}: choose one of {', '.join(SURVEYS)}",
                          field="survey")
    return survey


def with_survey(user_config: Mapping[str, Any], survey: str | None) -> dict[str, Any]:
    """Copy of ``user_config`` with upstream's ``survey=`` keyword as its ``survey`` key.

    ``None`` leaves the config as it is; a ``survey`` key that says otherwise is a
    :class:`ConfigError` (which one would be meant is not for us to guess).
    """
    if not isinstance(user_config, Mapping):
        raise ConfigError(f"config must be a dict, not {type(user_config).__name__}")
    out = dict(user_config)
    if survey is None:
        return out
    given = out.get("survey")
    if given is not None and survey_of(out) != survey_of({"survey": survey}):
        raise ConfigError(f"survey={survey!r} but the config says survey={given!r}: "
                          "give it once", field="survey")
    out["survey"] = survey
    return out


def kafka_config(user_config: Mapping[str, Any]) -> dict[str, Any]:
    """Translate a fink-client config into a confluent-kafka consumer config.

    Raises :class:`ConfigError` for a missing ``group_id``, a username without a
    password (or the reverse), or a non-string value where a string is needed.
    """
    if not isinstance(user_config, Mapping):
        raise ConfigError(f"config must be a dict, not {type(user_config).__name__}")
    cfg = dict(user_config)
    group_id = _group_id(cfg)
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
    survey = survey_of(cfg)
    servers = _require_str(cfg, "bootstrap.servers")
    if servers is None:
        if survey not in DEFAULT_SERVERS:
            raise ConfigError(
                f"no default server for survey {survey!r}: set 'bootstrap.servers' to the "
                f"server given with your Fink {survey.upper()} account (public defaults: "
                f"{', '.join(f'{k}={v}' for k, v in DEFAULT_SERVERS.items())})",
                field="bootstrap.servers",
            )
        servers = DEFAULT_SERVERS[survey]

    out: dict[str, Any] = dict(CLIENT_DEFAULTS)
    out["bootstrap.servers"] = servers
    out["group.id"] = group_id
    if username is not None:
        out.update(sasl_settings(username, password))
    for key, value in cfg.items():
        if key in FINK_KEYS or key in ("group.id", "bootstrap.servers"):
            continue
        out[key] = value  # librdkafka key: passed through unchanged
    return out


def sasl_settings(username: str, password: Any) -> dict[str, str]:
    """librdkafka keys of Fink's authentication (SASL_PLAINTEXT, :data:`SASL_MECHANISM`),
    for consumers, producers and the embedded broker's users alike."""
    return {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": SASL_MECHANISM,
        "sasl.username": username,
        "sasl.password": str(password),
    }


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
