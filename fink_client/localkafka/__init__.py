"""Embedded single-node Apache Kafka 4.x broker (KRaft) for tests and the local demo.

``LocalKafka`` starts a real broker from Maven Central jars (fetched once by
:func:`ensure_jars`) with SCRAM-SHA-512 users and ACLs, like Fink's servers. Inside:
``broker`` (``LocalKafka``), ``config`` (ports, server.properties, SCRAM, client configs),
``lifecycle`` (the JVM process), ``admin`` (topics, users, ACLs), ``jars``, ``process``.
"""

from __future__ import annotations

from fink_client.localkafka.broker import LocalKafka
from fink_client.localkafka.config import ADMIN_USER, SCRAM_MECHANISM
from fink_client.localkafka.jars import KAFKA_VERSION, cache_root, ensure_jars
from fink_client.localkafka.process import pid_alive, pid_is_kafka, stop_pid

#: Demo user created by ``finkctl broker start``. These credentials are public and only
#: meant for the local demo broker, which listens on 127.0.0.1 only: never reuse them.
DEMO_USER = "fink-demo"
DEMO_PASSWORD = "fink-demo-password"

__all__ = [
    "ADMIN_USER",
    "DEMO_PASSWORD",
    "DEMO_USER",
    "KAFKA_VERSION",
    "SCRAM_MECHANISM",
    "LocalKafka",
    "cache_root",
    "ensure_jars",
    "pid_alive",
    "pid_is_kafka",
    "stop_pid",
]
