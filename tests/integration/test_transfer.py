"""``finkctl transfer`` / :func:`fink_client.transfer.transfer` against the embedded broker.

Data-transfer topics are built as Fink builds them: schemaless Avro values without key,
spread over 10 partitions, the schema as the key of the single message of
``<topic>_schema``. Alerts are synthetic (fink_client.synth, with Fink's bundled ZTF and
LSST data-transfer schemas) for volume, and real (the bundled Fink ZTF samples).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import fastavro
import psutil
import pyarrow.dataset as ds
import pytest
from confluent_kafka import Producer

from fink_client import codec, schemas, survey, synth
from fink_client.consumer import AlertConsumer
from fink_client.credentials import CONFIG_DIR_ENV
from fink_client.errors import DecodeError, TopicAuthorizationError, UnknownTopicError
from fink_client.io import AlertReader
from fink_client.replay import Encoder, read_records
from fink_client.testing import assert_alerts_equal
from fink_client.transfer import fetch_side_schema, transfer
from tests.helpers import FINKCTL, SAMPLES, unique_group

pytestmark = pytest.mark.integration

ZTF_SCHEMA = "avro_schema_ftransfer_ztf_2026-03-23"
LSST_SCHEMA = "avro_schema_ftransfer_lsst_2026-03-18"
PARTITIONS = 10


def ztf_alerts(n: int, seed: int) -> list[dict]:
    """Synthetic Fink ZTF transfer alerts whose year/month/day agree with candidate.jd,
    as in Fink's data (its own partition columns)."""
    out = []
    for i, alert in enumerate(synth.generate(ZTF_SCHEMA, n, seed=seed)):
        if alert["candidate"]["jd"] is not None:  # a 5-night query, as Fink users make
            alert["candidate"]["jd"] = 2460400.5 + i % 5 + alert["candidate"]["jd"] % 1
        day = _day(alert)
        if day is not None:
            alert.update(year=day.year, month=day.month, day=day.day)
        out.append(alert)
    return out


def _day(alert: dict) -> dt.date | None:
    if alert["candidate"]["jd"] is None:
        return None
    return (dt.datetime(1858, 11, 17) + dt.timedelta(days=survey.mjd(alert))).date()


def make_transfer_topic(kafka, name: str, schema: dict | None, values: list[bytes],
                        partitions: int = PARTITIONS) -> None:
    """Topic ``name`` with ``values`` spread round-robin, and its side schema topic."""
    kafka.create_topic(name, partitions=partitions)
    producer = Producer({"bootstrap.servers": kafka.admin_servers, "linger.ms": 20,
                         "message.max.bytes": 16 * 1024 * 1024})
    if schema is not None:
        kafka.create_topic(f"{name}_schema")
        producer.produce(f"{name}_schema", key=json.dumps(schema).encode(), value=b"")
    for i, value in enumerate(values):
        while True:
            try:
                producer.produce(name, value=value, partition=i % partitions)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0


def schemaless(schema: dict, alerts: list[dict]) -> list[bytes]:
    parsed = codec.parse_schema(schema)
    out = []
    for alert in alerts:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, parsed, alert)
        out.append(buf.getvalue())
    return out


def read_output(out: Path) -> list[dict]:
    """Every alert of the data files under ``out`` (partition folders included)."""
    files = sorted(p for p in out.rglob("*") if p.is_file() and not p.name.startswith(("_", "."))
                   and p.suffix in (".parquet", ".avro", ".jsonl"))
    return AlertReader(files).to_list() if files else []


def assert_exactly(got: list[dict], expected: dict, key) -> None:
    ids = [key(a) for a in got]
    assert len(ids) == len(set(ids)), "duplicates in the output"
    assert set(ids) == set(expected)
    for alert in got:
        assert_alerts_equal(alert, expected[key(alert)])


# -- the main dataset: ZTF, 10 partitions, 2 workers, partitioned by time ---------------
N_ZTF = 600


