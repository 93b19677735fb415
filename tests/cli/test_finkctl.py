"""``finkctl`` auth/topics/stream/offsets/replay as real subprocesses on the embedded broker."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import signal
import stat
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from fink_client.io import AlertReader
from fink_client.testing import assert_alerts_equal
from tests.helpers import FINKCTL, SAMPLES, publish, source_alerts

pytestmark = pytest.mark.integration

FINK = SAMPLES / "ztf" / "fink"  # Fink-processed ZTF alerts (one schema)
RAW = SAMPLES / "ztf" / "raw"  # raw ZTF alerts (another schema)


def finkctl(*args: str, env: dict, input: str | None = None, timeout: float = 90,
            ) -> subprocess.CompletedProcess:
    """Run the real ``finkctl`` command."""
    return subprocess.run([*FINKCTL, *args], env=env, input=input, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    d = tmp_path / "config"
    return d


@pytest.fixture
def env(kafka, home: Path) -> dict:
    """Environment of a user who registered alice's credentials with a fresh group."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("FINK_")}
    e["FINK_CLIENT_CONFIG_DIR"] = str(home)
    group = f"cli-{uuid.uuid4().hex[:8]}"
    r = finkctl("auth", "register", "--username", "alice", "--group-id", group,
                "--servers", kafka.bootstrap_servers, "--password-stdin", "--check",
                env=e, input="alice-secret\n")
    assert r.returncode == 0, r.stderr
    e["_GROUP"] = group  # for the tests' own use; finkctl ignores it
    return e


def read_back(folder: Path) -> list[dict]:
    """Alerts in the files written by ``stream --save`` (through fink_client.io's reader)."""
    return list(AlertReader(folder))


def _unbase64(got, expected):
    """JSON lines carry bytes as base64 text: decode them where the source has bytes."""
    if isinstance(expected, bytes) and isinstance(got, str):
        return base64.b64decode(got)
    if isinstance(expected, dict) and isinstance(got, dict):
        return {k: _unbase64(v, expected.get(k)) for k, v in got.items()}
    if isinstance(expected, list) and isinstance(got, list) and len(got) == len(expected):
        return [_unbase64(g, e) for g, e in zip(got, expected, strict=True)]
    return got


# -- auth ----------------------------------------------------------------------------
def test_auth_register_show_remove(env: dict, home: Path, kafka) -> None:
    path = home / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())["surveys"]["ztf"]
    assert stored["username"] == "alice" and stored["password"] == "alice-secret"

    r = finkctl("auth", "show", env=env)
    assert r.returncode == 0, r.stderr
    assert "alice" in r.stdout and "********" in r.stdout
    assert "alice-secret" not in r.stdout + r.stderr

    # environment variables override the file, field by field
    r = finkctl("auth", "show", "--json", env={**env, "FINK_GROUP_ID": "from-env"})
    shown = json.loads(r.stdout)["surveys"][0]
    assert shown["group_id"] == "from-env" and shown["sources"]["group_id"] == "env FINK_GROUP_ID"
    assert shown["password"] == "********" and shown["username"] == "alice"

    r = finkctl("auth", "remove", env=env)
    assert r.returncode == 0 and not path.exists()
    r = finkctl("auth", "remove", env=env)
    assert r.returncode == 1 and "no credentials stored" in r.stderr
    r = finkctl("topics", env=env)
    assert r.returncode == 1 and "finkctl auth register" in r.stderr


def test_register_without_password_source_is_usage_error(home: Path) -> None:
    e = {k: v for k, v in os.environ.items() if not k.startswith("FINK_")}
    e["FINK_CLIENT_CONFIG_DIR"] = str(home)
    r = finkctl("auth", "register", "--username", "u", "--group-id", "g", env=e,
                input="")  # stdin not a terminal, no --password-stdin, no FINK_PASSWORD
    assert r.returncode == 2 and "--password-stdin" in r.stderr
    assert not (home / "credentials.json").exists()


