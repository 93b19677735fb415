"""Writers refuse alerts that do not match their schema (typed ``SchemaError`` naming
the field and the alert, nothing invented), and clean temporary files of dead writers;
the decoder gives the schema of every wire format."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fink_client.errors import SchemaError
from fink_client.io import AlertReader, open_writer
from fink_client.io.atomic import clean_stale_temps
from fink_client.replay import Encoder, read_records
from fink_client.wire import Decoder
from tests.helpers import SAMPLES

FINK = SAMPLES / "ztf" / "fink"
RAW = SAMPLES / "ztf" / "raw"


@pytest.fixture(scope="module")
def fink() -> tuple[dict, list[dict]]:
    pairs = list(read_records([FINK]))
    return pairs[0][0], [r for _, r in pairs]


@pytest.fixture(scope="module")
def raw() -> tuple[dict, list[dict]]:
    pairs = list(read_records([RAW]))
    return pairs[0][0], [r for _, r in pairs]


def _bad(records: list[dict], i: int, edit) -> list[dict]:
    out = copy.deepcopy(records)
    edit(out[i])
    return out


@pytest.mark.parametrize("fmt", ["avro", "parquet"])
@pytest.mark.parametrize("case,edit,field", [
    ("null record", lambda a: a.__setitem__("candidate", None), "candidate"),
    ("missing record", lambda a: a.pop("candidate"), "candidate"),
    ("wrong type", lambda a: a["candidate"].__setitem__("fid", "g"), "candidate.fid"),
])
def test_alert_not_matching_the_schema_is_refused(fink, tmp_path: Path, fmt: str, case: str,
                                                  edit, field: str) -> None:
    schema, records = fink
    alerts = _bad(records, 2, edit)
    writer = open_writer(fmt, tmp_path, schema)
    with pytest.raises(SchemaError) as info:
        writer.write(alerts, topic="t", partition=0, offsets=[10, 11, 12, 13])
    err = info.value
    assert err.field == field and err.offset == 12 and err.topic == "t"
    assert f"{alerts[2]['objectId']}/{alerts[2]['candid']}" in str(err)
    assert not list(tmp_path.iterdir())  # nothing written, no zeros invented
    assert [i for i, _ in writer.check(alerts)] == [2]
    assert writer.write(records, topic="t", partition=0, offsets=[10, 11, 12, 13])


@pytest.mark.parametrize("fmt", ["avro", "parquet"])
def test_null_in_a_nested_required_field_is_refused(raw, tmp_path: Path, fmt: str) -> None:
    schema, records = raw
    alerts = _bad(records, 0, lambda a: a["prv_candidates"][1].__setitem__("jd", None))
    with pytest.raises(SchemaError) as info:
        open_writer(fmt, tmp_path, schema).write(alerts)
    assert info.value.field is not None and info.value.field.startswith("prv_candidates")
    assert info.value.field.endswith("jd")
    # a null *record* where the schema allows it is fine, its required children too
    ok = _bad(records, 0, lambda a: a.__setitem__("prv_candidates", None))
    assert open_writer(fmt, tmp_path / "ok", schema).write(ok)


def test_parquet_never_writes_zeros_for_a_null_record(fink, tmp_path: Path) -> None:
    schema, records = fink
    writer = open_writer("parquet", tmp_path, schema)
    with pytest.raises(SchemaError):
        writer.write(_bad(records, 0, lambda a: a.__setitem__("candidate", None)))
    writer.write(records)
    assert all(a["candidate"]["jd"] > 2400000 for a in AlertReader(tmp_path))


def test_stale_temp_files_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".t-p0.avro.{dead_pid}.tmp"
    mine = tmp_path / f".t-p1.avro.{os.getpid()}.tmp"
    other = tmp_path / ".not-a-temp.tmp"
    for p in (stale, mine, other):
        p.write_bytes(b"x")
    assert clean_stale_temps(tmp_path) == [stale]
    assert mine.exists() and other.exists() and not stale.exists()
    stale.write_bytes(b"x")
    open_writer("json", tmp_path)  # every writer cleans its folder when it opens
    assert not stale.exists()


@pytest.mark.parametrize("wire,folder,fields", [
    ("fink", FINK, {"objectId", "candid", "candidate"}),
    ("container", RAW, {"objectId", "candid", "candidate"}),
    ("confluent", SAMPLES / "lsst" / "fink-7.4", {"diaSource"}),  # bundled schema id 1
])
def test_decoder_gives_the_schema_of_every_wire_format(wire: str, folder: Path,
                                                       fields: set[str]) -> None:
    schema, record = next(read_records([folder]))
    value, key = Encoder(wire, schema_id=1).encode(schema, record)
    alert, got = Decoder().decode_with_schema(value, key)
    assert set(alert) == {f["name"] for f in got["fields"]}
    assert {f["name"] for f in got["fields"]} >= fields
    assert json.dumps(got)  # a plain JSON schema, usable by every writer


def test_null_inside_a_map_or_array_is_refused_by_parquet(tmp_path: Path) -> None:
    schema = {"type": "record", "name": "r", "fields": [
        {"name": "m", "type": ["null", {"type": "map", "values": "double"}]},
        {"name": "a", "type": {"type": "array", "items": "long"}}]}
    good = [{"m": {"x": 1.0}, "a": [1, 2]}, {"m": None, "a": []}]
    writer = open_writer("parquet", tmp_path, schema)
    assert writer.write(good)
    for bad, field in (({"m": {"y": None}, "a": [3]}, "m{}"), ({"m": None, "a": [4, None]}, "a[]")):
        with pytest.raises(SchemaError) as info:
            writer.write([*good, bad])
        assert info.value.field == field
