"""Configuration of the embedded broker: ports, ``server.properties``, SCRAM, client configs.

Pure rendering, no process and no network (except binding probe sockets to pick free
ports): what :mod:`fink_client.localkafka.lifecycle` starts the JVM with, and the
confluent-kafka configs that reach it.
"""

from __future__ import annotations

import base64
import logging
import random
import socket
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fink_client.config import SASL_MECHANISM, sasl_settings
from fink_client.errors import BrokerError

#: SCRAM mechanism used by Fink's servers and by this broker (one definition, in
#: :mod:`fink_client.config`).
SCRAM_MECHANISM = SASL_MECHANISM
SCRAM_ITERATIONS = 8192

#: Super user with a SCRAM credential on the SASL listener (its password is random).
ADMIN_USER = "admin"

#: The broker's listeners: admin (anonymous super user), users (SCRAM), KRaft controller.
LISTENERS = ("PLAINTEXT", "SASL_PLAINTEXT", "CONTROLLER")

# Kafka's loggers to the file <log_dir>/logs/server.log, never to the terminal.
LOG4J2_XML = """\
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <RollingFile name="file" fileName="${sys:kafka.logs.dir}/server.log"
                 filePattern="${sys:kafka.logs.dir}/server.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="20 MB"/></Policies>
      <DefaultRolloverStrategy max="2"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Logger name="org.apache.kafka.storage.internals.log" level="WARN"/>
    <Root level="INFO"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
"""


# ---------------------------------------------------------------------------- ports
def ephemeral_range() -> tuple[int, int]:
    """The kernel's range of automatically assigned client ports (Linux; else a default)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1, *outside* the ephemeral port range.

    A broker restarted on the same ports must find them free. A port from the ephemeral
    range can meanwhile become the source port of a client's connection, or a client
    reconnecting to a stopped broker can even connect to itself (TCP self-connect) and
    hold it; ports below that range are never assigned to clients by the kernel.
    """
    low, _ = ephemeral_range()
    lo, hi = 20000, low - 1
    if hi - lo < 100 * count:  # unusual kernel settings: fall back to any free port
        lo, hi = 0, 0
    rng = random.SystemRandom()
    socks: list[socket.socket] = []
    try:
        for _ in range(200):
            if len(socks) == count:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", rng.randint(lo, hi) if hi else 0))
            except OSError:
                s.close()
                continue
            socks.append(s)
        if len(socks) < count:
            raise BrokerError(f"could not find {count} free ports on 127.0.0.1")
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def pick_ports() -> dict[str, int]:
    """Fresh free ports for every listener (see :func:`free_ports`)."""
    return dict(zip(LISTENERS, free_ports(len(LISTENERS)), strict=True))


def ports_from_config(log_dir: Path) -> dict[str, int]:
    """Listener ports recorded in ``<log_dir>/server.properties`` ({} if none)."""
    try:
        lines = (log_dir / "server.properties").read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        if line.startswith("listeners="):
            ports = {}
            for url in line.partition("=")[2].split(","):
                name, _, hostport = url.partition("://")
                ports[name] = int(hostport.rpartition(":")[2])
            if set(LISTENERS) <= ports.keys():
                return ports
    return {}


# ---------------------------------------------------------------------------- broker files
def server_properties(ports: Mapping[str, int], data_dir: Path) -> dict[str, str]:
    """The broker's ``server.properties``: KRaft single node, SCRAM listener, real ACLs."""
    p = ports
    listeners = (
        f"PLAINTEXT://127.0.0.1:{p['PLAINTEXT']},"
        f"SASL_PLAINTEXT://127.0.0.1:{p['SASL_PLAINTEXT']},"
        f"CONTROLLER://127.0.0.1:{p['CONTROLLER']}"
    )
    scram_jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    return {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{p['CONTROLLER']}",
        "controller.listener.names": "CONTROLLER",
        "listeners": listeners,
        "advertised.listeners": (
            f"PLAINTEXT://127.0.0.1:{p['PLAINTEXT']},"
            f"SASL_PLAINTEXT://127.0.0.1:{p['SASL_PLAINTEXT']}"
        ),
        "listener.security.protocol.map": (
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT"
        ),
        "inter.broker.listener.name": "PLAINTEXT",
        "sasl.enabled.mechanisms": SCRAM_MECHANISM,
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": scram_jaas,
        # Real ACLs. Anonymous = PLAINTEXT/CONTROLLER listeners (admin, the broker itself).
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:ANONYMOUS;User:{ADMIN_USER}",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "delete.topic.enable": "true",
        # Fink alerts with cutouts can exceed the 1 MB default.
        "message.max.bytes": "10485760",
        # A small footprint: few threads, no idle work.
        "num.network.threads": "2",
        "num.io.threads": "2",
        "background.threads": "2",
        "num.recovery.threads.per.data.dir": "1",
        "log.cleaner.threads": "1",
        "log.cleaner.dedupe.buffer.size": "8388608",
    }


def write_config(log_dir: Path, ports: Mapping[str, int]) -> None:
    """Write ``server.properties`` and ``log4j2.xml`` into ``log_dir`` (data in ``data/``)."""
    props = server_properties(ports, log_dir / "data")
    (log_dir / "server.properties").write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    (log_dir / "log4j2.xml").write_text(LOG4J2_XML)
    (log_dir / "logs").mkdir(exist_ok=True)


def jvm_flags(log_dir: Path) -> list[str]:
    """JVM system properties shared by the storage tool and the broker (logging, headless)."""
    return [
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log_dir / 'log4j2.xml'}",
        f"-Dkafka.logs.dir={log_dir / 'logs'}",
    ]


def cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding.

    Ids starting with '-' are redrawn: the storage tool would read them as an option.
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


# ---------------------------------------------------------------------------- SCRAM users
def scram_literal_ok(text: str) -> bool:
    """True if ``text`` can be given to the storage tool's ``--add-scram`` as it is."""
    # `--add-scram` parses `name=...,password="..."`; keep it to values it cannot misread.
    return bool(text) and not any(c in text for c in '"[]\\\n')


def format_scram_args(users: Mapping[str, str]) -> list[str]:
    """``--add-scram`` arguments of the storage tool for the users it can carry.

    The others (see :func:`scram_literal_ok`) are added through the admin API once the
    broker runs. NB: these put passwords on a short-lived command line: test users only.
    """
    args: list[str] = []
    for name, password in users.items():
        if scram_literal_ok(name) and scram_literal_ok(password):
            args += [
                "--add-scram",
                f'{SCRAM_MECHANISM}=[name="{name}",iterations={SCRAM_ITERATIONS},'
                f'password="{password}"]',
            ]
    return args


# ---------------------------------------------------------------------------- clients
def admin_client_config(admin_servers: str, fast: bool = False) -> dict[str, Any]:
    """confluent-kafka config on the PLAINTEXT (super user) listener; ``fast`` reconnects
    quickly (readiness probe)."""
    conf: dict[str, Any] = {
        "bootstrap.servers": admin_servers,
        "logger": logging.getLogger("fink_client.localkafka.rdkafka"),
    }
    if fast:
        conf.update({"reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 200})
    return conf


def user_client_config(servers: str, user: str, password: str) -> dict[str, Any]:
    """confluent-kafka config for ``user`` on the SASL_PLAINTEXT (SCRAM-SHA-512) listener."""
    return {"bootstrap.servers": servers, **sasl_settings(user, password)}
