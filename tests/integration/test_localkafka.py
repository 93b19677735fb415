"""The embedded Kafka broker: start, SCRAM users, ACLs, restart, stop, ``finkctl broker``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from fink_client.errors import BrokerError
from fink_client.localkafka import DEMO_PASSWORD, DEMO_USER, LocalKafka, stop_pid
from tests.helpers import SAMPLES

pytestmark = pytest.mark.integration


def _produce(conf: dict[str, Any], topic: str, values: list[bytes]) -> None:
    producer = Producer(conf)
    for i, value in enumerate(values):
        producer.produce(topic, value=value, key=str(i).encode())
    assert producer.flush(15) == 0, "messages not delivered"


def _consume(conf: dict[str, Any], topic: str, count: int, timeout: float = 20.0) -> list[Any]:
    """Consume up to ``count`` messages (or errors) from ``topic`` with a fresh group."""
    consumer = Consumer(
        {"group.id": f"g-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest", **conf}
    )
    consumer.subscribe([topic])
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                got.append(msg.error())
                break
            got.append(msg.value())
    finally:
        consumer.close()
    return got


def _gone(pid: int) -> bool:
    """No such process, or only a zombie awaiting its reaper (the JVM has exited)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# ---------------------------------------------------------------- on the session broker
def test_broker_runs_and_creates_topics(kafka: LocalKafka, topic: str) -> None:
    assert kafka.running
    assert kafka.bootstrap_servers != kafka.admin_servers
    assert (kafka.log_dir / "logs" / "server.log").stat().st_size > 0  # logs go to the file
    name = kafka.create_topic(f"multi-{uuid.uuid4().hex[:8]}", 3, {"retention.ms": "60000"})
    meta = kafka.admin().list_topics(timeout=10).topics
    assert topic in meta
    assert len(meta[name].partitions) == 3
    kafka.delete_topic(name)
    assert name not in kafka.admin().list_topics(timeout=10).topics


def test_alice_round_trip_over_sasl(kafka: LocalKafka, topic: str) -> None:
    values = [f"alert-{i}".encode() for i in range(5)]
    _produce(kafka.client_config(), topic, values)
    conf = kafka.client_config("alice")
    assert conf["security.protocol"] == "SASL_PLAINTEXT"
    assert conf["sasl.mechanisms"] == "SCRAM-SHA-512"
    assert _consume(conf, topic, len(values)) == values


def test_alice_config_fixture(alice_config: Any, kafka: LocalKafka) -> None:
    conf = alice_config("my-group")
    assert conf == {
        "username": "alice",
        "password": "alice-secret",
        "group_id": "my-group",
        "bootstrap.servers": kafka.bootstrap_servers,
    }


def test_bob_without_acl_is_refused(kafka: LocalKafka, topic: str) -> None:
    _produce(kafka.client_config(), topic, [b"secret"])
    bob = kafka.client_config("bob")
    # Metadata for the topic: TOPIC_AUTHORIZATION_FAILED.
    probe = Consumer({**bob, "group.id": "probe"})
    try:
        err = probe.list_topics(topic, timeout=10).topics[topic].error
    finally:
        probe.close()
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # Consuming with a group: bob has no group ACL either, which the broker reports first.
    [got] = _consume(bob, topic, 1)
    assert isinstance(got, KafkaError)
    assert got.code() in (
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
    )


def test_runtime_user_with_group_acl_only_gets_topic_authorization_failed(
    kafka: LocalKafka, topic: str
) -> None:
    name = f"carol-{uuid.uuid4().hex[:6]}"
    kafka.add_user(name, "carol-secret")
    kafka.allow(name, groups=["*"])
    [got] = _consume(kafka.client_config(name), topic, 1)
    assert isinstance(got, KafkaError)
    assert got.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # A prefixed topic ACL then lets the same user read.
    _produce(kafka.client_config(), topic, [b"now-allowed"])
    kafka.allow(name, topics=[topic[:4]], prefixed=True)
    assert _consume(kafka.client_config(name), topic, 1) == [b"now-allowed"]


def test_wrong_password_is_an_authentication_error(kafka: LocalKafka, topic: str) -> None:
    errors: list[KafkaError] = []
    conf = {**kafka.client_config("alice", "not-the-password"), "error_cb": errors.append}
    consumer = Consumer({**conf, "group.id": "g-wrong"})
    consumer.subscribe([topic])
    deadline = time.monotonic() + 15
    try:
        while not errors and time.monotonic() < deadline:
            consumer.poll(0.2)
    finally:
        consumer.close()
    assert errors, "no error reported for a wrong password"
    assert errors[0].code() == KafkaError._AUTHENTICATION


# ---------------------------------------------------------------- own brokers
def test_restart_keeps_data_and_stop_leaves_no_jvm(tmp_path: Path) -> None:
    broker = LocalKafka(users={"alice": "alice-secret"}, heap="256m")
    began = time.monotonic()
    broker.start()
    start_seconds = time.monotonic() - began
    try:
        assert start_seconds < 30, f"start took {start_seconds:.1f} s"
        broker.allow("alice", topics=["*"], groups=["*"])
        broker.create_topic("kept")
        _produce(broker.client_config(), "kept", [b"a", b"b"])
        # Commit an offset as a group, as a consumer would before an outage.
        group = Consumer({**broker.client_config("alice"), "group.id": "outage"})
        group.commit(offsets=[TopicPartition("kept", 0, 1)], asynchronous=False)
        group.close()

        ports, log_dir, old_pid = broker.ports, broker.log_dir, broker.pid
        broker.restart()
        assert broker.pid != old_pid and _gone(old_pid)
        assert broker.ports == ports and broker.log_dir == log_dir
        assert _consume(broker.client_config("alice"), "kept", 2) == [b"a", b"b"]
        group = Consumer({**broker.client_config("alice"), "group.id": "outage"})
        [committed] = group.committed([TopicPartition("kept", 0)], timeout=10)
        group.close()
        assert committed.offset == 1
    finally:
        pid = broker.pid
        broker.stop()
    assert not broker.running
    assert pid is not None and not psutil.pid_exists(pid)  # reaped, not even a zombie
    assert not log_dir.exists()  # temporary log dir removed
    broker.stop()  # idempotent