@pytest.fixture(scope="module")
def ztf_dataset(kafka, tmp_path_factory):
    schema = schemas.load(ZTF_SCHEMA)
    alerts = ztf_alerts(N_ZTF, seed=21)
    name = f"ftransfer_ztf_2026-03-23_{uuid.uuid4().hex[:6]}"
    make_transfer_topic(kafka, name, schema, schemaless(schema, alerts))
    out = tmp_path_factory.mktemp("ztf") / "out"
    config = {"username": "alice", "password": kafka.users["alice"],
              "group_id": unique_group(), "bootstrap.servers": kafka.bootstrap_servers}
    result = transfer(name, out, config, partition_by="time", workers=2, batch_size=50,
                      timeout=60)
    return {"topic": name, "out": out, "config": config, "result": result,
            "expected": {a["candid"]: a for a in alerts}, "schema": schema}


def test_every_alert_exactly_once_equal_to_the_source(ztf_dataset) -> None:
    result, out = ztf_dataset["result"], ztf_dataset["out"]
    assert result.reason == "done" and result.lag == 0 and result.alerts == N_ZTF
    got = read_output(out)
    assert_exactly(got, ztf_dataset["expected"], lambda a: a["candid"])
    # Hive layout from candidate.jd; every file in the folder of its alerts' day
    for path in out.rglob("*.parquet"):
        rel = path.parent.relative_to(out).parts
        assert [p.split("=")[0] for p in rel] == ["year", "month", "day"]
        for alert in AlertReader(path).to_list():
            day = _day(alert)
            want = ("__HIVE_DEFAULT_PARTITION__",) * 3 if day is None else (
                str(day.year), str(day.month), str(day.day))
            assert tuple(p.split("=")[1] for p in rel) == want
    # names: topic-partition-first-last offsets; schemas dumped beside the data
    assert all(p.name.startswith(f"{ztf_dataset['topic']}-p") for p in out.rglob("*.parquet"))
    assert json.loads((out / f"_{ztf_dataset['topic']}.avsc").read_text()) == \
        ztf_dataset["schema"]
    assert "candidate: struct<" in (out / f"_{ztf_dataset['topic']}.arrow.txt").read_text()


