"""Parquet column options (io.writers.parquet_column_options) as written into the files.

Cutout bytes: no dictionary, no compression, no statistics (gzipped FITS, unique per
alert); leaves in a list or map (the history): no statistics; floating-point columns:
compressed, no dictionary (nearly all distinct); strings and integers: compressed with a
dictionary. Checked in the file's own metadata, on real ZTF samples.
"""

from __future__ import annotations

from pathlib import Path

import fastavro
import pyarrow.parquet as pq

from fink_client import codec
from fink_client.io import ParquetWriter

SAMPLES = Path(codec.__file__).resolve().parent / "data" / "samples" / "ztf" / "fink"


def _chunks(path: Path) -> dict[str, object]:
    meta = pq.read_metadata(path)
    group = meta.row_group(0)
    return {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}


def _samples() -> tuple[list[dict], dict]:
    alerts, schema = [], None
    for path in sorted(SAMPLES.glob("*.avro")):
        with open(path, "rb") as fh:
            reader = fastavro.reader(fh)
            schema = reader.writer_schema
            alerts.extend(reader)
    assert schema is not None
    return alerts, schema


def test_each_kind_of_column_gets_its_options(tmp_path: Path) -> None:
    alerts, schema = _samples()
    [path] = ParquetWriter(tmp_path, schema).write(alerts)
    chunks = _chunks(path)

    def dictionary(name: str) -> bool:
        return any("DICTIONARY" in e for e in chunks[name].encodings)

    cutout = chunks["cutoutScience.stampData"]
    assert cutout.compression == "UNCOMPRESSED" and not dictionary("cutoutScience.stampData")
    assert not cutout.is_stats_set and chunks["candidate.jd"].is_stats_set
    history = [n for n in chunks if n.startswith("prv_candidates.")]
    assert history and not any(chunks[n].is_stats_set for n in history)
    assert chunks["prv_candidates.list.element.jd"].compression == "SNAPPY"
    for name in ("candidate.jd", "candidate.ra"):  # double
        assert chunks[name].compression == "SNAPPY" and not dictionary(name), name
    for name in ("candidate.magpsf", "prv_candidates.list.element.magpsf"):  # float
        assert chunks[name].compression == "UNCOMPRESSED" and not dictionary(name), name
    for name in ("objectId", "candidate.fid", "candidate.candid"):  # string, int, long
        assert chunks[name].compression == "SNAPPY" and dictionary(name), name
    assert pq.read_table(path).num_rows == len(alerts)


def test_a_codec_chosen_for_size_compresses_the_floats_too(tmp_path: Path) -> None:
    alerts, schema = _samples()
    [path] = ParquetWriter(tmp_path, schema, compression="zstd").write(alerts)
    chunks = _chunks(path)
    for name in ("candidate.magpsf", "prv_candidates.list.element.magpsf", "candidate.jd"):
        assert chunks[name].compression == "ZSTD", name
    assert chunks["cutoutScience.stampData"].compression == "UNCOMPRESSED"
