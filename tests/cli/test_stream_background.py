"""The Avro pass-through's background writer, on the real broker: the file of a batch is
written by a thread while the next batch is read, and yet

* an offset is stored only once every file holding its alert is renamed and fsynced
  (checked at the very moment of each store, against the files on disk), and nothing
  is stored while a write is in flight;
* a write that fails (disk full) is raised by the loop, stores nothing of its batch and
  leaves no temporary file, while the batch before it stays committed;
* a KeyboardInterrupt (a second Ctrl-C in a program) during a write removes its
  temporary file at once, stores nothing more, and the write never renames a file.

``finkctl``'s own second Ctrl-C and ``kill -9`` during a background write are in
``test_stream_interrupts.py``.
"""

from __future__ import annotations

import re
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from fink_client.consumer import AlertConsumer
from fink_client.io import AlertReader
from fink_client.io import avro_passthrough as passthrough
from fink_client.offsets import OffsetsClient
from fink_client.sink import DiskSink
from fink_client.streamloop import stream
from fink_client.survey import alert_id
from tests.cli.test_stream_passthrough import FINK, LSST, _config, _messages
from tests.faults.helpers import publish_spread
from tests.helpers import drain

pytestmark = pytest.mark.integration

_NAME = re.compile(r"-p(\d+)-o(\d+)-(\d+)(~\d+)?\.avro$")


def _on_disk(folder: Path) -> set[tuple[int, int]]:
    """``(partition, offset)`` of every alert in a finished file (from the file names)."""
    out = set()
    for path in folder.glob("*.avro"):
        m = _NAME.search(path.name)
        assert m, path.name
        out.update((int(m[1]), o) for o in range(int(m[2]), int(m[3]) + 1))
    return out


def _temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp")) if folder.exists() else []


def _committed(kafka, group: str, topic: str) -> int | None:
    oc = OffsetsClient(_config(kafka, group))
    try:
        [p] = oc.describe([topic])
    finally:
        oc.close()
    return p.committed


class _Stores:
    """Spy on ``consumer.store_delivered``: at each call, every offset it stores must be
    in a finished file (or be one the consumer itself handed out to nobody)."""

    def __init__(self, consumer: AlertConsumer, folder: Path) -> None:
        self.calls: list[dict | None] = []
        self.early: list[str] = []
        real = consumer.store_delivered

        def spy(offsets: dict | None = None) -> None:
            upto = offsets if offsets is not None else consumer.delivered_positions()
            on_disk = _on_disk(folder)
            for (_topic, partition), end in upto.items():
                missing = [o for o in range(end) if (partition, o) not in on_disk]
                if missing:
                    self.early.append(f"partition {partition} stored up to {end} with "
                                      f"offsets {missing[:5]} not in a finished file")
            self.calls.append(offsets)
            real(offsets)

        consumer.store_delivered = spy  # type: ignore[method-assign]


def _gate(monkeypatch: pytest.MonkeyPatch, *, block: int | None = None,
          fail: int | None = None) -> tuple[threading.Event, threading.Event]:
    """Make file number ``block`` (1-based) wait for the returned ``release`` event once
    its temporary file is open (``writing`` is set then), file number ``fail`` raise a
    full disk."""
    writing, release = threading.Event(), threading.Event()
    real = passthrough.write_container
    count = [0]

    def gated(fh: Any, *args: Any, **kw: Any) -> int:
        count[0] += 1
        if count[0] == fail:
            raise OSError(28, "No space left on device")
        if count[0] == block:
            writing.set()
            assert release.wait(60), "the test never released the write"
        return real(fh, *args, **kw)

    monkeypatch.setattr(passthrough, "write_container", gated)
    return writing, release


