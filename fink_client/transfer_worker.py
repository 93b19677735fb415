"""One worker process of ``finkctl transfer``: a member of the user's consumer group that
turns batches of raw Kafka values into durable, partitioned files, then commits them.

Delivery rule (at least once): for each partition, messages are cut into batches aligned
on offsets (``[k*B, (k+1)*B)`` for ``--batch-size B``, the last one ending at the end
offset taken at start). A batch is validated (every value decoded with the topic's
schema; an undecodable one goes to the dead-letter folder, never into a data file),
written as one file per Hive folder (temporary name, fsync, rename: see
:mod:`fink_client.io.atomic`), and only then is the offset after it committed, with a
synchronous commit. Nothing is ever auto-committed. (An asynchronous commit would also be
safe, since the file is durable before it is sent, so a commit lost to a crash or a
rebalance only makes the batch be read again and rewritten under the same name, kept if
identical; but a synchronous one costs ~5 ms per batch here, ~1% of a run, and lets the
command see the end exactly when the last commit is done, so it is kept.)

On a stop (Ctrl-C, the end, the death of the command) a worker finishes the file it is
writing and leaves: messages fetched but not yet written are simply read again by the
next run. A worker killed at any moment leaves at most the batch it was writing uncommitted; the
partition's next owner (another worker, or a rerun) reads that batch again. Because
batches are aligned on offsets, it writes the same file names: an identical file already
there is kept and not written twice, so a rerun after ``kill -9`` usually adds no
duplicate at all. Duplicates appear only when a batch was cut early (``--limit``); they
are bounded by one batch per partition the killed member held. A rebalance cuts nothing:
a member drops what it buffered of the partitions it loses (uncommitted, so read again
by their next owner) rather than hold the group's rebalance while writing it.

The step "batch of raw values -> files" is :class:`BatchWriter`. For a topic with one
schema (the data-transfer case) the raw values of a batch are validated by building one
Arrow table in C (:mod:`fink_client.arrowbatch`), which also gives each row's partition
folder; Parquet files are written from the table, Avro files frame the raw values without
re-encoding them. Other cases (values carrying their own schema, JSON lines) go through
alert dicts.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import logging
import multiprocessing
import os
import queue
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

from confluent_kafka import KafkaException, TopicPartition

from fink_client import config as _config
from fink_client._kafka import set_log_verbosity
from fink_client.errors import (
    AlertError,
    AuthenticationError,
    AuthorizationError,
    DecodeError,
    UnknownTopicError,
)
from fink_client.wire import CONTAINER_MAGIC

log = logging.getLogger(__name__)

#: librdkafka settings of the workers:
#:
#: - commits are ours only;
#: - a dead member's partitions move to the others within ~10 s (librdkafka's default
#:   is 45 s);
#: - a member learns of a rebalance (another worker joining) within 100 ms rather than
#:   3 s: until it rejoins, the newcomer has nothing to read (a heartbeat is a few bytes;
#:   :meth:`Worker._heartbeat` makes librdkafka actually send them that often).
#:
#: The fetch settings are :data:`fink_client.config.CLIENT_DEFAULTS` (a worker writing
#: files fills its prefetch queue: ``fetch.queue.backoff.ms`` there makes librdkafka
#: fetch again 20 ms after it drains, not 1 s; measured here with 1 s: 4,900-5,100
#: against 6,200-6,900 alerts/s).
WORKER_DEFAULTS: dict[str, Any] = {
    "enable.auto.commit": False,
    "session.timeout.ms": 10000,
    "heartbeat.interval.ms": 100,
}


def worker_kafka_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """librdkafka settings of a worker for the command's fink-client ``config``: the
    client's (:func:`fink_client.config.kafka_config`), then :data:`WORKER_DEFAULTS`
    where the user set nothing.

    A partition may also fill a whole fetch (``max.partition.fetch.bytes`` =
    ``fetch.max.bytes``, 64 MB by default, instead of the client's 16 MB) unless the
    user chose its size: a response then brings ~1,300 alerts of one partition, rather
    than ~340 of each of four, so the worker's batches (per partition) complete one after
    the other instead of all at once, and it holds fewer partial batches. Measured here,
    20,000 ZTF alerts, 2 workers, 7 interleaved runs: page faults per run (fresh memory,
    ~3 µs each on this machine) 187k against 228k (every run lower), CPU 159 against
    164 µs per alert (medians; wall time within the noise)."""
    kcfg = _config.kafka_config(config)
    kcfg.update({k: v for k, v in WORKER_DEFAULTS.items() if k not in config})
    if "max.partition.fetch.bytes" not in config:
        kcfg["max.partition.fetch.bytes"] = kcfg["fetch.max.bytes"]
    return kcfg


#: Modules a worker uses, imported once by the server that forks the workers
#: (:func:`fink_client.transfer.worker_context`) rather than by every worker.
WORKER_MODULES = (
    "confluent_kafka",
    "pyarrow.parquet",
    "fink_client.transfer_worker",
    "fink_client.arrowbatch",
    "fink_client.io.avro_passthrough",
    "fink_client.io.deadletter",
    "fink_client.io.direct",
    "fink_client.io.writers",
    "fink_client.partitioning",
)
# librdkafka's default (eager) assignment is kept: measured here, the cooperative-sticky
# protocol did not start a 2-worker run sooner (the second member still waits for a
# second rebalance round), and a group's members must all use one protocol, so a
# different choice would lock out other machines running older commands. A user may
# still set ``partition.assignment.strategy``: the rebalance callbacks handle both.


@dataclasses.dataclass(frozen=True)
class Job:
    """Everything a worker needs (picklable: it crosses to the worker process)."""

    topic: str
    config: dict[str, Any]  # fink-client user config (no logger object)
    out: str
    fmt: str
    partition_by: str
    schema: dict[str, Any] | None
    ends: dict[int, int]  # partition -> end offset taken at start
    batch_size: int
    dead_letter: str | None
    limit: int | None
    # the command's environment when it started the workers: a forked worker has the
    # one of the server that forked it, which may be older (see :func:`run`)
    environ: dict[str, str] | None = None


# -- batch of raw values -> files ------------------------------------------------------
class ArrowRow(Mapping[str, Any]):
    """Row ``index`` of an Arrow table of alerts, and the raw value it was decoded from,
    seen as an alert dict only if asked (a rerun comparing an existing file): writers
    take the table's rows (Parquet) or the raw values (Avro) as they are."""

    __slots__ = ("_dict", "index", "raw", "table")

    def __init__(self, table: Any, index: int, raw: bytes) -> None:
        self.table = table
        self.index = index
        self.raw = raw
        self._dict: dict[str, Any] | None = None

    def _alert(self) -> dict[str, Any]:
        if self._dict is None:
            from fink_client.io.arrow import to_alerts

            self._dict = to_alerts(self.table.slice(self.index, 1))[0]
        return self._dict

    def __getitem__(self, key: str) -> Any:
        return self._alert()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._alert())

    def __len__(self) -> int:
        return len(self._alert())


