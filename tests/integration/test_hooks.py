"""fink_client.hooks against the embedded broker: real subprocesses, a real HTTP server.

Every alert reaches its hook; a failing hook is retried, then dead-lettered, and offsets
are stored accordingly; a hook that raises without a dead-letter folder stops the run and
a restart with the same group gets again every alert whose hook had not succeeded.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer

import fink_client
from fink_client import schemas
from fink_client.consumer import Delivery
from fink_client.errors import ConfigError
from fink_client.hooks import (
    CallableHook,
    ExecHook,
    HookError,
    HookRunner,
    Template,
    WebhookHook,
    run_hooks,
)
from fink_client.io.jsonlines import decode_alert
from fink_client.offsets import OffsetsClient
from fink_client.testing import assert_alerts_equal
from tests.helpers import SAMPLES, publish, source_alerts, unique_group
from tests.hookhelpers import WebhookServer, read_log, write_script

FINK = SAMPLES / "ztf" / "fink"
RAW = SAMPLES / "ztf" / "raw"
LSST = SAMPLES / "lsst" / "fink-7.4"


@pytest.fixture
def script_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The hook script and where it writes (through the environment it inherits)."""
    paths = {"log": tmp_path / "log.jsonl", "tries": tmp_path / "tries.txt"}
    monkeypatch.setenv("HOOK_LOG", str(paths["log"]))
    monkeypatch.setenv("HOOK_TRIES", str(paths["tries"]))
    monkeypatch.delenv("HOOK_FAIL", raising=False)
    paths["cmd"] = [sys.executable, str(write_script(tmp_path))]
    return paths


def _tries(path: Path) -> list[int]:
    return [int(x.split()[0]) for x in path.read_text().splitlines()] if path.exists() else []


def _dead_alert(folder: Path, name: str) -> dict:
    """The alert kept in a dead-letter entry: the raw Kafka value (decoded with its key)
    when deliveries carry it, else the alert's JSON line."""
    value = (folder / f"{name}.value").read_bytes()
    if "value" in Delivery._fields:
        return fink_client.decode(value, (folder / f"{name}.key").read_bytes())
    return json.loads(value)


def _schema_of(path: Path) -> dict:
    return schemas.load_file(next(iter(sorted(path.glob("*.avro")))))


def test_exec_hook_gets_every_alert_as_json_lines(kafka, topic, alice_config,
                                                  script_env) -> None:
    n = publish(kafka, topic, FINK, RAW)
    cfg = alice_config(unique_group())
    runner = run_hooks([topic], cfg, ExecHook(script_env["cmd"]), limit=n)
    assert runner.succeeded == n and runner.dead_lettered == 0 and runner.attempts == n
    log = read_log(script_env["log"])
    assert [r["offset"] for r in log] == list(range(n))
    # The alert on stdin is the package's JSON-lines encoding: it decodes back exactly.
    expected = source_alerts(FINK, RAW)
    fink_schema, raw_schema = _schema_of(FINK), _schema_of(RAW)
    for record in log:
        want = expected[record["id"]]
        schema = fink_schema if "cdsxmatch" in want else raw_schema
        assert_alerts_equal(decode_alert(json.loads(record["line"]), schema), want)
    # Everything was committed: a restart with the same group gets nothing.
    again = run_hooks([topic], cfg, ExecHook(script_env["cmd"]), idle_timeout=3)
    assert again.succeeded == 0 and len(read_log(script_env["log"])) == n


