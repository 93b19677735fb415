"""A transfer batch split into folders (``--partition-by``): the views of its bytes
columns are copied at most once for the whole batch (``transfer_worker.shared_copy``),
and every folder's file holds exactly its rows."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import pyarrow.dataset as ds

from fink_client import schemas
from fink_client.arrowbatch import BatchDecoder
from fink_client.io import arrow
from fink_client.transfer_worker import BatchWriter, Job, shared_copy
from tests.helpers import needs_c, same, synthetic_payloads

SCHEMA = schemas.load("avro_schema_ftransfer_ztf_2026-03-23")
PAYLOADS = synthetic_payloads(SCHEMA, 40, seed=11)


def _views():
    table, errors = BatchDecoder(SCHEMA, views=True).decode_valid(PAYLOADS)
    assert not errors and arrow.has_binary_views(table.schema)
    return table


@needs_c
def test_runs_of_rows_keep_the_views_uncopied() -> None:
    table = _views()
    assert shared_copy(table, [list(range(0, 25)), list(range(25, 40))]) is table
    assert shared_copy(table, [list(range(40))]) is table


@needs_c
def test_interleaved_folders_get_one_copy_with_the_same_values() -> None:
    table = _views()
    copied = shared_copy(table, [list(range(0, 40, 2)), list(range(1, 40, 2))])
    assert copied is not table and not arrow.has_binary_views(copied.schema)
    same(copied.to_pylist(), table.to_pylist())


def test_a_table_without_views_is_left_as_it_is() -> None:
    table = BatchDecoder(SCHEMA).decode(PAYLOADS)  # binary columns, no views
    assert not arrow.has_binary_views(table.schema)
    assert shared_copy(table, [[0, 2], [1, 3]]) is table


@needs_c
def test_each_folder_holds_exactly_its_interleaved_rows() -> None:
    out = tempfile.mkdtemp()
    job = Job(topic="ftransfer_ztf_t", config={}, out=out, fmt="parquet",
              partition_by="candidate.fid", schema=SCHEMA, ends={}, batch_size=1000,
              dead_letter=None, limit=None)
    writer = BatchWriter(job)
    writer.prepare()
    alerts, files, _ = writer.write(0, [(i, v, None) for i, v in enumerate(PAYLOADS)])
    source = BatchDecoder(SCHEMA).decode(PAYLOADS).to_pylist()
    fids = [a["candidate"]["fid"] for a in source]
    assert alerts == 40 and files == len(set(fids)) > 1
    changes = sum(1 for a, b in itertools.pairwise(fids) if a != b)
    assert changes > len(set(fids)) - 1  # the folders' rows interleave
    got = ds.dataset(Path(out), format="parquet").to_table()
    key = {a["candidate"]["candid"]: a for a in source}
    assert got.num_rows == 40
    for row in got.drop_columns([c for c in got.column_names
                                 if c not in source[0]]).to_pylist():
        same(row, key[row["candidate"]["candid"]])