def row_indices(rows: list[int]) -> Any:
    """``rows`` as an int64 Arrow array for ``Table.take``, made from their bytes:
    ``pyarrow.array`` of a list imports pandas when it is installed (~0.2 s of a
    worker's start-up, which never needs pandas otherwise)."""
    import array

    import pyarrow as pa

    return pa.Array.from_buffers(pa.int64(), len(rows),
                                 [None, pa.py_buffer(array.array("q", rows))])


def shared_copy(table: Any, groups: Iterable[list[int]]) -> Any:
    """``table``, with its ``binary_view`` columns copied as ``binary`` once if some of
    ``groups`` (row numbers, one list per output folder) are not runs (consecutive).

    Why: the rows of a group that is not a run of the table are taken with a copy of the
    table's bytes columns (:func:`fink_client.io.arrow.take_rows`: Arrow has no ``take``
    for views), and doing that per folder copied every cutout of the batch once per
    folder (``--partition-by finkclass``: one per class in the batch)."""
    from fink_client.io import arrow as arrow_io

    if all(arrow_io.is_run(rows) for rows in groups):
        return table  # every folder's rows are a slice: no copy at all
    return arrow_io.as_binary(table)


def _arrow_parquet_writer(folder: Path, schema: Any) -> Any:
    """A :class:`~fink_client.io.writers.ParquetWriter` that writes :class:`ArrowRow`
    chunks straight from their table (decoded in C by :mod:`fink_client.arrowbatch`,
    never through dicts; a slice of the table when the chunk's rows follow each other). Names,
    column options, rerun checks and atomic writes are ParquetWriter's."""

    from fink_client.io.arrow import take_rows
    from fink_client.io.writers import ParquetWriter

    class _Writer(ParquetWriter):
        def _write_file(self, fh: Any, chunk: list[Any], schema_json: Any, stem: str) -> None:
            first = chunk[0] if chunk else None
            if not isinstance(first, ArrowRow) or not all(
                    isinstance(r, ArrowRow) and r.table is first.table for r in chunk):
                super()._write_file(fh, chunk, schema_json, stem)
                return
            # consecutive rows (all of them, most often) are a slice of it: no copy
            table = take_rows(first.table, row_indices([r.index for r in chunk]))
            super()._write_file(fh, table, schema_json, stem)

    return _Writer(folder, schema)