# -- stream --save -------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["avro", "parquet", "json"])
def test_stream_until_end_saves_exactly_the_published_alerts(
        kafka, env: dict, tmp_path: Path, fmt: str) -> None:
    topic = kafka.create_topic(f"cli-save-{fmt}-{uuid.uuid4().hex[:6]}", partitions=2)
    n = publish(kafka, topic, FINK, RAW)
    expected = source_alerts(FINK, RAW)
    assert n == len(expected) == 8
    out = tmp_path / "saved"
    r = finkctl("stream", topic, "--until-end", "--save", str(out), "--format", fmt, "--json",
                env=env)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["type"] == "summary" and summary["alerts"] == 8
    assert summary["stopped"] == "end" and summary["files"]
    assert all(Path(f).exists() for f in summary["files"])
    assert not list(out.rglob(".*.tmp"))  # no temporary file left behind

    got = read_back(out)
    assert sorted(a["candid"] for a in got) == sorted(expected)  # each once, none missing
    for alert in got:
        if fmt == "json":
            source = expected[alert["candid"]]
            assert_alerts_equal(_unbase64(alert, source), source)
        else:
            assert_alerts_equal(alert, expected[alert["candid"]])

    # offsets were committed after the files: the same group has nothing left to read
    r = finkctl("offsets", topic, "--json", env=env)
    rows = json.loads(r.stdout)["offsets"]
    assert sum(row["lag"] for row in rows) == 0
    assert sum(row["committed"] or 0 for row in rows) == 8


def test_stream_json_lines_and_limit(kafka, env: dict) -> None:
    topic = kafka.create_topic(f"cli-json-{uuid.uuid4().hex[:6]}")
    publish(kafka, topic, FINK)
    r = finkctl("stream", topic, "--limit", "3", "--json", env=env)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    alerts = [x for x in lines if x["type"] == "alert"]
    assert [a["offset"] for a in alerts] == [0, 1, 2]
    assert {a["candid"] for a in alerts} <= set(source_alerts(FINK))
    assert lines[-1]["type"] == "summary" and lines[-1]["stopped"] == "limit"
    # the plain view prints one line per alert; the next run resumes after the 3 seen
    r = finkctl("stream", topic, "--until-end", env=env)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 1
    assert "1 alerts" in r.stderr and "stopped: end" in r.stderr


def test_start_at_time_and_last_n(kafka, env: dict) -> None:
    topic = kafka.create_topic(f"cli-start-{uuid.uuid4().hex[:6]}")
    publish(kafka, topic, FINK)  # offsets 0-3
    time.sleep(1.0)
    middle = dt.datetime.now(dt.timezone.utc)
    time.sleep(0.5)
    publish(kafka, topic, RAW)  # offsets 4-7
    raw_candids = set(source_alerts(RAW))

    r = finkctl("stream", topic, "--start-at", middle.isoformat(), "--until-end", "--json",
                env=env)
    assert r.returncode == 0, r.stderr
    alerts = [json.loads(x) for x in r.stdout.splitlines()][:-1]
    assert {a["candid"] for a in alerts} == raw_candids
    assert [a["offset"] for a in alerts] == [4, 5, 6, 7]

    r = finkctl("stream", topic, "--start-at", "-2", "--until-end", "--json", env=env)
    assert r.returncode == 0, r.stderr
    alerts = [json.loads(x) for x in r.stdout.splitlines()][:-1]
    assert [a["offset"] for a in alerts] == [6, 7]

    r = finkctl("stream", topic, "--start-at", "yesterday", env=env)
    assert r.returncode == 2 and "--start-at" in r.stderr


# -- offsets and topics --------------------------------------------------------------
def test_offsets_before_and_after_reset(kafka, env: dict) -> None:
    topic = kafka.create_topic(f"cli-off-{uuid.uuid4().hex[:6]}", partitions=2)
    n = publish(kafka, topic, FINK, RAW)
    r = finkctl("offsets", topic, "--json", env=env)
    assert r.returncode == 0, r.stderr
    before = json.loads(r.stdout)["offsets"]
    assert [row["partition"] for row in before] == [0, 1]
    assert all(row["committed"] is None for row in before)
    assert sum(row["lag"] for row in before) == sum(row["high"] for row in before) == n

    r = finkctl("offsets", topic, "--reset", "latest", "--json", env=env)
    assert r.returncode == 0, r.stderr
    after = json.loads(r.stdout)["offsets"]
    assert [row["committed"] for row in after] == [row["high"] for row in before]
    assert all(row["lag"] == 0 for row in after)

    r = finkctl("offsets", topic, "--reset", "earliest", env=env)
    assert r.returncode == 0, r.stderr
    assert "before reset" in r.stdout and "after reset to earliest" in r.stdout
    r = finkctl("offsets", topic, "--json", env=env)
    assert sum(row["lag"] for row in json.loads(r.stdout)["offsets"]) == n

    r = finkctl("offsets", topic, "--reset", "sometime", env=env)
    assert r.returncode == 2 and "--reset" in r.stderr


