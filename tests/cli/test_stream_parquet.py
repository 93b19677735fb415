"""``finkctl stream --save --format parquet`` from the message bytes, on the real broker.

With the C extension, schemaless Fink values are validated by the consumer and their
columns built by the C batch decoder (no alert dicts); with ``FINK_CLIENT_NO_FASTPATH=1``
they are decoded to dicts and converted by :mod:`fink_client.io.arrow`. Both write the
same files: same names, same Arrow schema (metadata included), equal tables (NaN equal
to NaN: LSST alerts hold NaNs, which ``Table.equals`` calls unequal).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fink_client.consumer import AlertConsumer
from fink_client.sink import DiskSink
from fink_client.streamloop import stream
from tests.cli.test_stream_passthrough import FINK, LSST, _config, _messages
from tests.faults.helpers import publish_spread
from tests.unit.test_arrow_decode import assert_same_batch

pytestmark = pytest.mark.integration


def _save(kafka, topic: str, out: Path, n: int) -> DiskSink:
    consumer = AlertConsumer([topic], _config(kafka, f"g-{uuid.uuid4().hex[:6]}"),
                             auto_store=False)
    try:
        sink = DiskSink(consumer, out, "parquet", batch_size=4)
        stats = stream(consumer, sink=sink, limit=n)
    finally:
        consumer.close()
    assert stats.count == n
    return sink


@pytest.mark.parametrize("folder", [FINK, LSST], ids=["ztf", "lsst"])
def test_arrow_path_writes_the_files_of_the_dict_path(
        kafka, tmp_path: Path, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    topic = kafka.create_topic(f"pq-{uuid.uuid4().hex[:6]}")
    messages, records = _messages(folder)
    publish_spread(messages, topic, kafka.admin_servers, 1)

    fast = _save(kafka, topic, tmp_path / "fast", len(messages))
    assert fast.passthrough_alerts == len(messages)  # no dict was built for any of them
    monkeypatch.setenv("FINK_CLIENT_NO_FASTPATH", "1")
    slow = _save(kafka, topic, tmp_path / "slow", len(messages))
    assert slow.passthrough_alerts == 0

    assert [p.name for p in fast.files] == [p.name for p in slow.files]
    assert len(fast.files) == -(-len(messages) // 4)  # --batch-size rotation kept
    for a, b in zip(fast.files, slow.files, strict=True):
        assert_same_batch(pq.read_table(a), pq.read_table(b))  # NaN == NaN, same nulls
    rows = [r for p in fast.files for r in pq.read_table(p).to_pylist()]
    assert len(rows) == len(records)