def _passthrough_avro_writer(folder: Path, schema: Any) -> Any:
    """An :class:`~fink_client.io.writers.AvroWriter` that frames the validated raw values
    of :class:`ArrowRow` chunks into container blocks (:mod:`fink_client.io.avro_passthrough`)
    instead of re-encoding dicts (fastavro's encoder costs ~4 ms per ZTF alert; framing
    costs nothing). Names, rerun checks and atomic writes are AvroWriter's.
    """
    from fink_client.io import avro_passthrough
    from fink_client.io.writers import AvroWriter

    prepared: dict[str, avro_passthrough.RawSchema] = {}

    class _Writer(AvroWriter):
        def _write_file(self, fh: Any, chunk: list[Any], schema_json: Any, stem: str) -> None:
            if not all(isinstance(a, ArrowRow) for a in chunk):
                super()._write_file(fh, chunk, schema_json, stem)
                return
            key = json.dumps(schema_json, sort_keys=True)
            raw = prepared.get(key)
            if raw is None:  # the header and validator of a schema, made once
                raw = prepared[key] = avro_passthrough.prepare(schema_json, self.codec)
            marker = hashlib.sha256(stem.encode()).digest()[:16]
            avro_passthrough.write_container(fh, raw, [a.raw for a in chunk],
                                             sync_marker=marker)

    return _Writer(folder, schema)


