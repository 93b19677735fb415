"""Writers' file handling (names, reruns, rotation, atomicity) and readers' errors."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from fink_client import schemas, synth
from fink_client.errors import ConfigError, FileFormatError, SchemaError
from fink_client.io import AlertReader, open_writer
from fink_client.testing import assert_alerts_equal

ZTF = "distribution_schema_fink_ztf_2.7_3.10.1"


def _alerts(n: int, seed: int = 0, name: str = ZTF) -> list[dict]:
    return list(synth.generate(name, n, seed=seed))


@pytest.mark.parametrize("fmt", ["avro", "parquet", "json"])
def test_names_from_offsets_and_from_ids(tmp_path: Path, fmt: str) -> None:
    writer = open_writer(fmt, tmp_path, schemas.load(ZTF))
    alerts = _alerts(3)
    (p,) = writer.write(alerts, topic="fink_sn", partition=2, offsets=[7, 8, 9])
    assert p.stem == "fink_sn-p2-o000000000007-000000000009"
    (single,) = writer.write(alerts[:1])
    assert single.stem == f"{alerts[0]['objectId']}_{alerts[0]['candid']}"
    (several,) = writer.write(alerts[1:])
    assert several.stem.startswith(f"{alerts[1]['objectId']}_{alerts[1]['candid']}+1-")


@pytest.mark.parametrize("fmt", ["avro", "parquet", "json"])
def test_identical_rerun_skips_and_different_alerts_never_overwrite(
    tmp_path: Path, fmt: str
) -> None:
    writer = open_writer(fmt, tmp_path, schemas.load(ZTF))
    first, other = _alerts(2, seed=1), _alerts(2, seed=2)
    (p1,) = writer.write(first, topic="t", partition=0, offsets=[0, 1])
    before = p1.read_bytes()
    assert writer.write(first, topic="t", partition=0, offsets=[0, 1]) == [p1]  # skipped
    assert p1.read_bytes() == before
    # same offsets, different alerts (e.g. a recreated topic): kept beside, not overwritten
    (p2,) = writer.write(other, topic="t", partition=0, offsets=[0, 1])
    assert p2 != p1 and p2.name.startswith(p1.stem + "~2")
    assert p1.read_bytes() == before
    assert_alerts_equal(AlertReader(p2, schema=schemas.load(ZTF)).to_list(), other)
    assert writer.write(other, topic="t", partition=0, offsets=[0, 1]) == [p2]


def test_rotation_by_count_and_bytes(tmp_path: Path) -> None:
    alerts = _alerts(10)
    by_count = open_writer("avro", tmp_path / "c", schemas.load(ZTF), max_records=4)
    assert len(by_count.write(alerts, topic="t", partition=0, offsets=range(10))) == 3
    by_bytes = open_writer("avro", tmp_path / "b", schemas.load(ZTF), max_bytes=120_000)
    paths = by_bytes.write(alerts, topic="t", partition=0, offsets=range(10))
    assert len(paths) >= 4  # ~47 KB per alert: at most 2 alerts per file
    assert all(p.stat().st_size < 160_000 for p in paths)
    for folder in ("c", "b"):
        assert_alerts_equal(AlertReader(tmp_path / folder).to_list(), alerts)


def test_json_bytes_base64_or_dropped(tmp_path: Path) -> None:
    alert = _alerts(1)[0]
    (p,) = open_writer("json", tmp_path / "b64", schemas.load(ZTF)).write([alert])
    line = json.loads(p.read_text())
    stamp = alert["cutoutScience"]["stampData"]
    assert base64.b64decode(line["cutoutScience"]["stampData"]) == stamp
    (q,) = open_writer("json", tmp_path / "drop", schemas.load(ZTF), drop_bytes=True).write([alert])
    dropped = json.loads(q.read_text())
    assert "stampData" not in dropped["cutoutScience"]
    assert dropped["candid"] == alert["candid"]
    # strict JSON: no NaN tokens anywhere
    json.loads(q.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON token {c}"))


def test_avro_and_parquet_need_a_schema(tmp_path: Path) -> None:
    for fmt in ("avro", "parquet"):
        with pytest.raises(SchemaError):
            open_writer(fmt, tmp_path / fmt).write(_alerts(1))
    with pytest.raises(ConfigError, match="unknown output format"):
        open_writer("csv", tmp_path)
    with pytest.raises(ConfigError, match="one offset per alert"):
        open_writer("json", tmp_path).write(_alerts(2), topic="t", partition=0, offsets=[1])


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    alert = _alerts(1)[0]
    alert["candid"] = "not a long"
    with pytest.raises(Exception):  # noqa: B017 (fastavro's own type)
        open_writer("avro", tmp_path, schemas.load(ZTF)).write([alert])
    assert list(tmp_path.iterdir()) == []


def test_per_call_schema_overrides_writer_schema(tmp_path: Path) -> None:
    lsst = _alerts(2, name="fink_lsst_alert_7.4")
    writer = open_writer("parquet", tmp_path)
    writer.write(lsst, schema=schemas.load("fink_lsst_alert_7.4"))
    assert_alerts_equal(sorted(AlertReader(tmp_path).to_list(), key=lambda a: a["alertId"]),
                        sorted(lsst, key=lambda a: a["alertId"]))


@pytest.mark.parametrize("content", [
    b"Obj\x01garbage that is not an avro header",
    b"PAR1 not really parquet",
    b"\x1f\x8b\x08\x00broken gzip",
    b"\x00\x01\x02 unknown format",
    b'{"candid": 1, "broken json"\n',
])
def test_corrupt_files_raise_file_format_error_naming_the_file(
    tmp_path: Path, content: bytes
) -> None:
    bad = tmp_path / "bad.avro"
    bad.write_bytes(content)
    with pytest.raises(FileFormatError) as info:
        AlertReader(bad).to_list()
    assert info.value.path == str(bad)
    assert "bad.avro" in str(info.value)


def test_truncated_avro_file_names_the_file(tmp_path: Path) -> None:
    (p,) = open_writer("avro", tmp_path / "w", schemas.load(ZTF)).write(_alerts(3))
    cut = tmp_path / "cut.avro"
    cut.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(FileFormatError, match=r"cut\.avro"):
        AlertReader(cut).to_list()


def test_missing_path_raises() -> None:
    with pytest.raises(FileFormatError, match="no such file"):
        AlertReader("/nonexistent/alerts")


def test_temporary_files_are_ignored_by_folder_reads(tmp_path: Path) -> None:
    (p,) = open_writer("avro", tmp_path, schemas.load(ZTF)).write(_alerts(2))
    (tmp_path / f".{p.name}.123.tmp").write_bytes(b"half written")
    (tmp_path / ".partial.avro").write_bytes(b"Obj\x01")
    assert len(AlertReader(tmp_path).to_list()) == 2


def test_two_threads_writing_the_same_path_never_share_a_temporary_file(
        tmp_path: Path) -> None:
    """Two threads of one process writing the same file at once (a writer thread and
    the main one, both writing a folder's side file) each get a temporary file of
    their own: both renames succeed, and no temporary file is left."""
    import threading

    from fink_client.io.atomic import atomic_write

    path, both_open = tmp_path / "side.avsc", threading.Barrier(2, timeout=10)
    errors: list[BaseException] = []

    def write(text: bytes) -> None:
        try:
            with atomic_write(path, overwrite=True) as fh:
                both_open.wait()  # the two temporary files exist at the same time
                fh.write(text)
        except BaseException as exc:  # handed to the test
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(b"x" * 10,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert path.read_bytes() == b"x" * 10
    assert [p.name for p in tmp_path.iterdir()] == ["side.avsc"]