def test_topics_and_lag(kafka, env: dict) -> None:
    topic = kafka.create_topic(f"cli-top-{uuid.uuid4().hex[:6]}", partitions=3)
    n = publish(kafka, topic, FINK)
    r = finkctl("topics", "--json", env=env)
    assert r.returncode == 0, r.stderr
    listed = {t["topic"]: t["partitions"] for t in json.loads(r.stdout)["topics"]}
    assert listed[topic] == 3

    r = finkctl("topics", "--lag", "--json", env=env)
    doc = json.loads(r.stdout)
    mine = [row for row in doc["offsets"] if row["topic"] == topic]
    assert len(mine) == 3 and sum(row["lag"] for row in mine) == n
    finkctl("stream", topic, "--until-end", env=env)
    r = finkctl("topics", "--lag", env=env)
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith(topic))
    assert line.split()[-1] == "0"  # lag of partition 0 after the drain
    lags = [int(x.split()[-1]) for x in r.stdout.splitlines() if x.startswith(topic)]
    assert lags == [0, 0, 0]


# -- replay --rate --loop --------------------------------------------------------------
def test_replay_rate_and_loop(kafka, env: dict) -> None:
    topic = kafka.create_topic(f"cli-replay-{uuid.uuid4().hex[:6]}")
    start = time.monotonic()
    r = finkctl("replay", str(FINK), "--topic", topic, "--servers", kafka.admin_servers,
                "--rate", "10", "--loop", "3", "--json", env=env)
    elapsed = time.monotonic() - start
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["published"] == 12  # 4 files x 3 loops
    assert elapsed >= 11 / 10  # 12 alerts at 10/s cannot leave in under 1.1 s
    r = finkctl("offsets", topic, "--json", env=env)
    assert json.loads(r.stdout)["offsets"][0]["high"] == 12
    r = finkctl("replay", str(FINK), "--topic", topic, "--servers", kafka.admin_servers,
                "--rate", "0", env=env)
    assert r.returncode == 2


