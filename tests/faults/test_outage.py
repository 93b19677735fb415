"""Broker outage: stop the broker mid-stream, restart it on the same log folder.

A dedicated :class:`LocalKafka` (not the session one) with a kept log dir is stopped
while an API consumer is reading, left down for a while, then started again on the
same data and ports. The consumer must wait (no exception), report the outage with a
WARNING when the brokers go down and another when they are back, resume, and deliver
every alert: those published before, and those published after the restart.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid

import pytest

from fink_client.consumer import AlertConsumer
from fink_client.localkafka import LocalKafka
from tests.faults.helpers import encode_all, publish_spread, unique_alerts, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.integration]

BEFORE, AFTER = 3000, 1000
DOWN_S = 8.0


def _diagnose(kafka: LocalKafka) -> str:
    """What a failure needs to be understood: is the user listener up, what did the
    broker log."""
    host, port = kafka.bootstrap_servers.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        sasl = "accepts connections"
    except OSError as exc:
        sasl = f"refuses connections ({exc})"
    log_file = kafka.log_dir / "logs" / "server.log"
    tail = log_file.read_text(errors="replace").splitlines()[-15:] if log_file.exists() else []
    return f"SASL listener {kafka.bootstrap_servers} {sasl}; broker log tail:\n" + "\n".join(tail)


def test_consumer_waits_reports_and_resumes_after_outage(tmp_path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="fink_client")
    alerts = list(encode_all(unique_alerts(BEFORE + AFTER)))
    with LocalKafka(users={"alice": "alice-secret"}, log_dir=tmp_path / "kafka") as kafka:
        kafka.allow("alice", topics=["*"], groups=["*"])
        topic = kafka.create_topic(f"outage-{uuid.uuid4().hex[:8]}", partitions=2)
        publish_spread(alerts[:BEFORE], topic, kafka.admin_servers, 2)
        config = {"username": "alice", "password": "alice-secret",
                  "group_id": f"g-{uuid.uuid4().hex[:8]}",
                  "bootstrap.servers": kafka.bootstrap_servers,
                  "reconnect.backoff.max.ms": 1000}
        got: list[int] = []
        outage: dict[str, float] = {}
        failures: list[BaseException] = []

        def consume_all() -> None:
            # The consumer runs in a thread: the broker JVM must be started from the main
            # thread (LocalKafka ties the JVM's life to the thread that launched it).
            try:
                with AlertConsumer([topic], config) as consumer:
                    deadline = time.monotonic() + 150
                    while len(set(got)) < BEFORE + AFTER and time.monotonic() < deadline:
                        for _t, alert in consumer.consume(num_alerts=100, timeout=1):
                            got.append(alert["candid"])
                            if "down" not in outage:
                                time.sleep(0.0005)  # slow: the outage must hit mid-stream
            except BaseException as exc:
                failures.append(exc)

        reader = threading.Thread(target=consume_all, daemon=True)
        reader.start()
        assert wait_for(lambda: len(got) >= BEFORE // 3 or not reader.is_alive(), 60)
        outage["at_count"] = len(got)
        kafka.stop()  # log dir given: data and ports are kept
        outage["down"] = time.monotonic()
        time.sleep(DOWN_S)
        kafka.start()
        outage["up"] = time.monotonic()
        publish_spread(alerts[BEFORE:], topic, kafka.admin_servers, 2)
        reader.join(timeout=170)
        assert not failures, f"the consumer raised during the outage: {failures[0]!r}"
        assert "up" in outage, "the broker did not come back"
        assert outage["at_count"] < BEFORE, "the outage did not happen mid-stream"
        assert set(got) == set(range(1, BEFORE + AFTER + 1)), (
            f"lost {BEFORE + AFTER - len(set(got))} alerts; {_diagnose(kafka)}")
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        down = [w for w in warnings if "lost the connection" in w]
        back = [w for w in warnings if "reachable again" in w]
        assert down, f"no outage warning; warnings were: {warnings}"
        assert back, f"no recovery warning; warnings were: {warnings}"
        assert warnings.index(down[0]) < warnings.index(back[0])
        print(f"\n[faults] outage: {DOWN_S:.0f} s down after {outage['at_count']} alerts; "
              f"published {BEFORE + AFTER}, delivered {len(got)}, "
              f"duplicates {len(got) - len(set(got))}")