class BatchWriter:
    """Validate the raw values of one partition batch and write them as files.

    One file per Hive folder (from :class:`~fink_client.partitioning.Partitioner`),
    named ``<topic>-p<partition>-o<first>-<last>.<ext>`` by the writers of
    :mod:`fink_client.io`; a file with that name and the same alerts is kept as it is.
    """

    def __init__(self, job: Job) -> None:
        from fink_client.io.deadletter import DeadLetter
        from fink_client.partitioning import Partitioner
        from fink_client.wire import Decoder

        self.job = job
        self.out = Path(job.out)
        topic_schemas: dict[str, Any] | None = (
            {job.topic: job.schema} if job.schema is not None else None)
        self.decoder = Decoder(topic_schemas=topic_schemas)
        self.partitioner = Partitioner(job.partition_by, job.schema)
        self.dead = DeadLetter(job.dead_letter) if job.dead_letter else None
        self._writers: dict[str, Any] = {}
        self._schemas: dict[Any, dict[str, Any] | None] = {}
        self._arrow_cache: dict[str, Any] = {}

    def prepare(self) -> None:
        """Do now the one-time work of the first batch (the C decoder of the schema,
        Arrow's compute kernels, the Parquet column choices: ~30-50 ms once pyarrow is
        imported), so that it is not done while the worker holds partitions that wait
        for it. The worker calls it before joining the group, then waits for the other
        workers of its command (:meth:`Shared.start_together`). Nothing here imports
        pandas (``pyarrow.array`` of a list and ``Schema.empty_table`` would: ~0.2 s)."""
        if self.job.schema is None or self.job.fmt not in ("parquet", "avro"):
            return

        from fink_client.arrowbatch import batch_decoder
        from fink_client.io.arrow import as_binary

        empty, _ = batch_decoder(self.job.schema, views=True).decode_valid([])
        # the kernels of io.arrow.take_rows (a cast of the views, a take), loaded now
        as_binary(empty).take(row_indices([]))
        self.partitioner.folders(empty)
        if self.job.fmt == "parquet":
            from fink_client.io.writers import PARQUET_COMPRESSION, parquet_column_options

            parquet_column_options(empty.schema, PARQUET_COMPRESSION)

    def _writer(self, folder: str) -> Any:
        writer = self._writers.get(folder)
        if writer is None:
            from fink_client.io import open_writer

            path = self.out / folder if folder else self.out
            if self.job.fmt == "avro":
                writer = _passthrough_avro_writer(path, self.job.schema)
            elif self.job.fmt == "parquet":
                writer = _arrow_parquet_writer(path, self.job.schema)
            else:
                writer = open_writer(self.job.fmt, path, self.job.schema)
            if hasattr(writer, "_arrow"):  # one Avro->Arrow conversion for every folder
                writer._arrow = self._arrow_cache
            self._writers[folder] = writer
        return writer

    def schema_of(self, value: bytes | None, key: bytes | None) -> dict[str, Any] | None:
        """Schema of one message: the topic's, else the one the message carries."""
        if self.job.schema is not None or not value:
            return self.job.schema
        return message_schema(value, key, self._schemas)

    def decode(self, partition: int, msgs: list[tuple[int, bytes | None, bytes | None]]) -> list[
            tuple[int, dict[str, Any], dict[str, Any] | None]]:
        """``(offset, alert, schema)`` of each valid value; dead-letter the others.

        Raises :class:`DecodeError` for an undecodable value without a dead-letter folder.
        """
        good = []
        for offset, value, key in msgs:
            try:
                alert = self.decoder.decode(value, key, topic=self.job.topic,
                                            partition=partition, offset=offset)
            except DecodeError as exc:
                self._reject(DecodeError(exc.reason, raw_value=value, raw_key=key,
                                         topic=self.job.topic, partition=partition,
                                         offset=offset))
                continue
            good.append((offset, alert, self.schema_of(value, key)))
        return good

    def _schemaless(self, msgs: list[tuple[int, bytes | None, bytes | None]]) -> bool:
        """True when every value is the bare encoding of the topic's schema."""
        return self.job.schema is not None and all(
            value and not key and not value.startswith(CONTAINER_MAGIC)
            for _, value, key in msgs)

    def _reject(self, exc: DecodeError) -> None:
        if self.dead is None:
            raise DecodeError(
                f"{exc.reason}; give --dead-letter DIR to keep such messages aside and go on",
                raw_value=exc.raw_value, raw_key=exc.raw_key, topic=exc.topic,
                partition=exc.partition, offset=exc.offset) from None
        self.dead.write(exc.raw_value, exc.raw_key, exc)

    def write_arrow(self, partition: int, msgs: list[tuple[int, bytes | None, bytes | None]]
                    ) -> tuple[int, int, int]:
        """Validate the raw values by building one Arrow table in C (no dicts), dead-letter
        the bad ones, split the good rows by partition folder; Parquet files get the
        table's rows, Avro files the raw values themselves."""
        from fink_client.arrowbatch import batch_decoder

        assert self.job.schema is not None  # checked by _schemaless
        table, errors = batch_decoder(self.job.schema, views=True).decode_valid(
            [value for _, value, _ in msgs])
        bad = set()
        for err in errors:
            offset, value, key = msgs[err.index]
            bad.add(err.index)
            self._reject(DecodeError(err.reason, raw_value=value, raw_key=key,
                                     topic=self.job.topic, partition=partition, offset=offset))
        good = [(o, cast(bytes, v)) for i, (o, v, _) in enumerate(msgs) if i not in bad]
        groups: dict[str, list[int]] = {}
        for row, folder in enumerate(self.partitioner.folders(table)):
            groups.setdefault(folder, []).append(row)
        table = shared_copy(table, groups.values())
        alerts = files = size = 0
        for folder, rows in sorted(groups.items()):
            writer = self._writer(folder)
            before = writer.files_written
            paths = writer.write([ArrowRow(table, i, good[i][1]) for i in rows],
                                 topic=self.job.topic, partition=partition,
                                 offsets=[good[i][0] for i in rows], schema=self.job.schema)
            alerts += len(rows)
            if writer.files_written > before:
                files += len(paths)
                size += sum(p.stat().st_size for p in paths)
        return alerts, files, size

    def write(self, partition: int, msgs: list[tuple[int, bytes | None, bytes | None]]) -> tuple[
            int, int, int]:
        """Write one batch durably; return ``(alerts, files, bytes on disk)``."""
        if self.job.fmt in ("parquet", "avro") and self._schemaless(msgs):
            return self.write_arrow(partition, msgs)
        groups: dict[tuple[str, int], list[tuple[int, dict[str, Any], Any]]] = {}
        for offset, alert, schema in self.decode(partition, msgs):
            # schemas are shared objects (the topic's, or cached per key/id/header)
            groups.setdefault((self.partitioner(alert), id(schema)), []).append(
                (offset, alert, schema))
        alerts = files = size = 0
        for (folder, _), items in sorted(groups.items()):
            writer = self._writer(folder)
            before = writer.files_written
            paths = writer.write([a for _, a, _ in items], topic=self.job.topic,
                                 partition=partition, offsets=[o for o, _, _ in items],
                                 schema=items[0][2])
            alerts += len(items)
            if writer.files_written > before:  # not an identical file already there
                files += len(paths)
                size += sum(p.stat().st_size for p in paths)
        return alerts, files, size