def test_offsets_are_stored_only_once_their_file_is_durable(
        kafka, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    topic = kafka.create_topic(f"bg-{uuid.uuid4().hex[:6]}", partitions=2)
    messages, records = _messages(FINK, LSST)
    publish_spread(messages, topic, kafka.admin_servers, 2)
    group, out = f"g-{uuid.uuid4().hex[:6]}", tmp_path / "out"
    writing, release = _gate(monkeypatch, block=1)
    seen: dict[str, Any] = {}

    def while_blocked() -> None:  # the first file is being written: look, then let it go
        if writing.wait(60):
            seen.update(stores=len(stores.calls), temps=_temps(out), files=_on_disk(out))
        release.set()

    consumer = AlertConsumer([topic], _config(kafka, group), auto_store=False)
    try:
        sink = DiskSink(consumer, out, "avro", batch_size=2)
        assert sink._background is not None  # the path under test
        stores = _Stores(consumer, out)
        watcher = threading.Thread(target=while_blocked)
        watcher.start()
        stats = stream(consumer, sink=sink, limit=len(messages))
        watcher.join()
    finally:
        consumer.close()
    assert seen["stores"] == 0 and seen["files"] == set() and seen["temps"], seen
    assert stores.early == []
    assert len(stores.calls) >= 2  # stored batch by batch, not only at the end
    assert stats.count == len(messages) and sink.written == len(messages)
    assert sorted(map(alert_id, AlertReader(out))) == sorted(map(alert_id, records))
    assert not _temps(out)
    again = AlertConsumer([topic], _config(kafka, group))
    try:
        assert drain(again, 1, timeout=5) == []  # everything was committed
    finally:
        again.close()


def test_failed_background_write_stores_nothing_of_its_batch(
        kafka, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    topic = kafka.create_topic(f"bgfail-{uuid.uuid4().hex[:6]}")
    messages, records = _messages(FINK)  # one schema: one file per batch of 2
    publish_spread(messages, topic, kafka.admin_servers, 1)
    group, out = f"g-{uuid.uuid4().hex[:6]}", tmp_path / "out"
    _gate(monkeypatch, fail=2)
    consumer = AlertConsumer([topic], _config(kafka, group), auto_store=False)
    try:
        sink = DiskSink(consumer, out, "avro", batch_size=2)
        stores = _Stores(consumer, out)
        with pytest.raises(OSError, match="No space"):
            stream(consumer, sink=sink, limit=len(messages))
    finally:
        consumer.close()
    assert stores.early == []
    assert _on_disk(out) == {(0, 0), (0, 1)} and not _temps(out)
    assert _committed(kafka, group, topic) == 2  # the first file's alerts, no more
    monkeypatch.undo()
    again = AlertConsumer([topic], _config(kafka, group))
    try:
        got = drain(again, len(messages) - 2)
    finally:
        again.close()
    assert sorted(alert_id(a) for _, a in got) == sorted(map(alert_id, records[2:]))


def test_keyboard_interrupt_during_a_background_write_removes_its_temp_file(
        kafka, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    topic = kafka.create_topic(f"bgint-{uuid.uuid4().hex[:6]}")
    messages, _ = _messages(FINK)
    publish_spread(messages, topic, kafka.admin_servers, 1)
    group, out = f"g-{uuid.uuid4().hex[:6]}", tmp_path / "out"
    writing, release = _gate(monkeypatch, block=1)
    jobs: list[Any] = []

    def interrupt(got: list, stats: Any) -> None:  # the status-line hook of the loop
        if writing.wait(30):  # the file of the first batch is being written
            jobs.append(sink._inflight)
            raise KeyboardInterrupt

    consumer = AlertConsumer([topic], _config(kafka, group), auto_store=False)
    try:
        sink = DiskSink(consumer, out, "avro", batch_size=2)
        stores = _Stores(consumer, out)
        with pytest.raises(KeyboardInterrupt):
            stream(consumer, sink=sink, limit=len(messages), on_alerts=interrupt)
        assert not _temps(out)  # removed at once, while the write is still in its thread
        release.set()
        [job] = jobs
        with pytest.raises(FileNotFoundError):  # its rename found no temporary file
            job.future.result(timeout=30)
    finally:
        release.set()
        consumer.close()
    assert stores.calls == [] and not list(out.glob("*.avro")) and not _temps(out)
    assert _committed(kafka, group, topic) is None
