"""``finkctl stream``: at least once on every exit, every wire format saved, every file sane.

Real ``finkctl`` subprocesses against the session's embedded broker (``kafka``): a pipe
whose reader leaves early, stdout on a full device, messages whose key carries no
schema (data-transfer side topic, Avro containers, Confluent framing), an alert the
writer refuses, ``--batch-size``, ``--until-end`` after a transaction marker.
"""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import time
import uuid
from pathlib import Path

import fastavro
import pytest
from confluent_kafka import Producer

from fink_client.io import AlertReader
from fink_client.replay import Encoder, read_records
from fink_client.survey import alert_id
from fink_client.testing import assert_alerts_equal
from tests.cli.test_finkctl import finkctl
from tests.faults.helpers import publish_spread
from tests.helpers import FINKCTL, SAMPLES, publish, source_alerts

pytestmark = pytest.mark.integration

FINK = SAMPLES / "ztf" / "fink"  # Fink-processed ZTF alerts (schema in the key)
RAW = SAMPLES / "ztf" / "raw"  # raw ZTF alerts
LSST = SAMPLES / "lsst" / "fink-7.4"  # Fink LSST alerts (bundled schema id 1)


def _offsets(env: dict, topic: str) -> list[dict]:
    r = finkctl("offsets", topic, "--json", env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["offsets"]


def _json_alerts(stdout: str) -> list[dict]:
    return [x for x in map(json.loads, stdout.splitlines()) if x["type"] == "alert"]


def _encoded(wire: str, *folders: Path, schema_id: int = 1) -> list[tuple[bytes, bytes | None]]:
    enc = Encoder(wire, schema_id)
    return [enc.encode(schema, record) for schema, record in read_records(folders)]


# -- 1. at least once through stdout ---------------------------------------------------
def test_reader_closing_the_pipe_early_leaves_the_unread_alerts(kafka, env: dict) -> None:
    """``finkctl stream T | head -3``: exactly the 3 alerts read are committed; the
    run ends quietly with 141 (128 + SIGPIPE); the restart gets the other alerts."""
    topic = kafka.create_topic(f"pipe-{uuid.uuid4().hex[:6]}")
    n = publish(kafka, topic, FINK, RAW)
    proc = subprocess.Popen([*FINKCTL, "stream", topic, "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # Read like `head -3`: big reads of whatever the pipe holds, stop after 3 lines.
        data = b""
        deadline = time.monotonic() + 60
        while data.count(b"\n") < 3 and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                data += chunk
        proc.stdout.close()  # the reader goes away
        printed = [json.loads(x) for x in data.split(b"\n")[:3]]
        err = proc.stderr.read().decode()
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert [a["offset"] for a in printed] == [0, 1, 2]
    assert proc.returncode == 141, err
    assert "Traceback" not in err and "Error" not in err, err
    # what the reader never took was not committed: the restart gets exactly the rest
    read = data.count(b"\n")
    assert _offsets(env, topic)[0]["committed"] == read
    r = finkctl("stream", topic, "--until-end", "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert [a["offset"] for a in _json_alerts(r.stdout)] == list(range(read, n))


def test_full_disk_stdout_commits_nothing(kafka, env: dict) -> None:
    """``--json > /dev/full``: nothing was written, so nothing is committed (exit 1)."""
    topic = kafka.create_topic(f"full-{uuid.uuid4().hex[:6]}")
    n = publish(kafka, topic, FINK, RAW)
    with open("/dev/full", "w") as full:
        r = subprocess.run([*FINKCTL, "stream", topic, "--until-end", "--json"], env=env,
                           stdout=full, stderr=subprocess.PIPE, text=True, timeout=90)
    assert r.returncode == 1, r.stderr
    assert "cannot write the alerts to stdout" in r.stderr, r.stderr
    assert "No space left on device" in r.stderr and "Traceback" not in r.stderr
    assert _offsets(env, topic)[0]["committed"] is None
    r = finkctl("stream", topic, "--until-end", "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert [a["offset"] for a in _json_alerts(r.stdout)] == list(range(n))


# -- 3. messages whose key carries no schema ---------------------------------------------
@pytest.fixture
def keyless_topics(kafka) -> dict[str, tuple[str, dict]]:
    """Topics whose messages carry no schema in their key, with the alerts expected."""
    suffix = uuid.uuid4().hex[:6]
    out = {}
    # a data-transfer topic: schemaless values, schema in the key of <topic>_schema
    transfer = kafka.create_topic(f"ftransfer_ztf_2026-03-23_{suffix}")
    side = kafka.create_topic(f"{transfer}_schema")
    [(schema, _)] = list(read_records([FINK]))[:1]
    producer = Producer({"bootstrap.servers": kafka.admin_servers})
    producer.produce(side, key=json.dumps(schema).encode(), value=b"schema")
    producer.flush(30)
    values = []
    for sch, record in read_records([FINK]):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, fastavro.parse_schema(sch), record)
        values.append((buf.getvalue(), None))
    publish_spread(values, transfer, kafka.admin_servers, 1)
    out["transfer"] = (transfer, source_alerts(FINK))
    # raw ZTF alerts, one Avro container per message
    container = kafka.create_topic(f"container-{suffix}")
    publish_spread(_encoded("container", RAW), container, kafka.admin_servers, 1)
    out["container"] = (container, source_alerts(RAW))
    # Rubin-style Confluent framing, schema id 1 (bundled Fink LSST 7.4)
    confluent = kafka.create_topic(f"confluent-{suffix}")
    publish_spread(_encoded("confluent", LSST, schema_id=1), confluent, kafka.admin_servers, 1)
    out["confluent"] = (confluent, {alert_id(r): r for _, r in read_records([LSST])})
    return out


@pytest.mark.parametrize("fmt", ["avro", "parquet", "json"])
def test_messages_without_key_schema_are_saved_in_every_format(
        keyless_topics, env: dict, tmp_path: Path, fmt: str) -> None:
    for kind, (topic, expected) in keyless_topics.items():
        out = tmp_path / kind
        r = finkctl("stream", topic, "--until-end", "--save", str(out), "--format", fmt,
                    "--json", env=env)
        assert r.returncode == 0, (kind, r.stderr)
        got = list(AlertReader(out))
        assert sorted(map(alert_id, got)) == sorted(expected), kind
        for alert in got:  # JSON too: the schema beside the data restores bytes exactly
            assert_alerts_equal(alert, expected[alert_id(alert)])
        if fmt == "json":
            assert list(out.glob("_schema-*.avsc")), kind


def test_container_message_in_a_fink_topic_does_not_stop_a_dead_letter_run(
        kafka, env: dict, tmp_path: Path) -> None:
    topic = kafka.create_topic(f"mixed-{uuid.uuid4().hex[:6]}")
    messages = [*_encoded("fink", FINK), _encoded("container", RAW)[0], *_encoded("fink", FINK)]
    publish_spread(messages, topic, kafka.admin_servers, 1)
    out, dead = tmp_path / "out", tmp_path / "dead"
    r = finkctl("stream", topic, "--until-end", "--save", str(out), "--format", "parquet",
                "--dead-letter", str(dead), "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["dead_letters"] == 0
    assert len(list(AlertReader(out))) == len(messages)
    assert _offsets(env, topic)[0]["lag"] == 0


# -- 4. an alert the writer refuses ------------------------------------------------------
ODD_SCHEMA = {"type": "record", "name": "odd", "fields": [
    {"name": "objectId", "type": "string"}, {"name": "candid", "type": "long"},
    {"name": "flag", "type": ["int", "string"]}]}  # decodes; no Parquet equivalent


def _odd_message() -> tuple[bytes, bytes]:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(ODD_SCHEMA),
                               {"objectId": "ZTFodd", "candid": 42, "flag": "x"})
    return buf.getvalue(), json.dumps(ODD_SCHEMA).encode()


def test_alert_the_writer_refuses_is_dead_lettered_or_stops_the_run(
        kafka, env: dict, tmp_path: Path) -> None:
    topic = kafka.create_topic(f"refused-{uuid.uuid4().hex[:6]}")
    good = _encoded("fink", FINK)
    publish_spread([*good[:2], _odd_message(), *good[2:]], topic, kafka.admin_servers, 1)

    # without --dead-letter: a clear error naming the field and the message, exit 1,
    # nothing of the failed batch committed
    out = tmp_path / "out"
    r = finkctl("stream", topic, "--until-end", "--save", str(out), "--format", "parquet",
                env=env)
    assert r.returncode == 1, r.stderr
    assert "field 'flag'" in r.stderr and "offset 2" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not _offsets(env, topic)[0]["committed"]

    # with --dead-letter: the refused alert is kept with its reason, the others saved
    dead = tmp_path / "dead"
    r = finkctl("stream", topic, "--until-end", "--save", str(out), "--format", "parquet",
                "--dead-letter", str(dead), "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["dead_letters"] == 1
    meta = json.loads((dead / f"{topic}-0-2.json").read_text())
    assert meta["error"] == "SchemaError" and "flag" in meta["reason"]
    assert (dead / f"{topic}-0-2.value").read_bytes() == _odd_message()[0]
    assert sorted(a["candid"] for a in AlertReader(out)) == sorted(source_alerts(FINK))
    assert _offsets(env, topic)[0]["lag"] == 0


# -- 5. --batch-size ----------------------------------------------------------------------
def test_batch_size_bounds_every_file(kafka, env: dict, tmp_path: Path) -> None:
    topic = kafka.create_topic(f"batch-{uuid.uuid4().hex[:6]}")
    n = publish(kafka, topic, FINK) + publish(kafka, topic, FINK)  # one schema
    out = tmp_path / "out"
    r = finkctl("stream", topic, "--until-end", "--save", str(out), "--batch-size", "3",
                "--json", env=env)
    assert r.returncode == 0, r.stderr
    files = json.loads(r.stdout.splitlines()[-1])["files"]
    sizes = [len(list(AlertReader(f))) for f in sorted(files)]
    assert sizes == [3, 3, 2] and sum(sizes) == n


# -- 6. --until-end after a transaction commit marker ------------------------------------
def test_until_end_ends_after_a_transaction_marker(kafka, env: dict) -> None:
    topic = kafka.create_topic(f"txn-{uuid.uuid4().hex[:6]}")
    producer = Producer({"bootstrap.servers": kafka.admin_servers,
                         "transactional.id": f"tx-{uuid.uuid4().hex[:8]}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    messages = _encoded("fink", FINK)
    for value, key in messages:
        producer.produce(topic, value=value, key=key)
    producer.commit_transaction(30)
    high = _offsets(env, topic)[0]["high"]
    assert high == len(messages) + 1  # the commit marker takes an offset no one reads
    r = finkctl("stream", topic, "--until-end", "--json", env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert [a["offset"] for a in _json_alerts(r.stdout)] == list(range(len(messages)))
    assert json.loads(r.stdout.splitlines()[-1])["stopped"] == "end"