# -- signals ---------------------------------------------------------------------------
def test_sigterm_finishes_the_file_and_commits(kafka, env: dict, tmp_path: Path) -> None:
    topic = kafka.create_topic(f"cli-sig-{uuid.uuid4().hex[:6]}")
    n = publish(kafka, topic, FINK)
    out = tmp_path / "saved"
    proc = subprocess.Popen(
        [*FINKCTL, "stream", topic, "--save", str(out), "--format", "avro"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        seen = ""
        while time.monotonic() < deadline:  # wait until the status line shows every alert
            line = proc.stderr.readline()
            seen += line
            if f"{n} alerts" in line:
                break
        assert f"{n} alerts" in seen, seen
        assert not list(out.glob("*.avro"))  # batch not full and not old: still in memory
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "SIGTERM" in err and "offsets committed" in err
    assert len(read_back(out)) == n
    r = finkctl("offsets", topic, "--json", env=env)
    assert json.loads(r.stdout)["offsets"][0]["committed"] == n


# -- bad inputs ------------------------------------------------------------------------
def test_wrong_password(kafka, env: dict) -> None:
    topic = kafka.create_topic(f"cli-bad-{uuid.uuid4().hex[:6]}")
    bad = {**env, "FINK_PASSWORD": "not-the-password-42"}
    start = time.monotonic()
    r = finkctl("stream", topic, "--until-end", env=bad)
    assert r.returncode == 1
    assert "authentication failed" in r.stderr and "finkctl auth" in r.stderr
    assert "not-the-password-42" not in r.stdout + r.stderr
    assert time.monotonic() - start < 30
    r = finkctl("auth", "register", "--username", "alice", "--group-id", "g", "--servers",
                kafka.bootstrap_servers, "--password-stdin", "--check", env=env,
                input="not-the-password-42\n")
    assert r.returncode == 1 and "authentication failed" in r.stderr
    # the stored (good) credentials were not replaced by the rejected ones
    r = finkctl("topics", env=env)
    assert r.returncode == 0, r.stderr


def test_unknown_topic(env: dict) -> None:
    r = finkctl("stream", "no-such-topic-xyz", "--until-end", env=env)
    assert r.returncode == 1
    assert "'no-such-topic-xyz' does not exist" in r.stderr and "available:" in r.stderr
    r = finkctl("offsets", "no-such-topic-xyz", env=env)
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_bad_flags_are_usage_errors(env: dict) -> None:
    for args in (["stream", "t", "--no-such-flag"], ["stream", "t", "--limit", "many"],
                 ["stream", "t", "--limit", "0"], ["stream", "t", "--format", "json"],
                 ["stream", "t", "--save", "x", "--format", "csv"], ["topics", "--lagg"],
                 ["offsets"], ["auth", "register", "--survey", "hst"]):
        r = finkctl(*args, env=env)
        assert r.returncode == 2, (args, r.stderr)
        assert "error" in r.stderr or "usage" in r.stderr


def test_unwritable_save_folder(kafka, env: dict, tmp_path: Path) -> None:
    topic = kafka.create_topic(f"cli-unw-{uuid.uuid4().hex[:6]}")
    publish(kafka, topic, FINK)
    afile = tmp_path / "a-file"
    afile.write_text("not a folder")
    for folder in (afile / "out", Path("/proc/finkctl-out")):
        r = finkctl("stream", topic, "--until-end", "--save", str(folder), env=env)
        assert r.returncode == 1, r.stderr
        assert "cannot write" in r.stderr and str(folder) in r.stderr
    # nothing was consumed: the group still has every alert to read
    r = finkctl("offsets", topic, "--json", env=env)
    assert json.loads(r.stdout)["offsets"][0]["lag"] == 4


def test_world_readable_credentials_file_is_refused(env: dict, home: Path) -> None:
    path = home / "credentials.json"
    path.chmod(0o644)
    for args in (["topics"], ["auth", "show"], ["stream", "x"]):
        r = finkctl(*args, env=env)
        assert r.returncode == 1, r.stderr
        assert f"chmod 600 {path}" in r.stderr
        assert "alice-secret" not in r.stdout + r.stderr
    path.chmod(0o600)
    assert finkctl("auth", "show", env=env).returncode == 0


def test_password_not_in_process_list(kafka, env: dict) -> None:
    topic = kafka.create_topic(f"cli-ps-{uuid.uuid4().hex[:6]}")
    proc = subprocess.Popen([*FINKCTL, "stream", topic, "--timeout", "20"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)
        ps = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout
        assert "finkctl stream" in ps and "alice-secret" not in ps
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert proc.returncode == 0



def test_stream_save_png_draws_one_picture_per_alert(kafka, env: dict, tmp_path: Path) -> None:
    import matplotlib.image

    topic = kafka.create_topic(f"cli-png-{uuid.uuid4().hex[:6]}")
    publish(kafka, topic, FINK)
    out = tmp_path / "saved"
    r = finkctl("stream", topic, "--until-end", "--save", str(out), "--format", "parquet",
                "--png", env=env)
    assert r.returncode == 0, r.stderr
    pngs = sorted((out / "png").glob("*.png"))
    expected = source_alerts(FINK)
    assert sorted(p.stem for p in pngs) == sorted(
        f"{a['objectId']}_{a['candid']}" for a in expected.values())
    for png in pngs:
        pixels = matplotlib.image.imread(png)
        assert pixels.shape[:2] == (900, 1200) and pixels.std() > 0.05
    assert len(read_back(out)) == len(expected)  # the PNGs do not disturb the data files
    r = finkctl("stream", topic, "--png", env=env)
    assert r.returncode == 2 and "--png needs --save" in r.stderr


def test_extra_librdkafka_options(kafka, env: dict) -> None:
    topic = kafka.create_topic(f"cli-x-{uuid.uuid4().hex[:6]}")
    publish(kafka, topic, FINK)
    r = finkctl("stream", topic, "--until-end", "--json", "-X", "session.timeout.ms=6000",
                "-X", "fetch.wait.max.ms=50", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["alerts"] == 4
    # the keys really reach librdkafka: an unknown one is reported by name
    r = finkctl("stream", topic, "--until-end", "-X", "no.such.key=1", env=env)
    assert r.returncode == 1 and "no.such.key" in r.stderr
    r = finkctl("topics", "-X", "sasl.password=hunter2", env=env)
    assert r.returncode == 2 and "secret" in r.stderr and "hunter2" not in r.stderr
    r = finkctl("topics", "-X", "novalue", env=env)
    assert r.returncode == 2 and "KEY=VALUE" in r.stderr
