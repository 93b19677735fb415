"""``finkctl stream --save --format avro`` through the Avro pass-through, on the real broker.

Schemaless Fink messages are validated (not decoded) by the consumer and their bytes
framed into the file: the files equal byte for byte what the fastavro-based writer
writes for the decoded alerts. It is the default of ``finkctl stream --save``; with
``FINK_CLIENT_NO_FASTPATH=1`` the same command goes through dicts and writes the same
files. A corrupt value is dead-lettered and never written; a failed write stores no
offset, so a rerun with the same group gets every alert again.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from pathlib import Path

import fastavro
import pytest

from fink_client.cli.main import main
from fink_client.consumer import AlertConsumer
from fink_client.io import AlertReader, AvroWriter
from fink_client.io import avro_passthrough as passthrough
from fink_client.replay import Encoder, read_records
from fink_client.sink import DiskSink
from fink_client.streamloop import stream
from fink_client.survey import alert_id
from fink_client.testing import assert_alerts_equal
from tests.cli.test_finkctl import finkctl
from tests.faults.helpers import publish_spread
from tests.helpers import SAMPLES, drain

pytestmark = pytest.mark.integration

FINK = SAMPLES / "ztf" / "fink"
LSST = SAMPLES / "lsst" / "fink-7.4"


def _messages(*folders: Path) -> tuple[list[tuple[bytes, bytes]], list[dict]]:
    """Fink wire format (schemaless value, schema JSON key) and the records."""
    enc = Encoder("fink", 1)
    pairs = list(read_records(folders))
    return [enc.encode(schema, record) for schema, record in pairs], [r for _, r in pairs]


def _config(kafka, group: str) -> dict:
    return {"bootstrap.servers": kafka.admin_servers, "group_id": group}


@pytest.mark.parametrize("folder", [FINK, LSST], ids=["ztf", "lsst"])
def test_passthrough_files_equal_the_dict_writer_byte_for_byte(
        kafka, tmp_path: Path, folder: Path) -> None:
    topic = kafka.create_topic(f"pt-{uuid.uuid4().hex[:6]}")
    messages, records = _messages(folder)
    publish_spread(messages, topic, kafka.admin_servers, 1)
    consumer = AlertConsumer([topic], _config(kafka, f"g-{uuid.uuid4().hex[:6]}"),
                             auto_store=False)
    try:
        sink = DiskSink(consumer, tmp_path / "out", "avro", batch_size=1000)
        stats = stream(consumer, sink=sink, limit=len(messages))
    finally:
        consumer.close()
    assert stats.count == len(messages)
    assert sink.passthrough_alerts == len(messages)  # no dict was built for any of them
    [path] = sink.files
    schema = json.loads(messages[0][1])
    [reference] = AvroWriter(tmp_path / "ref", schema).write(
        records, topic=topic, partition=0, offsets=range(len(records)))
    assert path.name == reference.name
    assert path.read_bytes() == reference.read_bytes()
    with open(path, "rb") as fh:
        assert_alerts_equal(list(fastavro.reader(fh)), records)


def test_cli_default_is_the_passthrough_and_writes_the_dict_paths_files(
        kafka, env: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``finkctl stream --save`` (default format: avro) copies every value undecoded, and
    its files are, name and bytes, those of the dict path (``FINK_CLIENT_NO_FASTPATH=1``)."""
    topic = kafka.create_topic(f"ptcli-{uuid.uuid4().hex[:6]}", partitions=2)
    messages, records = _messages(FINK, LSST)  # two schemas, both partitions
    publish_spread(messages, topic, kafka.admin_servers, 2)
    ref, out = tmp_path / "ref", tmp_path / "out"
    # One file per partition and schema (a batch bigger than the topic: how consume calls
    # split the partitions does not change the files).
    r = finkctl("stream", topic, "--until-end", "--save", str(ref),
                env={**env, "FINK_CLIENT_NO_FASTPATH": "1",
                     "FINK_GROUP_ID": f"ref-{uuid.uuid4().hex[:6]}"})
    assert r.returncode == 0, r.stderr

    copied: list[int] = []  # offsets the pass-through wrote; it gets no dict
    write_raw = DiskSink._write_raw

    def spy(self: DiskSink, topic: str, partition: int, schema: object,
            items: list) -> list[Path]:
        assert all(d.alert is None for d in items)
        copied.extend(d.offset for d in items)
        return write_raw(self, topic, partition, schema, items)

    monkeypatch.setattr(DiskSink, "_write_raw", spy)
    monkeypatch.delenv("FINK_CLIENT_NO_FASTPATH", raising=False)
    for name in [k for k in os.environ if k.startswith("FINK_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FINK_CLIENT_CONFIG_DIR", env["FINK_CLIENT_CONFIG_DIR"])
    assert main(["stream", topic, "--until-end", "--save", str(out)]) == 0
    assert len(copied) == len(messages)

    names = sorted(p.name for p in out.glob("*.avro"))
    assert names == sorted(p.name for p in ref.glob("*.avro")) and len(names) >= 2
    for name in names:
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    saved = []
    for name in names:
        with open(out / name, "rb") as fh:
            saved.extend(fastavro.reader(fh))
    assert sorted(map(alert_id, saved)) == sorted(map(alert_id, records))
    for alert in saved:
        assert_alerts_equal(alert, next(e for e in records if alert_id(e) == alert_id(alert)))


def test_corrupt_value_is_dead_lettered_never_written(kafka, env: dict, tmp_path: Path) -> None:
    topic = kafka.create_topic(f"ptbad-{uuid.uuid4().hex[:6]}")
    messages, records = _messages(FINK)
    bad_value = messages[1][0][: len(messages[1][0]) // 2]  # truncated, same key schema
    published = [messages[0], (bad_value, messages[1][1]), *messages[2:]]
    publish_spread(published, topic, kafka.admin_servers, 1)
    out, dead = tmp_path / "out", tmp_path / "dead"

    # without --dead-letter: the run stops on it (exit 1) and does not commit past it
    r = finkctl("stream", topic, "--until-end", "--save", str(out), "--format", "avro",
                env=env)
    assert r.returncode == 1 and "offset 1" in r.stderr, r.stderr
    assert [len(list(AlertReader(p))) for p in sorted(out.glob("*.avro"))] == [1]

    r = finkctl("stream", topic, "--until-end", "--save", str(out), "--format", "avro",
                "--dead-letter", str(dead), "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["dead_letters"] == 1
    assert (dead / f"{topic}-0-1.value").read_bytes() == bad_value
    saved = list(AlertReader(out))
    expected = [records[0], *records[2:]]
    assert sorted(map(alert_id, saved)) == sorted(map(alert_id, expected))
    for alert in saved:
        assert_alerts_equal(alert, next(e for e in expected if alert_id(e) == alert_id(alert)))


def test_failed_write_stores_no_offset(kafka, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Disk full while framing the file: the exception propagates, nothing is stored or
    committed, and a rerun with the same group gets every alert again."""
    topic = kafka.create_topic(f"ptfail-{uuid.uuid4().hex[:6]}")
    messages, records = _messages(FINK)
    publish_spread(messages, topic, kafka.admin_servers, 1)
    group = f"g-{uuid.uuid4().hex[:6]}"

    def full(fh: io.BufferedWriter, *args: object, **kw: object) -> int:
        fh.write(b"Obj\x01 partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(passthrough, "write_container", full)
    consumer = AlertConsumer([topic], _config(kafka, group), auto_store=False)
    try:
        sink = DiskSink(consumer, tmp_path / "out", "avro", batch_size=2)
        with pytest.raises(OSError, match="No space"):
            stream(consumer, sink=sink, limit=len(messages))
    finally:
        consumer.close()
    assert list((tmp_path / "out").iterdir()) == []  # no file, no temporary file
    monkeypatch.undo()
    again = AlertConsumer([topic], _config(kafka, group))
    try:
        got = drain(again, len(messages))
    finally:
        again.close()
    assert sorted(alert_id(a) for _, a in got) == sorted(map(alert_id, records))