def test_failing_exec_hook_is_retried_then_dead_lettered(kafka, topic, alice_config,
                                                         script_env, tmp_path,
                                                         monkeypatch) -> None:
    n = publish(kafka, topic, FINK, RAW)
    monkeypatch.setenv("HOOK_FAIL", "2,5")
    cfg = alice_config(unique_group())
    dead = tmp_path / "dead"
    runner = run_hooks([topic], cfg, ExecHook(script_env["cmd"]), limit=n, retries=2,
                       backoff=0.05, dead_letter=dead)
    assert runner.succeeded == n - 2 and runner.dead_lettered == 2
    tries = _tries(script_env["tries"])
    assert tries.count(2) == tries.count(5) == 3  # 1 try + 2 retries each
    assert [r["offset"] for r in read_log(script_env["log"])] == [0, 1, 3, 4, 6, 7]
    for offset in (2, 5):
        meta = json.loads((dead / f"{topic}-0-{offset}.json").read_text())
        assert meta["error"] == "HookError" and meta["offset"] == offset
        assert "exit status 3" in meta["reason"] and "hook refuses" in meta["reason"]
        assert "after 3 tries" in meta["reason"]
        kept = _dead_alert(dead, f"{topic}-0-{offset}")
        assert kept["candid"] in source_alerts(FINK, RAW)
    # Dead-lettered alerts are durable: their offsets were stored and committed too.
    monkeypatch.delenv("HOOK_FAIL")
    again = run_hooks([topic], cfg, ExecHook(script_env["cmd"]), idle_timeout=3)
    assert again.succeeded == 0


def test_batch_exec_hook(kafka, topic, alice_config, script_env) -> None:
    n = publish(kafka, topic, FINK, RAW, LSST)
    runner = run_hooks([topic], alice_config(unique_group()),
                       ExecHook(script_env["cmd"], batch=True), limit=n, batch_size=3)
    log = read_log(script_env["log"])
    assert [r["offset"] for r in log] == list(range(n)) and runner.succeeded == n
    assert max(r["n"] for r in log) <= 3 and len(_tries(script_env["tries"])) < n


def test_hook_exception_stops_and_restart_gets_the_rest(kafka, topic, alice_config) -> None:
    n = publish(kafka, topic, FINK, RAW)
    order = list(source_alerts(FINK, RAW))  # candids in offset order
    cfg = alice_config(unique_group())
    seen: list[int] = []

    def flaky(topic_: str, alert: dict) -> None:
        if alert["candid"] == order[3]:
            raise RuntimeError("my filter crashed")
        seen.append(alert["candid"])

    with pytest.raises(HookError, match="my filter crashed") as info:
        run_hooks([topic], cfg, CallableHook(flaky), limit=n, retries=1, backoff=0.01)
    assert info.value.offset == 3 and info.value.topic == topic
    assert seen == order[:3]
    # Restart with the same group: every alert whose hook had not succeeded comes again.
    again: list[int] = []
    run_hooks([topic], cfg, CallableHook(lambda t, a: again.append(a["candid"])),
              limit=n - 3)
    assert again == order[3:]


def test_webhook_retries_server_errors_and_renders_the_template(kafka, topic,
                                                                alice_config) -> None:
    n = publish(kafka, topic, FINK)
    with WebhookServer(fail_first=2) as server:
        hook = WebhookHook(server.url, template="{objectId} {fink_class} mag={mag:.2f}")
        runner = run_hooks([topic], alice_config(unique_group()), hook, limit=n, backoff=0.05)
    assert runner.succeeded == n and runner.dead_lettered == 0
    assert len(server.requests) == n + 2  # the first alert was tried 3 times
    texts = [r["text"] for r in server.accepted]
    assert texts[0] == "ZTF18abvcdqu RRLyr mag=18.03"
    assert len(set(texts)) == n
    body = server.accepted[0]
    assert body["topic"] == topic and body["offset"] == 0 and body["survey"] == "ztf"
    assert body["objectId"] == "ZTF18abvcdqu" and body["band"] == "g"


