"""Every sample alert read, written by every writer, read back and compared (NaN-aware)."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import fastavro
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import fink_client
from fink_client import schemas, survey, synth
from fink_client.io import AlertReader, avro_to_arrow_schema, open_writer
from fink_client.testing import assert_alerts_equal

SAMPLES = Path(fink_client.__file__).parent / "data" / "samples"
SAMPLE_DIRS = sorted({p.parent for p in SAMPLES.rglob("*.avro")})
FORMATS = ["avro", "parquet", "json"]


def _by_id(alerts: list[dict]) -> list[dict]:
    return sorted(alerts, key=survey.alert_id)


def test_reader_reads_every_record_of_every_file() -> None:
    files = sorted(SAMPLES.rglob("*.avro"))
    alerts = AlertReader(SAMPLES).to_list()
    expected = []
    for path in files:
        with open(path, "rb") as fh:
            expected.extend(fastavro.reader(fh))
    assert len(alerts) == len(expected) == 24
    assert_alerts_equal(alerts, expected)


def test_reader_multi_record_file_and_list_input(tmp_path: Path) -> None:
    src = sorted((SAMPLES / "ztf" / "raw-datasim").glob("*.avro"))
    records = []
    for path in src:
        with open(path, "rb") as fh:
            records.extend(fastavro.reader(fh))
    schema = AlertReader(src[0]).schema
    big = tmp_path / "many.avro"
    with open(big, "wb") as fh:
        fastavro.writer(fh, fastavro.parse_schema(schema), records)
    reader = AlertReader([big, src[0]])
    assert len(reader.to_list()) == len(records) + 1
    assert reader.to_list(3) == records[:3]


@pytest.mark.parametrize("codec", ["null", "deflate", "snappy"])
def test_reader_avro_codecs_and_gzip(tmp_path: Path, codec: str) -> None:
    alerts = list(synth.generate("distribution_schema_fink_ztf_2.7_3.10.1", 5, seed=1))
    schema = fastavro.parse_schema(schemas.load("distribution_schema_fink_ztf_2.7_3.10.1"))
    path = tmp_path / f"a-{codec}.avro"
    with open(path, "wb") as fh:
        fastavro.writer(fh, schema, alerts, codec=codec)
    assert_alerts_equal(AlertReader(path).to_list(), alerts)
    gz = tmp_path / f"a-{codec}.avro.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert_alerts_equal(AlertReader(gz).to_list(), alerts)
    assert_alerts_equal(AlertReader(tmp_path).to_list(), alerts + alerts)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("folder", SAMPLE_DIRS, ids=lambda p: str(p.relative_to(SAMPLES)))
def test_samples_round_trip_every_writer(tmp_path: Path, folder: Path, fmt: str) -> None:
    reader = AlertReader(folder)
    alerts = _by_id(reader.to_list())
    writer = open_writer(fmt, tmp_path, reader.schema, max_records=3)
    paths = writer.write(alerts)
    assert len(paths) == math.ceil(len(alerts) / 3)
    assert all(p.exists() and p.parent == tmp_path for p in paths)
    back = AlertReader(tmp_path)
    assert_alerts_equal(_by_id(back.to_list()), alerts)
    assert back.schema == reader.schema
    # no temporary file is left behind
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", sorted(schemas.bundled()))
def test_synthetic_round_trip_every_schema(tmp_path: Path, name: str, fmt: str) -> None:
    alerts = list(synth.generate(name, 12, seed=3))
    open_writer(fmt, tmp_path, schemas.load(name)).write(
        alerts, topic="t", partition=0, offsets=range(100, 112))
    assert_alerts_equal(AlertReader(tmp_path).to_list(), alerts)


def test_nan_preserved_and_distinct_from_null(tmp_path: Path) -> None:
    schema = schemas.load("distribution_schema_fink_ztf_2.7_3.10.1")
    alert = next(synth.generate(schema, 1, seed=9))
    alert["rf_snia_vs_nonia"] = math.nan
    alert["snn_snia_vs_nonia"] = None
    alert["candidate"]["magpsf"] = math.inf
    for fmt in FORMATS:
        out = tmp_path / fmt
        open_writer(fmt, out, schema).write([alert])
        (back,) = AlertReader(out).to_list()
        assert math.isnan(back["rf_snia_vs_nonia"])
        assert back["snn_snia_vs_nonia"] is None
        assert back["candidate"]["magpsf"] == math.inf
        assert_alerts_equal(back, alert)


def test_big_int64_ids_exact_in_parquet_and_json(tmp_path: Path) -> None:
    schema = schemas.load("fink_lsst_alert_7.4")
    alerts = list(synth.generate(schema, 3, seed=1))
    big = [2**63 - 1, 2**53 + 1, 9007199254740993123 // 10]
    for alert, value in zip(alerts, big, strict=True):
        alert["alertId"] = value
        alert["diaSource"]["diaSourceId"] = value
    for fmt in ("parquet", "json"):
        out = tmp_path / fmt
        open_writer(fmt, out, schema).write(alerts, topic="t", partition=0, offsets=[1, 2, 3])
        back = AlertReader(out).to_list()
        assert [a["alertId"] for a in back] == big
        assert all(type(a["alertId"]) is int for a in back)
    table = pq.read_table(next((tmp_path / "parquet").glob("*.parquet")))
    assert table.schema.field("alertId").type == pa.int64()
    assert table.column("alertId").to_pylist() == big
    df = AlertReader(tmp_path / "parquet").to_pandas()
    assert [int(x) for x in df["alertId"]] == big
    assert str(df["alertId"].dtype) == "Int64"


def test_parquet_all_null_batch_keeps_types_and_dataset_reads_one_table(tmp_path: Path) -> None:
    schema = schemas.load("distribution_schema_fink_ztf_2.7_3.10.1")
    first = list(synth.generate(schema, 4, seed=1))
    second = list(synth.generate(schema, 4, seed=2))
    for alert in second:  # all-null columns in the second batch
        alert["cdsxmatch"] = None
        alert["rf_snia_vs_nonia"] = None
        alert["prv_candidates"] = None
        alert["candidate"]["magnr"] = None
    writer = open_writer("parquet", tmp_path, schema)
    (p1,) = writer.write(first, topic="t", partition=0, offsets=range(0, 4))
    (p2,) = writer.write(second, topic="t", partition=0, offsets=range(4, 8))
    s1, s2 = pq.read_schema(p1), pq.read_schema(p2)
    assert s1 == s2
    assert s1.equals(s2, check_metadata=True)
    assert s2.field("rf_snia_vs_nonia").type == pa.float64()
    assert s2.field("cdsxmatch").type == pa.string()
    assert s1 == avro_to_arrow_schema(schema)
    table = ds.dataset(tmp_path, format="parquet").to_table()
    assert table.num_rows == 8
    assert table.schema.field("prv_candidates").type == s1.field("prv_candidates").type
    assert_alerts_equal(AlertReader(tmp_path).to_list(), first + second)


def test_arrow_schema_types() -> None:
    schema = {"type": "record", "name": "r", "fields": [
        {"name": "i", "type": "int"}, {"name": "l", "type": ["null", "long"]},
        {"name": "b", "type": ["bytes", "null"]},
        {"name": "m", "type": {"type": "map", "values": ["float", "null"]}},
        {"name": "a", "type": {"type": "array", "items": "double"}},
        {"name": "n", "type": {"type": "record", "name": "n", "fields": [
            {"name": "s", "type": "string"}]}},
        {"name": "n2", "type": ["null", "n"]},
        {"name": "e", "type": {"type": "enum", "name": "e", "symbols": ["A", "B"]}},
        {"name": "t", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    ]}
    arrow = avro_to_arrow_schema(schema)
    assert arrow.field("i").type == pa.int32() and not arrow.field("i").nullable
    assert arrow.field("l").type == pa.int64() and arrow.field("l").nullable
    assert arrow.field("b").type == pa.binary()
    assert arrow.field("m").type == pa.map_(pa.string(), pa.float32())
    assert arrow.field("a").type.value_type == pa.float64()
    assert arrow.field("n2").type == arrow.field("n").type
    assert arrow.field("e").type == pa.string()
    assert arrow.field("t").type == pa.timestamp("us", tz="UTC")


def test_to_arrow_and_pandas_from_avro() -> None:
    reader = AlertReader(SAMPLES / "ztf" / "raw")
    table = reader.to_arrow()
    assert table.num_rows == 4
    assert table.schema.field("candid").type == pa.int64()
    df = reader.to_pandas()
    assert list(df["candid"]) == [a["candid"] for a in reader]
