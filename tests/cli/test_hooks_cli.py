"""``finkctl stream --exec/--webhook`` as real subprocesses on the embedded broker,
including ``kill -9`` mid-run and a restart with the same group."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.cli.test_finkctl import finkctl
from tests.helpers import FINKCTL, SAMPLES, publish, source_alerts
from tests.hookhelpers import WebhookServer, read_log, write_script

pytestmark = pytest.mark.integration

FINK = SAMPLES / "ztf" / "fink"
RAW = SAMPLES / "ztf" / "raw"
LSST = SAMPLES / "lsst" / "fink-7.4"


@pytest.fixture
def hook_env(env: dict, tmp_path: Path) -> dict:
    e = dict(env)
    e["HOOK_LOG"] = str(tmp_path / "log.jsonl")
    e["HOOK_TRIES"] = str(tmp_path / "tries.txt")
    e["_CMD"] = f"{sys.executable} {write_script(tmp_path)}"
    return e


def _summary(r: subprocess.CompletedProcess) -> dict:
    return json.loads(r.stdout.strip().splitlines()[-1])


def _committed(topic: str, env: dict) -> int:
    r = finkctl("offsets", topic, "--json", env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["offsets"][0]["committed"] or 0


def test_exec_retries_dead_letters_and_commits(kafka, hook_env: dict, tmp_path: Path) -> None:
    topic = kafka.create_topic(f"cli-exec-{uuid.uuid4().hex[:6]}")
    n = publish(kafka, topic, LSST, FINK)
    dead = tmp_path / "dead"
    r = finkctl("stream", topic, "--until-end", "--exec", hook_env["_CMD"], "--retries", "1",
                "--dead-letter", str(dead), "--json", env={**hook_env, "HOOK_FAIL": "1"},
                timeout=120)
    assert r.returncode == 0, r.stderr
    s = _summary(r)
    assert s["alerts"] == n and s["stopped"] == "end" and s["dead_letters"] == 1
    assert s["hooks"] == {"succeeded": n - 1, "dead_lettered": 1, "tries": n + 1}
    assert "hook refuses" in r.stderr  # the command's stderr is passed on
    assert [x["offset"] for x in read_log(Path(hook_env["HOOK_LOG"]))] == \
        [i for i in range(n) if i != 1]
    meta = json.loads((dead / f"{topic}-0-1.json").read_text())
    assert meta["error"] == "HookError" and "exit status 3" in meta["reason"]
    assert _committed(topic, hook_env) == n


def test_exec_without_dead_letter_stops_at_the_failure(kafka, hook_env: dict) -> None:
    topic = kafka.create_topic(f"cli-exec-{uuid.uuid4().hex[:6]}")
    n = publish(kafka, topic, FINK, RAW)
    r = finkctl("stream", topic, "--until-end", "--exec", hook_env["_CMD"], "--retries", "0",
                env={**hook_env, "HOOK_FAIL": "5"}, timeout=120)
    assert r.returncode == 1 and "exit status 3" in r.stderr and "offset 5" in r.stderr
    assert _committed(topic, hook_env) == 5  # the 5 alerts whose hook succeeded
    # The next run starts at the failed alert.
    r = finkctl("stream", topic, "--until-end", "--exec", hook_env["_CMD"], "--batch",
                env=hook_env, timeout=120)
    assert r.returncode == 0, r.stderr
    offsets = [x["offset"] for x in read_log(Path(hook_env["HOOK_LOG"]))]
    assert offsets == list(range(n))
    assert _committed(topic, hook_env) == n


def test_webhook_from_env_with_template(kafka, env: dict) -> None:
    topic = kafka.create_topic(f"cli-web-{uuid.uuid4().hex[:6]}")
    n = publish(kafka, topic, FINK)
    with WebhookServer(fail_first=1) as server:
        r = finkctl("stream", topic, "--until-end", "--webhook", "--template",
                    "{objectId} {fink_class} {band} mag={mag:.2f}", "--json",
                    env={**env, "FINK_WEBHOOK_URL": server.url}, timeout=120)
    assert r.returncode == 0, r.stderr
    assert _summary(r)["hooks"]["succeeded"] == n
    assert sorted(b["objectId"] for b in server.accepted) == \
        sorted(a["objectId"] for a in source_alerts(FINK).values())
    assert "ZTF18abvcdqu RRLyr g mag=18.03" in [b["text"] for b in server.accepted]
    assert len(server.requests) == n + 1
    assert "s3cr3t" not in r.stdout + r.stderr


def test_hook_usage_errors(env: dict) -> None:
    for args in (["--batch"], ["--template", "{objectId}"], ["--exec", "true", "--webhook",
                 "http://x/"], ["--webhook", "ftp://x/"], ["--webhook", "http://h/",
                 "--template", "{nope}"], ["--exec", "true", "--save", "d"]):
        r = finkctl("stream", "t", *args, env=env)
        assert r.returncode == 2, (args, r.stderr)
    r = finkctl("stream", "t", "--webhook", env={**env, "FINK_WEBHOOK_URL": ""})
    assert r.returncode == 2 and "FINK_WEBHOOK_URL" in r.stderr


def test_kill_9_mid_run_then_restart_runs_every_unfinished_hook(kafka, hook_env: dict) -> None:
    topic = kafka.create_topic(f"cli-kill-{uuid.uuid4().hex[:6]}")
    folders = [FINK, RAW]
    n = 0
    for _ in range(5):
        n += publish(kafka, topic, *folders)
    assert n == 40
    args = [*FINKCTL, "stream", topic, "--until-end", "--exec", hook_env["_CMD"],
            "-X", "auto.commit.interval.ms=300", "-X", "session.timeout.ms=6000"]
    log = Path(hook_env["HOOK_LOG"])
    proc = subprocess.Popen(args, env={**hook_env, "HOOK_SLEEP": "0.05"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while len(read_log(log)) < 15 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(1.0)  # a hook command already started when finkctl died may still finish
    first = {x["offset"] for x in read_log(log)}
    assert 15 <= len(first) < n, "the kill must land mid-run"
    committed = _committed(topic, hook_env)
    assert committed <= max(first) + 1  # never stored past what a hook finished

    r = subprocess.run(args, env=hook_env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    records = read_log(log)
    second = [x["offset"] for x in records[len(first):]]
    # Every alert whose hook had not succeeded came again; what came twice is what ran
    # after the last commit (the rule: hooks may see an alert twice after a crash).
    assert set(range(n)) - first <= set(second)
    assert set(second) == set(range(committed, n))
    assert len(second) < n  # the first run's commits counted
    print(f"kill -9: {len(first)} hooks done before the kill, {committed} committed; "
          f"restart ran {len(second)} ({len(first) - committed} seen twice)")