def test_rerun_after_completion_does_nothing_and_says_so(ztf_dataset) -> None:
    out = ztf_dataset["out"]
    before = sorted(out.rglob("*.parquet"))
    cfg = ztf_dataset["config"]
    env = dict(os.environ, FINK_USERNAME="alice", FINK_PASSWORD=cfg["password"],
               **{CONFIG_DIR_ENV: str(out.parent / "cfg")})
    proc = subprocess.run(
        [*FINKCTL, "transfer", ztf_dataset["topic"], "--out", str(out), "--servers",
         cfg["bootstrap.servers"], "--group-id", cfg["group_id"]],
        capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "nothing to do" in proc.stderr
    assert sorted(out.rglob("*.parquet")) == before


def test_pyarrow_dataset_reads_one_table(ztf_dataset) -> None:
    table = ds.dataset(ztf_dataset["out"], format="parquet", partitioning="hive").to_table()
    assert table.num_rows == N_ZTF
    assert sorted(table.column("candid").to_pylist()) == sorted(ztf_dataset["expected"])
    rows = {r["candid"]: r for r in table.select(["candid", "year", "objectId"]).to_pylist()}
    for candid, alert in ztf_dataset["expected"].items():
        assert rows[candid]["objectId"] == alert["objectId"]
        assert rows[candid]["year"] == alert["year"]


def test_duckdb_reads_one_table(ztf_dataset) -> None:
    import duckdb  # in the test extra: missing is a failure, never a skip
    glob = str(ztf_dataset["out"] / "**" / "*.parquet")
    con = duckdb.connect()
    try:
        rows = con.execute(
            "SELECT candid, objectId, candidate.jd, year, month, day FROM "
            f"read_parquet('{glob}', hive_partitioning = true)").fetchall()
    finally:
        con.close()
    assert len(rows) == N_ZTF
    expected = ztf_dataset["expected"]
    assert {r[0] for r in rows} == set(expected)
    for candid, obj, jd, year, month, day in rows:
        assert obj == expected[candid]["objectId"]
        assert jd == expected[candid]["candidate"]["jd"] or jd is None
        assert (year, month, day) == tuple(expected[candid][k] for k in ("year", "month", "day"))


SPARK_SCRIPT = r"""
import json, sys
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[1]").appName("fink-transfer-test")
         .config("spark.ui.enabled", "false").config("spark.driver.memory", "512m")
         .config("spark.sql.shuffle.partitions", "1").getOrCreate())
try:
    df = spark.read.option("basePath", sys.argv[1]).parquet(sys.argv[1])
    rows = df.select("candid", "objectId", "year", "month", "day").collect()
    print(json.dumps({"columns": df.columns, "rows": [list(r) for r in rows]}))
finally:
    spark.stop()
"""


@pytest.mark.timeout(240)
def test_spark_reads_one_table(ztf_dataset, tmp_path) -> None:
    importlib.import_module("pyspark")  # in the test extra: missing is a failure, not a skip
    script = tmp_path / "spark_read.py"
    script.write_text(SPARK_SCRIPT)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1")
    proc = subprocess.Popen([sys.executable, str(script), str(ztf_dataset["out"])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=200)
    finally:  # the JVM is a child of the script: no process of its session may outlive it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == 0, stderr[-3000:]
    got = json.loads(stdout.strip().splitlines()[-1])
    expected = ztf_dataset["expected"]
    assert len(got["rows"]) == N_ZTF
    assert {r[0] for r in got["rows"]} == set(expected)
    for candid, obj, year, month, day in got["rows"]:
        assert obj == expected[candid]["objectId"]
        assert [year, month, day] == [expected[candid][k] for k in ("year", "month", "day")]


# -- several machines, kill -9 -------------------------------------------------------------
def _cli(kafka, topic: str, out: Path, group: str, *extra: str) -> list[str]:
    return [*FINKCTL, "transfer", topic, "--out", str(out), "--servers",
            kafka.bootstrap_servers, "--group-id", group, *extra]


def _env(kafka, tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, FINK_USERNAME="alice", FINK_PASSWORD=kafka.users["alice"],
                **{CONFIG_DIR_ENV: str(tmp_path / "cfg")})


def test_two_commands_on_the_same_group_share_the_topic(kafka, tmp_path) -> None:
    """Two machines (two commands, separate folders) on one group: union = topic."""
    schema = schemas.load(ZTF_SCHEMA)
    alerts = ztf_alerts(400, seed=22)
    name = f"ftransfer_ztf_2026-03-23_{uuid.uuid4().hex[:6]}"
    make_transfer_topic(kafka, name, schema, schemaless(schema, alerts))
    group, env = unique_group(), _env(kafka, tmp_path)
    outs = [tmp_path / "machine1", tmp_path / "machine2"]
    procs = [subprocess.Popen(_cli(kafka, name, out, group, "--workers", "1",
                                   "--batch-size", "20", "--json"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for out in outs]
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=150)
        assert proc.returncode == 0, stderr
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    assert all(r["lag"] == 0 for r in results)
    got = read_output(outs[0]) + read_output(outs[1])
    by_id = {a["candid"]: a for a in alerts}
    assert {a["candid"] for a in got} == set(by_id)  # no loss
    for alert in got:
        assert_alerts_equal(alert, by_id[alert["candid"]])
    # a partition changing hands mid-batch may be written by both: at most one batch each
    assert len(got) - len(by_id) <= 20 * PARTITIONS


def _workers_of(pid: int) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """The transfer workers of command ``pid``, and the server that forked them (children
    of multiprocessing's forkserver, which is the command's child; spawned ones where
    there is no forkserver)."""
    kids = psutil.Process(pid).children()
    server = [k for k in kids if "forkserver" in " ".join(k.cmdline())]
    spawned = [k for k in kids if "spawn_main" in " ".join(k.cmdline())]
    return [w for s in server for w in s.children()] + spawned, server


@pytest.mark.parametrize("victim", ["worker", "command"])
def test_kill_9_then_rerun_loses_nothing(kafka, tmp_path, victim: str) -> None:
    """kill -9 of one worker (the other takes its partitions over) or of the command (its
    workers notice and leave); then a rerun: every alert, duplicates bounded."""
    schema = schemas.load(ZTF_SCHEMA)
    alerts = ztf_alerts(400, seed=23)
    name = f"ftransfer_ztf_2026-03-23_{uuid.uuid4().hex[:6]}"
    make_transfer_topic(kafka, name, schema, schemaless(schema, alerts))
    group, env, out = unique_group(), _env(kafka, tmp_path), tmp_path / "out"
    batch = 10
    # a small prefetch, so that the workers do not hold the whole topic when it dies
    cmd = _cli(kafka, name, out, group, "--workers", "2", "--batch-size", str(batch),
               "--partition-by", "time", "-X", "queued.max.messages.kbytes=1000",
               "-X", "max.partition.fetch.bytes=300000")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        deadline = time.monotonic() + 90
        while (len(list(out.rglob("*.parquet"))) < 1 and time.monotonic() < deadline
               and proc.poll() is None):
            time.sleep(0.05)
        workers, server = _workers_of(proc.pid)
        assert len(workers) == 2, proc.stderr.read() if proc.poll() is not None else \
            "not 2 worker processes"
        if victim == "worker":
            workers[0].send_signal(signal.SIGKILL)
            _, stderr = proc.communicate(timeout=150)
            assert proc.returncode == 0, stderr
            assert "ended with exit code -9" in stderr  # killed while the command ran
        else:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
            _, alive = psutil.wait_procs(workers + server, timeout=30)
            assert not alive, "workers (or the server that forked them) outlived the command"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if victim == "command":  # it died mid-run
        assert len({a["candid"] for a in read_output(out)}) < len(alerts)
    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=150)
    assert rerun.returncode == 0, rerun.stderr
    got = read_output(out)
    by_id = {a["candid"]: a for a in alerts}
    assert {a["candid"] for a in got} == set(by_id)  # nothing lost
    for alert in got:
        assert_alerts_equal(alert, by_id[alert["candid"]])
    # duplicates: at most the batches the killed process had not committed
    assert len(got) - len(by_id) <= batch * PARTITIONS
    assert not list(out.rglob(".*.tmp"))


def test_cli_usage_and_typed_errors(kafka, tmp_path) -> None:
    env = _env(kafka, tmp_path)
    helped = subprocess.run([*FINKCTL, "transfer", "--help"], capture_output=True, text=True,
                            env=env, timeout=60)
    assert helped.returncode == 0 and "--partition-by" in helped.stdout
    bad = subprocess.run(_cli(kafka, "ftransfer_x", tmp_path / "o", unique_group(),
                              "--workers", "0"), capture_output=True, text=True, env=env,
                         timeout=60)
    assert bad.returncode == 2 and "--workers" in bad.stderr
    unknown = subprocess.run(_cli(kafka, "ftransfer_nope", tmp_path / "o", unique_group()),
                             capture_output=True, text=True, env=env, timeout=60)
    assert unknown.returncode == 1 and "does not exist; available:" in unknown.stderr
    assert "Traceback" not in unknown.stderr


# -- other topic shapes ----------------------------------------------------------------
def test_lsst_transfer_topic_partitioned_by_a_dotted_field(kafka, tmp_path, alice_config) -> None:
    schema = schemas.load(LSST_SCHEMA)
    alerts = list(synth.generate(schema, 100, seed=24))
    name = f"ftransfer_lsst_2026-03-18_{uuid.uuid4().hex[:6]}"
    make_transfer_topic(kafka, name, schema, schemaless(schema, alerts))
    out = tmp_path / "out"
    result = transfer(name, out, alice_config(unique_group()), partition_by="diaSource.band",
                      workers=1, batch_size=40)
    assert result.reason == "done" and result.alerts == 100
    assert_exactly(read_output(out), {a["diaSourceId"]: a for a in alerts},
                   lambda a: a["diaSourceId"])
    bands = {p.name for p in out.iterdir() if p.is_dir()}
    assert bands == {f"diaSource_band={a['diaSource']['band']}" for a in alerts}
    table = ds.dataset(out, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 100 and "diaSource_band" in table.column_names


def test_real_fink_alerts_with_avro_and_json_output(kafka, tmp_path, alice_config) -> None:
    records = list(read_records([SAMPLES / "ztf" / "fink"]))
    schema = records[0][0]
    alerts = [r for _, r in records]
    name = f"ftransfer_ztf_2024-01-01_{uuid.uuid4().hex[:6]}"
    make_transfer_topic(kafka, name, schema, schemaless(schema, alerts), partitions=3)
    expected = {a["candid"]: a for a in alerts}
    for fmt in ("avro", "json"):
        out = tmp_path / fmt
        result = transfer(name, out, alice_config(unique_group()), fmt=fmt, workers=1,
                          partition_by="time", restart_from_beginning=True)
        assert result.alerts == len(alerts)
        assert_exactly(read_output(out), expected, lambda a: a["candid"])


@pytest.mark.parametrize("wire", ["confluent", "container"])
def test_fxmatch_topic_with_framed_or_container_values(kafka, tmp_path, alice_config,
                                                      wire: str) -> None:
    """No side topic: every value carries its schema (Confluent id or container header)."""
    schema = schemas.load(LSST_SCHEMA)
    alerts = list(synth.generate(schema, 60, seed=25))
    encoder = Encoder(wire, schema_id=schemas.id_of(LSST_SCHEMA) or 1)
    values = [encoder.encode(schema, a)[0] for a in alerts]
    name = f"fxmatch_lsst_{wire}_{uuid.uuid4().hex[:6]}"
    make_transfer_topic(kafka, name, None, values, partitions=3)
    out = tmp_path / "out"
    result = transfer(name, out, alice_config(unique_group()), workers=1, partition_by="time")
    assert result.reason == "done"
    assert_exactly(read_output(out), {a["diaSourceId"]: a for a in alerts},
                   lambda a: a["diaSourceId"])


@pytest.mark.parametrize("workers,strategy", [(1, None), (2, "cooperative-sticky")])
def test_ends_past_transaction_markers(kafka, tmp_path, alice_config, workers: int,
                                       strategy: str | None) -> None:
    """A transactional producer leaves a commit marker after the last record: the end
    offset is never a record, and the transfer must still finish (not wait --timeout).
    With the cooperative protocol (given by the user), a rebalance hands each member only
    the partitions it gains or loses: a member must still see the end of those it kept."""
    schema = schemas.load(LSST_SCHEMA)
    alerts = list(synth.generate(schema, 30, seed=29))
    name = f"ftransfer_lsst_2026-03-18_{uuid.uuid4().hex[:6]}"
    kafka.create_topic(name, partitions=2)
    kafka.create_topic(f"{name}_schema")
    producer = Producer({"bootstrap.servers": kafka.admin_servers,
                         "transactional.id": f"tx-{name}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(f"{name}_schema", key=json.dumps(schema).encode(), value=b"")
    for i, value in enumerate(schemaless(schema, alerts)):
        producer.produce(name, value=value, partition=i % 2)
    producer.commit_transaction(30)
    config = alice_config(unique_group())
    if strategy is not None:
        config["partition.assignment.strategy"] = strategy
    result = transfer(name, tmp_path / "out", config, workers=workers, batch_size=10,
                      timeout=30)
    assert result.reason == "done" and result.lag == 0
    assert_exactly(read_output(tmp_path / "out"), {a["diaSourceId"]: a for a in alerts},
                   lambda a: a["diaSourceId"])


def test_undecodable_values_go_to_the_dead_letter_folder_never_to_data(kafka, tmp_path,
                                                                       alice_config) -> None:
    schema = schemas.load(LSST_SCHEMA)
    alerts = list(synth.generate(schema, 30, seed=26))
    values = schemaless(schema, alerts)
    values[7] = b"\x02garbage"  # not an alert of this schema
    name = f"ftransfer_lsst_2026-03-18_{uuid.uuid4().hex[:6]}"
    make_transfer_topic(kafka, name, schema, values, partitions=2)
    # without a dead-letter folder: a typed error naming where, nothing committed past it
    with pytest.raises(DecodeError) as info:
        transfer(name, tmp_path / "a", alice_config(unique_group()), workers=1)
    assert info.value.topic == name and info.value.partition == 7 % 2 and info.value.offset == 3
    out, dead = tmp_path / "b", tmp_path / "dead"
    result = transfer(name, out, alice_config(unique_group()), workers=1, dead_letter=dead)
    assert result.reason == "done" and result.dead_letters == 1 and result.alerts == 29
    good = {a["diaSourceId"]: a for i, a in enumerate(alerts) if i != 7}
    assert_exactly(read_output(out), good, lambda a: a["diaSourceId"])
    entry = json.loads((dead / f"{name}-1-3.json").read_text())
    assert entry["error"] == "DecodeError"
    assert (dead / f"{name}-1-3.value").read_bytes() == b"\x02garbage"


def test_side_topic_not_authorised_is_a_typed_error_naming_it(kafka, bob_config) -> None:
    name = f"ftransfer_ztf_2026-03-23_{uuid.uuid4().hex[:6]}"
    schema = schemas.load(ZTF_SCHEMA)
    make_transfer_topic(kafka, name, schema, schemaless(schema, ztf_alerts(3, seed=27)),
                        partitions=1)
    group = unique_group()
    kafka.allow("bob", topics=[name], groups=[group])  # the topic, not its side topic
    cfg = bob_config(group)
    with pytest.raises(TopicAuthorizationError) as info:
        transfer(name, "/tmp/never-written", cfg, workers=1)
    assert info.value.topic == f"{name}_schema"
    assert f"{name}_schema" in str(info.value)
    kcfg = {"bootstrap.servers": kafka.bootstrap_servers, "group.id": group,
            "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "SCRAM-SHA-512",
            "sasl.username": "bob", "sasl.password": kafka.users["bob"]}
    with pytest.raises(TopicAuthorizationError) as info:
        fetch_side_schema(kcfg, name, timeout=10)
    assert info.value.topic == f"{name}_schema"
    # the consumer reads the side topic too: the same error, not "no schema"
    with pytest.raises(TopicAuthorizationError) as info:
        AlertConsumer([name], cfg)
    assert info.value.topic == f"{name}_schema"


def test_unknown_topic_lists_what_exists(kafka, alice_config, tmp_path) -> None:
    with pytest.raises(UnknownTopicError) as info:
        transfer("ftransfer_ztf_nope", tmp_path, alice_config(unique_group()), workers=1)
    assert "available:" in str(info.value)


def test_leftover_temporary_files_are_cleaned(kafka, tmp_path, alice_config) -> None:
    schema = schemas.load(LSST_SCHEMA)
    name = f"ftransfer_lsst_2026-03-18_{uuid.uuid4().hex[:6]}"
    make_transfer_topic(kafka, name, schema,
                        schemaless(schema, list(synth.generate(schema, 5, seed=28))), 1)
    dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout.strip()
    leftover = tmp_path / "out" / "sub" / f".x.parquet.{dead_pid}.tmp"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a file")
    result = transfer(name, tmp_path / "out", alice_config(unique_group()), workers=1)
    assert result.alerts == 5
    assert not leftover.exists()


@pytest.mark.parametrize("signals", [1, 2])
def test_ctrl_c_stops_cleanly_or_aborts_and_a_rerun_completes(kafka, tmp_path,
                                                              signals: int) -> None:
    """One SIGINT: the batches in progress are finished and committed, exit 0. Two: abort
    at once with 130, no temporary file left, nothing more committed. Either way the
    rerun downloads every alert that was not saved: nothing lost."""
    schema = schemas.load(ZTF_SCHEMA)
    alerts = ztf_alerts(400, seed=24)
    name = f"ftransfer_ztf_2026-03-23_{uuid.uuid4().hex[:6]}"
    make_transfer_topic(kafka, name, schema, schemaless(schema, alerts))
    group, env, out = unique_group(), _env(kafka, tmp_path), tmp_path / "out"
    cmd = _cli(kafka, name, out, group, "--workers", "2", "--batch-size", "10",
               "-X", "queued.max.messages.kbytes=1000", "-X", "max.partition.fetch.bytes=300000")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    workers: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 90
        while (not list(out.rglob("*.parquet")) and time.monotonic() < deadline
               and proc.poll() is None):
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[1]
        # The workers are frozen (SIGSTOP) around the signals, so that the command is
        # still busy when they arrive: a stop takes well under a second, and unfrozen the
        # run could end between two signals sent by a test.
        workers, _ = _workers_of(proc.pid)
        assert workers
        for w in workers:
            w.suspend()
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        assert proc.poll() is None  # waiting for its workers' batches
        if signals == 2:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)  # the abort does not wait for the workers
        for w in workers:
            w.resume()
        _, stderr = proc.communicate(timeout=120)
        # aborted or not, the workers leave (they notice their command is gone)
        psutil.wait_procs(workers, timeout=60)
        assert not [w for w in workers if w.is_running() and w.status() != "zombie"]
    finally:
        for w in workers:
            with contextlib.suppress(psutil.Error):
                w.resume()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in stderr, stderr
    if signals == 1:
        assert proc.returncode == 0, stderr
        assert "SIGINT" in stderr
    else:
        assert proc.returncode == 130, stderr
        assert "aborted" in stderr
    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=150)
    assert rerun.returncode == 0, rerun.stderr
    got = read_output(out)
    by_id = {a["candid"]: a for a in alerts}
    assert {a["candid"] for a in got} == set(by_id)  # nothing lost
    assert not list(out.rglob(".*.tmp"))