def test_jvm_death_during_start_reports_the_log(tmp_path: Path) -> None:
    broker = LocalKafka(log_dir=tmp_path / "kafka", heap="1k")  # JVM refuses this heap
    with pytest.raises(BrokerError, match="exited during start") as info:
        broker.start(timeout=30)
    assert "heap" in str(info.value).lower()
    assert not broker.running


# ---------------------------------------------------------------- finkctl broker
# `finkctl` run in a subprocess; "broker" is appended to the dispatcher's list if missing.
_FINKCTL = (
    "import sys; from fink_client.cli import main as m; "
    "m.SUBCOMMANDS = tuple(dict.fromkeys((*m.SUBCOMMANDS, 'broker'))); "
    "sys.exit(m.main(sys.argv[1:]))"
)


def _finkctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _FINKCTL, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_finkctl_broker_start_status_stop(tmp_path: Path) -> None:
    state_dir = str(tmp_path / "broker")
    started = _finkctl("broker", "start", "--json", "--state-dir", state_dir)
    state_file = tmp_path / "broker" / "state.json"
    try:
        assert started.returncode == 0, started.stderr
        info = json.loads(started.stdout)
        pid = info["pid"]
        assert info["username"] == DEMO_USER and info["password"] == DEMO_PASSWORD
        assert psutil.Process(pid).is_running() and not _gone(pid)  # outlived the command
        assert state_file.stat().st_mode & 0o077 == 0

        again = _finkctl("broker", "start", "--json", "--state-dir", state_dir)
        assert again.returncode == 0 and json.loads(again.stdout)["pid"] == pid

        status = _finkctl("broker", "status", "--state-dir", state_dir)
        assert status.returncode == 0 and info["bootstrap_servers"] in status.stdout

        # The demo user can read any topic with any group.
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": info["admin_servers"]})
        admin.create_topics([NewTopic("demo", 1, 1)])["demo"].result(15)
        _produce({"bootstrap.servers": info["admin_servers"]}, "demo", [b"x"])
        demo = {
            "bootstrap.servers": info["bootstrap_servers"],
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "SCRAM-SHA-512",
            "sasl.username": DEMO_USER,
            "sasl.password": DEMO_PASSWORD,
        }
        assert _consume(demo, "demo", 1) == [b"x"]

        # `finkctl replay` without --servers finds this broker by its state (the state
        # folder is <FINK_CLIENT_CACHE>/broker) and publishes to it.
        sample = sorted((SAMPLES / "ztf" / "fink").rglob("*.avro"))[0]
        cache_env = {**os.environ, "FINK_CLIENT_CACHE": str(tmp_path)}
        replayed = _finkctl("replay", str(sample), "--topic", "demo", "--json", env=cache_env)
        assert replayed.returncode == 0, replayed.stderr
        assert json.loads(replayed.stdout)["published"] == 1
        assert len(_consume(demo, "demo", 2)) == 2

        stopped = _finkctl("broker", "stop", "--state-dir", state_dir)
        assert stopped.returncode == 0, stopped.stderr
        assert _gone(pid)
        assert not state_file.exists()
        assert _finkctl("broker", "status", "--state-dir", state_dir).returncode == 1
        assert _finkctl("broker", "stop", "--state-dir", state_dir).returncode == 1
    finally:  # never leave a detached JVM behind, whatever failed above
        if state_file.exists():
            stop_pid(json.loads(state_file.read_text())["pid"])


def test_finkctl_broker_refuses_a_dead_pid(tmp_path: Path) -> None:
    state_dir = tmp_path / "broker"
    state_dir.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (state_dir / "state.json").write_text(json.dumps({"pid": dead.pid}))
    result = _finkctl("broker", "status", "--state-dir", str(state_dir))
    assert result.returncode == 1
    assert "not running" in result.stderr and str(dead.pid) in result.stderr
    assert not (state_dir / "state.json").exists()  # stale state cleaned


def test_broker_started_from_a_thread_outlives_that_thread() -> None:
    """The JVM's parent-death signal is tied to the process, not to the starting thread."""
    import threading

    broker = LocalKafka()
    t = threading.Thread(target=broker.start)
    t.start()
    t.join()
    try:
        time.sleep(2)  # the starting thread is gone: the JVM must still be serving
        assert broker.running
        assert broker.admin().list_topics(timeout=10).brokers
    finally:
        broker.stop()
    assert not broker.running


def test_ports_are_outside_the_ephemeral_range(kafka) -> None:
    """Client connections can never take the ports a restarted broker needs again."""
    from fink_client.localkafka.config import ephemeral_range

    low, high = ephemeral_range()
    assert kafka.ports and all(not low <= port <= high for port in kafka.ports.values())