def message_schema(value: bytes, key: bytes | None,
                   cache: dict[Any, dict[str, Any] | None]) -> dict[str, Any] | None:
    """The Avro schema a message carries: container header, Confluent id or key."""
    import io
    import struct

    import fastavro

    from fink_client import schemas
    from fink_client.wire import CONFLUENT_MAGIC, schema_from_key

    if value.startswith(CONTAINER_MAGIC):
        reader = fastavro.reader(io.BytesIO(value))
        text = reader.metadata.get("avro.schema", "")
        schema = cast("dict[str, Any]", reader.writer_schema)
        return cache.setdefault(("container", text), schema)
    if key:
        if key not in cache:
            cache[key] = schema_from_key(key)
        if cache[key] is not None:
            return cache[key]
    if value[:1] == bytes([CONFLUENT_MAGIC]) and len(value) > 5:
        (schema_id,) = struct.unpack(">I", value[1:5])
        if ("id", schema_id) not in cache:
            cache[("id", schema_id)] = schemas.by_id(schema_id)
        return cache[("id", schema_id)]
    return None


# -- the worker process ------------------------------------------------------------------
#: Seconds a prepared worker waits for the other workers of its command (start-up).
START_PATIENCE = 5.0

#: Seconds a worker's ``consume()`` may wait. librdkafka's batch consume returns when it
#: has the messages asked for *or* at the timeout, not when some are there: with 0.1 s, a
#: worker whose prefetch queue held fewer than 500 messages sat idle beside them, and it
#: saw the command's stop up to 0.1 s late (measured: 66-114 ms of a run's ~0.16 s tail).
#: 5 ms, 8 interleaved 2-worker runs each: 7,786 against 7,172 alerts/s (medians), CPU
#: per alert unchanged (161 against 163 µs).
CONSUME_WAIT = 0.005
#: ... and once nothing has come for :data:`IDLE_AFTER` seconds (its partitions read to
#: their end, or none assigned): waking every 5 ms costs an idle worker ~2 % of a CPU,
#: every 0.1 s ~0.2 % (measured here), and a stop is then seen within 0.1 s.
IDLE_WAIT = 0.1
IDLE_AFTER = 1.0

#: Errors of a fetch that no retry can cure: the worker stops and the command reports it.
_STOPPING_ERRORS = (AuthenticationError, AuthorizationError, UnknownTopicError)


class Shared:
    """Counters and flags shared by the workers and the parent (multiprocessing)."""

    def __init__(self, ctx: Any, workers: int = 1) -> None:
        self.stop = ctx.Event()
        self.lock = ctx.Lock()
        self.workers = workers  # started by this command (see :meth:`start_together`)
        self.ready = ctx.Value("q", 0, lock=False)  # of them, prepared to join the group
        self.reserved = ctx.Value("q", 0, lock=False)  # alerts taken towards --limit
        self.alerts = ctx.Value("q", 0, lock=False)
        self.payload = ctx.Value("q", 0, lock=False)  # bytes of Kafka values processed
        self.files = ctx.Value("q", 0, lock=False)
        self.disk = ctx.Value("q", 0, lock=False)
        self.dead = ctx.Value("q", 0, lock=False)
        self.errors = ctx.Queue()
        # A byte after each commit wakes the parent at once (see :meth:`changed`). A pipe,
        # not an Event: an Event's set() waits for its waiters, forever if one was killed.
        self._wake_r, self._wake_w = ctx.Pipe(duplex=False)

    def notify(self) -> None:
        """Tell the parent that something was committed (never blocks, never fails)."""
        try:
            os.set_blocking(self._wake_w.fileno(), False)
            os.write(self._wake_w.fileno(), b"\0")
        except OSError:  # full (the parent is behind anyway) or the parent is gone
            pass

    def changed(self, timeout: float) -> None:
        """Wait (in the parent) up to ``timeout`` seconds for a :meth:`notify`."""
        if self._wake_r.poll(timeout):
            while self._wake_r.poll(0):
                os.read(self._wake_r.fileno(), 65536)

    def start_together(self, patience: float = START_PATIENCE) -> None:
        """Wait (in a prepared worker) until every worker of this command is prepared, so
        that they join the group at the same moment; at most ``patience`` seconds, then
        go on (a worker that died or is slow must not hold the others back).

        Why: a worker joining a group whose first member already reads costs a rebalance
        (every partition revoked and assigned again) while that member is busy writing,
        and on 2 CPUs a member reading at full speed starves its peer's start-up: measured
        here, the second of two workers joined ~1 s after the first.
        """
        with self.lock:
            self.ready.value += 1
        deadline = time.monotonic() + patience
        while self.ready.value < self.workers and time.monotonic() < deadline:
            if self.stop.is_set():
                return
            time.sleep(0.005)

    def reserve(self, want: int, limit: int | None) -> int:
        """How many more messages this worker may take (``--limit`` is shared)."""
        with self.lock:
            if limit is None:
                return want
            take = max(0, min(want, limit - self.reserved.value))
            self.reserved.value += take
            return take

    def release(self, count: int) -> None:
        """Give back reserved messages that did not come."""
        if count > 0:
            with self.lock:
                self.reserved.value -= count

    def add(self, alerts: int, payload: int, files: int, disk: int, dead: int) -> None:
        """Count a durable batch."""
        with self.lock:
            self.alerts.value += alerts
            self.payload.value += payload
            self.files.value += files
            self.disk.value += disk
            self.dead.value += dead