def test_webhook_lsst_summary_and_dead_letters(kafka, topic, alice_config, tmp_path) -> None:
    n = publish(kafka, topic, LSST)
    dead = tmp_path / "dead"
    with WebhookServer(refuse=("58804293150441529",), refuse_status=404) as server:
        hook = WebhookHook(server.url, template="{alertId} {band} {flux:.0f} nJy {time}")
        runner = run_hooks([topic], alice_config(unique_group()), hook, limit=n,
                           dead_letter=dead, backoff=0.05)
    assert runner.succeeded == n - 1 and runner.dead_lettered == 1
    assert len(server.requests) == n  # a 404 is not retried
    first = server.accepted[0]
    assert first["survey"] == "lsst" and first["text"].endswith("2025-04-11 20:03:15")
    assert first["flux"] < 0 and first["mag"] is None
    [meta] = [json.loads(p.read_text()) for p in dead.glob("*.json")]
    assert "HTTP 404" in meta["reason"] and "not retried" in meta["reason"]
    assert "s3cr3t" not in meta["reason"]  # the URL's secret path is never shown


# -- pure logic of the runner (no broker) -------------------------------------------------
def _delivery(offset: int) -> Delivery:
    return Delivery("t", 0, offset, None, None, {"candid": offset})


def test_runner_queue_is_bounded_and_offsets_follow_completion() -> None:
    gate = threading.Event()
    hook = CallableHook(lambda t, a: gate.wait(10))
    runner = HookRunner(hook, queue_size=2)
    feeder = threading.Thread(target=runner.submit, args=([_delivery(i) for i in range(10)],))
    feeder.start()
    time.sleep(0.5)
    assert feeder.is_alive()  # 1 in the hook + 2 queued: the producer waits
    assert runner._queue.qsize() == 2 and runner.completed() == {}
    gate.set()
    feeder.join(10)
    assert runner.wait(10) and runner.completed() == {("t", 0): 10}
    runner.close()


def test_template_checks_fields() -> None:
    with pytest.raises(ConfigError, match=r"unknown field \{magnitude\}"):
        Template("{objectId} {magnitude}")
    t = Template("{objectId} mag={mag:.1f} {fink_class}")
    assert t.render({"objectId": 7, "mag": None}) == "7 mag=- -"
    assert t.render({"objectId": "ZTF1", "mag": 18.25, "fink_class": "SN"}) == "ZTF1 mag=18.2 SN"
    with pytest.raises(ConfigError, match="http"):
        WebhookHook("ftp://example.org/x")


def test_undecodable_message_is_dead_lettered_and_stored(kafka, topic, alice_config,
                                                         script_env, tmp_path) -> None:
    n = publish(kafka, topic, FINK)
    producer = Producer({"bootstrap.servers": kafka.admin_servers})
    producer.produce(topic, value=b"not an alert", key=b"not a schema")  # the last offset
    producer.flush(10)
    cfg = alice_config(unique_group())
    dead = tmp_path / "dead"
    runner = run_hooks([topic], cfg, ExecHook(script_env["cmd"]), idle_timeout=4,
                       dead_letter=dead)
    assert runner.succeeded == n and (dead / f"{topic}-0-{n}.value").read_bytes() == \
        b"not an alert"
    # The poison message is durable in the dead-letter folder: its offset was committed.
    oc = OffsetsClient(cfg)
    try:
        [row] = oc.describe([topic])
    finally:
        oc.close()
    assert row.committed == n + 1


def test_failed_dead_letter_write_stores_nothing(tmp_path: Path) -> None:
    def fail(topic: str, alert: dict) -> None:
        raise ValueError("bad alert")

    dead = tmp_path / "dead"
    runner = HookRunner(CallableHook(fail), retries=0, dead_letter=dead)
    dead.rmdir()
    dead.write_text("a file where the folder was")  # every write into it fails
    runner.submit([_delivery(0), _delivery(1)])
    assert runner.wait(10)
    assert isinstance(runner.error, HookError) and "cannot keep" in runner.error.reason
    assert runner.error.offset == 0 and runner.completed() == {}  # offset 0 comes again
    with pytest.raises(HookError):
        runner.check()
    runner.close()
