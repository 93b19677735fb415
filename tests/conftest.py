"""Shared pytest fixtures: one real Kafka broker per session (see fink_client.localkafka).

Fixtures:

* ``kafka`` (session): a running :class:`~fink_client.localkafka.LocalKafka` with users
  ``alice`` (may READ/DESCRIBE every topic and use every group) and ``bob`` (no ACL at
  all); ``kafka.users`` maps them to their passwords. Stopped at the end of the session.
* ``topic``: a fresh, uniquely named topic (``t-<8 hex>``) on that broker.
* ``alice_config`` / ``bob_config``: functions ``(group_id) -> dict`` giving an
  AlertConsumer-style config (``username``, ``password``, ``group_id``,
  ``bootstrap.servers``) for that user.

Tests using ``kafka`` are marked ``integration`` automatically. When Java or Maven is
missing they *fail* with the install hint (``bin/bootstrap.sh`` installs both): a
skipped integration test would hide a broken set-up.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fink_client.errors import BrokerError
from fink_client.localkafka import LocalKafka
from fink_client.localkafka.jars import ensure_jars

USERS = {"alice": "alice-secret", "bob": "bob-secret"}


def sasl_config(kafka: LocalKafka, user: str, group_id: str | None = None) -> dict[str, Any]:
    """AlertConsumer-style config for ``user`` on the broker's SASL/SCRAM listener."""
    return {
        "username": user,
        "password": kafka.users[user],
        "group_id": group_id or f"g-{uuid.uuid4().hex[:8]}",
        "bootstrap.servers": kafka.bootstrap_servers,
    }


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the broker as ``integration`` (select with -m)."""
    for item in items:
        if "kafka" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka() -> Iterator[LocalKafka]:
    """One Kafka broker for the whole test session, with users alice and bob."""
    ensure_jars()  # raises BrokerError saying what to install if java/mvn are missing
    broker = LocalKafka(users=USERS)
    broker.start()
    try:
        broker.allow("alice", topics=["*"], groups=["*"])
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def topic(kafka: LocalKafka) -> Iterator[str]:
    """A fresh single-partition topic, deleted after the test."""
    name = kafka.create_topic(f"t-{uuid.uuid4().hex[:8]}")
    yield name
    if kafka.running:  # a test may have stopped or restarted the broker
        with contextlib.suppress(BrokerError):
            kafka.delete_topic(name, timeout=10)


@pytest.fixture
def alice_config(kafka: LocalKafka) -> Callable[[str], dict[str, Any]]:
    """Function ``(group_id) -> config`` for alice (allowed everywhere)."""
    return lambda group_id: sasl_config(kafka, "alice", group_id)


@pytest.fixture
def bob_config(kafka: LocalKafka) -> Callable[[str], dict[str, Any]]:
    """Function ``(group_id) -> config`` for bob (authenticated, but no ACL at all)."""
    return lambda group_id: sasl_config(kafka, "bob", group_id)