class Worker:
    """Consume assigned partitions in aligned batches; write, then commit each batch."""

    def __init__(self, job: Job, shared: Shared) -> None:
        from fink_client import _kafka

        self.job = job
        self.shared = shared
        self.writer = BatchWriter(job)
        kcfg = worker_kafka_config(job.config)
        # Commits only what it wrote (enable.auto.commit off).
        self.timeout = _config.connect_timeout(job.config)
        self.client = _kafka.consumer(kcfg, timeout=self.timeout,
                                      on_transient=lambda err: log.debug("kafka: %s", err))
        self.consumer = self.client.kafka
        self.buffers: dict[int, list[tuple[int, bytes | None, bytes | None]]] = {}
        self.assigned: set[int] = set()
        self.paused: set[int] = set()
        self.command = CommandWatch()
        self._wake_every = int(kcfg.get("heartbeat.interval.ms", 3000)) / 1000
        self._next_wake = 0.0
        self._last_message = time.monotonic()  # see _wait()

    # -- batches -------------------------------------------------------------------
    def _boundary(self, partition: int, first: int) -> int:
        """Offset after the batch that starts at ``first`` (aligned, capped at the end)."""
        size = self.job.batch_size
        return min((first // size + 1) * size, self.job.ends.get(partition, 1 << 62))

    def _flush(self, partition: int, upto: int | None = None) -> None:
        """Write the buffered messages of ``partition`` below ``upto`` (all if None)."""
        buf = self.buffers.get(partition)
        if not buf:
            return
        cut = len(buf) if upto is None else sum(1 for o, _, _ in buf if o < upto)
        if cut == 0:
            return
        batch, self.buffers[partition] = buf[:cut], buf[cut:]
        dead_before = self.writer.dead.count if self.writer.dead else 0
        alerts, files, disk = self.writer.write(partition, batch)
        dead = (self.writer.dead.count if self.writer.dead else 0) - dead_before
        next_offset = batch[-1][0] + 1
        try:
            self.consumer.commit(offsets=[TopicPartition(self.job.topic, partition,
                                                         next_offset)], asynchronous=False)
        except KafkaException as exc:  # revoked meanwhile: its new owner reads it again
            log.info("commit of partition %d at %d failed: %s", partition, next_offset, exc)
        self.shared.add(alerts, sum(len(v or b"") for _, v, _ in batch), files, disk, dead)
        self.shared.notify()
        log.info("worker %d: partition %d offsets %d-%d: %d alerts, %d file(s), committed",
                 os.getpid(), partition, batch[0][0], batch[-1][0], alerts, files)

    def _stopping(self) -> bool:
        """Asked to stop, or the command died (kill -9): leave the rest for the next run."""
        return self.shared.stop.is_set() or self.command.gone()

    def _meet_coordinator(self) -> None:
        """Find and connect to the group's coordinator now (an offset query goes to it),
        not at the subscription: the workers then join within a millisecond of each
        other, and more often in the group's first round (measured: 3 of 8 runs against
        1 of 8), instead of the first one alone and a rebalance for the next. An error
        here is met again, typed, by the first fetch."""
        tps = [TopicPartition(self.job.topic, p) for p in sorted(self.job.ends)]
        try:
            self.consumer.committed(tps, timeout=self.timeout)
        except KafkaException as exc:
            log.debug("offset query before joining: %s", exc)

    def _flush_ready(self, partition: int) -> None:
        buf = self.buffers.get(partition)
        while buf and not self._stopping():
            boundary = self._boundary(partition, buf[0][0])
            if buf[-1][0] + 1 < boundary:
                return  # batch not complete yet
            self._flush(partition, boundary)
            buf = self.buffers.get(partition)

    def _drained(self, partition: int) -> bool:
        """True once the position reached the end taken at start (markers included)."""
        end = self.job.ends.get(partition)
        if end is None:
            return False
        try:
            pos = self.consumer.position([TopicPartition(self.job.topic, partition)])[0].offset
        except Exception:
            return False
        return pos >= end

    def _commit_end(self, partition: int) -> None:
        """Commit the end offset of a drained partition (steps over transaction markers)."""
        tp = TopicPartition(self.job.topic, partition, self.job.ends[partition])
        try:
            self.consumer.commit(offsets=[tp], asynchronous=False)
            self.consumer.pause([TopicPartition(self.job.topic, partition)])
            self.paused.add(partition)
            self.shared.notify()
        except KafkaException as exc:
            log.info("commit of drained partition %d failed: %s", partition, exc)

    def _heartbeat(self) -> None:
        """Wake librdkafka's main thread once per heartbeat interval.

        With the classic group protocol, heartbeats are sent only when that thread wakes
        (``rd_kafka_cgrp_serve``), and it sleeps up to a second while nothing asks it for
        anything: measured here, a busy worker's heartbeats went out ~0.5 s apart instead
        of every 100 ms, so the group's second round (the second worker's join) reached
        it ~0.5 s late. Asking for the assignment is a request to that thread: it wakes,
        and serves the group. Measured: the second assignment 0.12-0.2 s after the first
        instead of 0.5-0.57 s."""
        now = time.monotonic()
        if now >= self._next_wake:
            self._next_wake = now + self._wake_every
            self.consumer.assignment()

    def _wait(self) -> float:
        """How long the next ``consume()`` may wait (:data:`CONSUME_WAIT`)."""
        now = time.monotonic()
        if any(self.buffers.values()) or now - self._last_message < IDLE_AFTER:
            return CONSUME_WAIT
        return IDLE_WAIT

    # -- rebalance -----------------------------------------------------------------
    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        # eager protocol: every partition, after all were revoked; cooperative: the added ones
        added = {tp.partition for tp in partitions}
        self.assigned |= added
        self.paused -= added
        log.info("worker %d: assigned partitions %s (now %s)", os.getpid(), sorted(added),
                 sorted(self.assigned))

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        # Drop what is buffered of the revoked partitions: it is not committed, so their
        # next owner (maybe this worker again) reads it again. Writing it here instead
        # holds the whole group's rebalance for the time of writing up to a partial batch
        # per partition (measured: ~1 s when the second worker of a command joined) and
        # cuts those batches short (smaller files, duplicates if a kill follows).
        revoked = {tp.partition for tp in partitions}
        for partition in revoked:
            self.shared.release(len(self.buffers.pop(partition, ())))  # --limit: not taken
        self.assigned -= revoked
        self.paused -= revoked

    # -- loop ----------------------------------------------------------------------
    def run(self) -> None:
        """Consume until the parent says stop, then write what is buffered and leave."""
        from confluent_kafka import KafkaError as RdKafkaError

        # prepared first (imports, decoder: ~50 ms), then all of this command's workers
        # join at once (Shared.start_together)
        self.writer.prepare()
        self._meet_coordinator()
        self.shared.start_together()
        self.consumer.subscribe([self.job.topic], on_assign=self._on_assign,
                                on_revoke=self._on_revoke)
        # what exists now (modules, schema, decoder) lives as long as the worker: out of
        # the garbage collector's scans, which then see only the batches' objects
        gc.freeze()
        try:
            while not self._stopping():
                want = self.shared.reserve(500, self.job.limit)
                if want == 0:  # --limit reached: write what this worker took, then stop
                    for p in list(self.buffers):
                        self._flush(p)
                    break
                # consume() waits for ``want`` messages or the timeout: keep it short, so
                # that a partial batch (a partition's tail) or a stop is not waited on
                msgs = self.consumer.consume(num_messages=want, timeout=self._wait())
                self.client.raise_pending()  # authentication failures come by error_cb
                self._heartbeat()
                taken = 0
                ends, buffers = self.job.ends, self.buffers
                if msgs:
                    self._last_message = time.monotonic()
                for msg in msgs:
                    err = msg.error()
                    if err is not None:
                        if err.code() == RdKafkaError._PARTITION_EOF:
                            continue
                        typed = self.client.translate(err, topic=msg.topic(),
                                                      partition=msg.partition())
                        if err.fatal() or isinstance(typed, _STOPPING_ERRORS):
                            raise typed
                        log.debug("kafka: %s", err)  # transient: librdkafka retries
                        continue
                    part, off = msg.partition(), msg.offset()
                    if part is None or off is None or off >= ends.get(part, 1 << 62):
                        continue  # after the end taken at start: left for a later run
                    taken += 1
                    buf = buffers.get(part)
                    if buf is None:
                        buf = buffers[part] = []
                    buf.append((off, msg.value(), msg.key()))
                self.shared.release(want - taken)
                for p in list(self.buffers):
                    self._flush_ready(p)
                if not msgs:
                    for p in self.assigned - self.paused:
                        if self._drained(p):  # a batch cut short by a marker ends here
                            self._flush(p)
                            self._commit_end(p)
            if self.command.gone():
                log.warning("worker %d: the transfer command is gone; stopping", os.getpid())
        finally:
            self.consumer.close()


class CommandWatch:
    """Tells a worker whether the command that started it is still alive.

    Its end of a pipe from the command closes when the command dies, even by
    ``kill -9`` (multiprocessing's parent sentinel): a worker forked by the server of
    :func:`~fink_client.transfer.worker_context` is not the command's child, so its
    parent pid says nothing. Outside multiprocessing, the parent pid is watched."""

    def __init__(self) -> None:
        self.parent = multiprocessing.parent_process()
        self.parent_pid = os.getppid()

    def gone(self) -> bool:
        """True once the command is dead."""
        if self.parent is not None:
            return not self.parent.is_alive()
        return os.getppid() != self.parent_pid


def adopt_environment(environ: Mapping[str, str]) -> None:
    """Make ``environ`` this process's environment (a worker takes its command's: the
    server that forked it has the environment of the moment it started)."""
    os.environ.clear()
    os.environ.update(environ)


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse in this process (a worker: ours).

    By default glibc gives every allocation above 128 KB its own ``mmap`` and returns it
    on ``free``, and trims the heap's free top: librdkafka's fetch buffers (up to
    ``fetch.max.bytes``) and a batch of ~47 KB values are then faulted in afresh, page
    by page, for every fetch and every batch (page faults and zeroing were ~a third of
    a bare consume loop's CPU here: 46 -> 30 µs per ZTF alert with both kept). The
    worker's memory stays at its high-water mark instead, which a batch bounds.

    It also makes every thread allocate from the main arena (``M_ARENA_MAX`` 1): glibc's
    per-thread arenas unmap an emptied 64 MB heap whatever the trim threshold, so
    librdkafka's broker threads received every fetch into fresh pages (a fresh 4 KB page
    costs ~2 µs here). Measured on 20,000 ZTF alerts, 2 workers, 6 interleaved runs:
    9,258 vs 8,378 alerts/s, 143 vs 158 µs of CPU and 218k vs 290k page faults per run.
    Returns False where it does not apply (not glibc).
    """
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8  # <malloc.h>
    return bool(mallopt(m_trim_threshold, 1 << 30) and mallopt(m_mmap_threshold, 1 << 30)
                and mallopt(m_arena_max, 1))


def run(job: Job, shared: Shared, verbose: int = 0) -> None:
    """Entry point of a worker process: report a typed error to the parent, exit 1."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us with its event
    if job.environ is not None:  # the command's, not the one of the server that forked us
        adopt_environment(job.environ)
    keep_freed_memory()
    set_log_verbosity(verbose)
    try:
        Worker(job, shared).run()
    except AlertError as exc:
        _report(shared, exc)
        os._exit(1)
    except BaseException as exc:  # an unexpected bug: still tell the parent what it was
        _report(shared, AlertError(f"worker {os.getpid()} failed: {type(exc).__name__}: {exc}"))
        os._exit(1)
    # Every file is durable and committed, the consumer closed: skip the interpreter's
    # teardown (~0.3 s of module and thread clean-up the parent would wait for).
    logging.shutdown()
    os._exit(0)


def _report(shared: Shared, exc: AlertError) -> None:
    shared.stop.set()
    try:
        shared.errors.put(exc, timeout=5)
        shared.errors.close()
        shared.errors.join_thread()
    except (queue.Full, OSError, ValueError):
        pass

