"""The disk sink of ``finkctl stream --save``: alerts to Avro, Parquet or JSON files.

The stream loop itself lives in :mod:`fink_client.streamloop` (re-exported here).

Delivery rule (README "Delivery guarantees"): alerts are buffered, written to a file by
the writers of :mod:`fink_client.io` (temporary name, flush, fsync, rename), and only
*then* are their offsets stored and committed. The consumer runs with
``auto_store=False`` so nothing is committed implicitly.

Each delivery carries the writer schema its value was decoded with (whatever the wire
format: schema in the key, Avro container, Confluent id, data-transfer side topic), so
every message that decodes can be written in every format. An alert the writer refuses
(it does not match its schema: :class:`SchemaError` naming the field) goes to the
dead-letter folder when there is one, and the rest of its batch is written; without
one, the run stops with that error and nothing of the batch is stored.

Avro pass-through files are written by a background thread while the stream loop reads
the next batch: one batch in flight at most, its offsets stored by the loop's thread
once its files are renamed and fsynced. A second Ctrl-C removes its temporary file at
once (:func:`fink_client.io.atomic.remove_open_temps`, then exit; :meth:`DiskSink.abort`
in a program); an error in it is raised by the next call and stores nothing of its
batch.

Killed at any moment, a rerun with the same group gets again at most the alerts of the
files not yet committed (the batch being read, the one in the background writer, plus
what the last 5 s auto-commit had not sent); a file already written for them is left as
it is and the rerun writes them under a new, equally deterministic name.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fink_client.consumer import AlertConsumer, Delivery
from fink_client.errors import ConfigError, SchemaError
from fink_client.io.atomic import clean_stale_temps, remove_open_temps
from fink_client.io.background import BackgroundWriter, result
from fink_client.streamloop import TP, Sink, StreamStats, drained, read_up_to, stream
from fink_client.wire import schema_from_key

log = logging.getLogger(__name__)

FORMATS = ("avro", "parquet", "json")


def _arrow_in_c() -> bool:
    """True when Parquet batches can be built in C from the bytes (the extension is
    built and ``FINK_CLIENT_NO_FASTPATH`` is not set)."""
    from fink_client import fastdecode

    return fastdecode.available() and not os.environ.get("FINK_CLIENT_NO_FASTPATH")


def _from_bytes(fmt: str, passthrough: bool | None) -> bool:
    """True when files of ``fmt`` are built from the message bytes, with no alert dicts:
    Avro by pass-through (``passthrough``; by default unless ``FINK_CLIENT_NO_FASTPATH``
    is set, the switch that puts every path back on fastavro and dicts), Parquet by the
    C batch decoder when it is built."""
    if fmt == "avro":
        if passthrough is None:
            return not os.environ.get("FINK_CLIENT_NO_FASTPATH")
        return passthrough
    return fmt == "parquet" and _arrow_in_c()


def check_folder(folder: str | Path) -> Path:
    """Create ``folder`` if needed and prove it is writable, before consuming anything.

    Raises :class:`ConfigError` naming the folder and the reason otherwise.
    """
    path = Path(folder).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".finkctl-probe-{time.time_ns()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"cannot write into {str(path)!r}: {exc.strerror or exc}; choose a writable "
            "folder for --save",
            path=str(path),
        ) from None
    return path


@dataclass
class _InFlight:
    """A batch in the background writer: its result, its cancel flag, the offsets to
    store once it is done and how many alerts it holds."""

    future: Future[list[Path]]
    cancelled: threading.Event
    upto: dict[TP, int]
    count: int


class DiskSink:
    """Write deliveries into files of one format; store their offsets once durable.

    ``add`` buffers; a file is written when ``batch_size`` alerts are buffered or the
    oldest buffered alert is ``max_age`` seconds old, and on :meth:`flush`; no file holds
    more than ``batch_size`` alerts. ``schema`` (a schema dict, ``--schema``) is used for
    every alert; otherwise each delivery's own schema (from the decoder). ``dead_letter``
    (a :class:`~fink_client.io.deadletter.DeadLetter`) keeps alerts the writer refuses.

    ``passthrough`` (Avro): ``None`` (default) copies schemaless values into the files
    undecoded (:mod:`fink_client.io.avro_passthrough`, the same files as through dicts)
    unless ``FINK_CLIENT_NO_FASTPATH`` is set; ``False`` forces decoded dicts and the
    fastavro writer, ``True`` the pass-through.
    """

    def __init__(
        self,
        consumer: AlertConsumer,
        folder: str | Path,
        fmt: str,
        *,
        schema: dict[str, Any] | None = None,
        batch_size: int = 1000,
        max_age: float = 10.0,
        writer_options: Mapping[str, Any] | None = None,
        png_folder: str | Path | None = None,
        dead_letter: Any = None,
        passthrough: bool | None = None,
    ) -> None:
        if fmt not in FORMATS:
            raise ConfigError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        self.consumer = consumer
        self.folder = check_folder(folder)
        self.format = fmt
        self.batch_size = batch_size
        self.max_age = max_age
        self._schema = schema
        self._writer_options = {"max_records": batch_size, **(writer_options or {})}
        self._writer_obj: Any = None
        self._schemas: dict[bytes, dict[str, Any] | None] = {}
        self.dead_letter = dead_letter
        self.rejected = 0
        self._buffer: list[Delivery] = []
        self._since: float | None = None
        self.files: list[Path] = []
        self.written = 0
        self.failed = False
        self.png_folder = check_folder(png_folder) if png_folder is not None else None
        if self.png_folder is not None:
            clean_stale_temps(self.png_folder)
        self.pngs: list[Path] = []
        # From the bytes (_from_bytes): the consumer validates each schemaless value (a
        # bad one is dead-lettered or raised there, never reaching the sink); Avro frames
        # the bytes into the file (_write_raw), Parquet builds its columns in C
        # (_write_arrow). PNGs need the decoded alerts.
        self.raw = self.png_folder is None and _from_bytes(fmt, passthrough)
        self._raw_writer_obj: Any = None
        # Avro pass-through files are written by a background thread while the next
        # batch is read (fink_client.io.background), one batch in flight at most, its
        # offsets stored here once its files are durable: that write is system calls
        # that release the GIL. Not Parquet: its C batch decoder holds the GIL, and in a
        # thread the save ran slower (4,100-4,700 against 5,400 alerts/s, ZTF); building
        # the tables here and only writing them there (pyarrow releases the GIL) was no
        # faster either: 5,600-6,300 against 5,900-6,800 in line, 10 % more CPU, 20,000
        # ZTF alerts, load ~1 on the 2 cores (tried and reverted). Not with
        # a consumer that stores offsets itself at each call: it would store them while
        # the file is being written.
        background = self.raw and fmt == "avro" and not consumer.auto_store
        self._background = BackgroundWriter() if background else None
        self._inflight: _InFlight | None = None
        self._submitted: dict[TP, int] = {}  # delivered positions at the last submission
        self.passthrough_alerts = 0  # written without alert dicts (Avro or Parquet)

    def _schema_of(self, d: Delivery) -> dict[str, Any] | None:
        if self._schema is not None:
            return self._schema
        if d.schema is not None:
            return d.schema
        key = d.key
        if key is None:
            return None
        if key not in self._schemas:
            try:
                self._schemas[key] = schema_from_key(key)
            except SchemaError:
                self._schemas[key] = None
        return self._schemas[key]

    def _writer(self) -> Any:
        if self._writer_obj is None:
            from fink_client.io import open_writer

            self._writer_obj = open_writer(self.format, self.folder, self._schema,
                                           **self._writer_options)
        return self._writer_obj

    def add(self, deliveries: Sequence[Delivery]) -> list[Path]:
        """Buffer ``deliveries``; write files if the batch is full or old. Returns the
        files that became durable (their offsets stored) during this call: with a
        background writer, those of the batch submitted before."""
        if deliveries and self._since is None:
            self._since = time.monotonic()
        self._buffer.extend(deliveries)
        done = self._collect(wait=False)
        if len(self._buffer) >= self.batch_size or (
            self._since is not None and time.monotonic() - self._since >= self.max_age
        ):
            if self._background is None:
                return done + self.flush()
            done += self._collect()  # one batch in flight at most
            self._submit()
        return done

    def flush(self, *, only_written: bool = False) -> list[Path]:
        """Write every buffered alert durably, then store their offsets; return new files.

        The batch in the background writer, if any, is waited for first (and its
        offsets stored). Alerts are grouped by topic, partition and schema, in offset
        order. Offsets are stored only after every file of the batch is durable, so a
        failure here (disk full...) leaves them uncommitted: they are read again on the
        next run. Normally everything handed out so far is stored (dead-lettered
        messages are durable in their folder too); ``only_written`` stores just the
        written alerts' offsets, for a stop on an undecodable message that was *not*
        kept anywhere.
        """
        new = self._collect()
        if not self._buffer:
            self._since = None
            return new
        try:
            written = self._write_groups(self._groups(self._buffer))
        except BaseException:
            self.failed = True  # nothing stored: these alerts are read again next run
            raise
        if self.png_folder is not None:
            self._render_pngs()
        if only_written:
            upto: dict[TP, int] = {}
            for d in self._buffer:
                upto[(d.topic, d.partition)] = max(upto.get((d.topic, d.partition), 0),
                                                   d.offset + 1)
            self.consumer.store_delivered(upto)
        else:
            self.consumer.store_delivered()
        self.written += len(self._buffer)
        self._buffer.clear()
        self._since = None
        self.files.extend(written)
        return new + written

    def _groups(self, batch: list[Delivery]) -> list[tuple[str, int, Any, list[Delivery]]]:
        """``batch`` as ``(topic, partition, schema, deliveries in offset order)``: one
        group per partition and schema (a delivery's schema dict is shared by every
        message of that schema, so its id() identifies it within the batch)."""
        groups: dict[tuple[str, int, int], tuple[Any, list[Delivery]]] = {}
        for d in batch:
            schema = self._schema_of(d)
            groups.setdefault((d.topic, d.partition, id(schema)), (schema, []))[1].append(d)
        return [(topic, partition, schema, sorted(items, key=lambda d: d.offset))
                for (topic, partition, _), (schema, items) in groups.items()]

    def _write_groups(self, groups: list[tuple[str, int, Any, list[Delivery]]],
                      cancelled: threading.Event | None = None) -> list[Path]:
        """Write every group durably (in the caller's thread); return the files."""
        new: list[Path] = []
        for topic, partition, schema, items in groups:
            if cancelled is not None and cancelled.is_set():
                raise CancelledError("the sink was aborted")
            new.extend(self._write_group(topic, partition, schema, items))
        return new

    def _submit(self) -> None:
        """Hand the buffered batch to the background writer. Its offsets to store once
        it is done: how far the consumer has handed out messages now (every alert since
        the last submission is in the batch; the messages it dead-lettered are durable
        in their folder), for the partitions that moved since then."""
        assert self._background is not None and self._inflight is None
        batch, self._buffer, self._since = self._buffer, [], None
        groups = self._groups(batch)
        now = self.consumer.delivered_positions()
        upto = {tp: o for tp, o in now.items() if o > self._submitted.get(tp, -1)}
        self._submitted = now
        cancelled = threading.Event()
        future = self._background.submit(lambda: self._write_groups(groups, cancelled))
        self._inflight = _InFlight(future, cancelled, upto, len(batch))

    def _collect(self, *, wait: bool = True) -> list[Path]:
        """The files of the background write once it is done (waiting for it unless not
        ``wait``), after storing its offsets; ``[]`` while it runs or if there is none.
        Its error (disk full...) is raised here, and nothing of its batch is stored."""
        job = self._inflight
        if job is None or (not wait and not job.future.done()):
            return []
        self._inflight = None
        try:
            new = result(job.future)
        except BaseException:
            self.failed = True
            raise
        self.consumer.store_delivered(job.upto)
        self.written += job.count
        self.files.extend(new)
        return new

    def abort(self) -> None:
        """Give up now (a second Ctrl-C in a program): the background write in flight,
        if any, has its temporary file removed at once and its offsets are never stored
        (a file it already renamed is complete; its alerts come again as duplicates).
        The buffered alerts are not written."""
        self.failed = True
        job, self._inflight = self._inflight, None
        if self._background is None:
            return
        if job is not None:
            job.cancelled.set()  # no further file of the batch is started
            job.future.cancel()  # not started yet: never runs
            if self._background.ident is not None:
                remove_open_temps(self._background.ident)
        self._background.close()

    def _write_group(self, topic: str, partition: int, schema: Any,
                     items: list[Delivery]) -> list[Path]:
        """Write one partition's alerts of one schema; dead-letter those it refuses."""
        if schema is None and self.format != "json":
            raise SchemaError(
                f"no Avro schema known for these messages, cannot write {self.format} "
                "files: give one with --schema FILE, or use --format json",
                topic=topic, partition=partition, offset=items[0].offset,
            )
        passed = [d for d in items if d.alert is None]
        if passed:  # validated raw values: Avro copies them, Parquet decodes them to Arrow
            items = [d for d in items if d.alert is not None]
            write_raw = self._write_arrow if self.format == "parquet" else self._write_raw
            return write_raw(topic, partition, schema, passed) + (
                self._write_group(topic, partition, schema, items) if items else [])
        writer = self._writer()
        try:
            return [Path(p) for p in writer.write(
                [d.alert for d in items], topic=topic, partition=partition,
                offsets=[d.offset for d in items], schema=schema) or []]
        except SchemaError as exc:
            bad = writer.check([d.alert for d in items], schema) if schema is not None else []
            if self.dead_letter is None or not bad:
                raise exc from None
        refused = {i for i, _ in bad}
        for i, err in bad:
            d = items[i]
            self.dead_letter.write(d.value, d.key, SchemaError(
                err.reason, topic=d.topic, partition=d.partition, offset=d.offset,
                field=err.field))
            self.rejected += 1
            log.warning("dead-lettered %s partition %d offset %d: %s", d.topic, d.partition,
                        d.offset, err.reason)
        rest = [d for i, d in enumerate(items) if i not in refused]
        return self._write_group(topic, partition, schema, rest) if rest else []

    def _write_raw(self, topic: str, partition: int, schema: Any,
                   items: list[Delivery]) -> list[Path]:
        if self._raw_writer_obj is None:
            from fink_client.io.avro_passthrough import RawAvroWriter

            self._raw_writer_obj = RawAvroWriter(self.folder, **self._writer_options)
        paths = self._raw_writer_obj.write(
            [d.value for d in items], schema, topic=topic, partition=partition,
            offsets=[d.offset for d in items], validate=False)  # the consumer validated
        self.passthrough_alerts += len(items)
        return paths

    def _write_arrow(self, topic: str, partition: int, schema: Any,
                     items: list[Delivery]) -> list[Path]:
        """Parquet files of validated raw values, their columns built by the C batch
        decoder (:mod:`fink_client.arrowbatch`), no alert dicts. A group it cannot
        build (no Arrow type for the schema, a value that does not fit) goes through
        decoded dicts instead: the writer's own errors then name the field, and
        :meth:`_write_group` dead-letters or raises exactly as without the C path."""
        from fink_client.arrowbatch import batch_decoder
        from fink_client.wire import decode

        values = [d.value or b"" for d in items]  # raw deliveries always have a value
        try:
            table, errors = batch_decoder(schema, views=True).decode_valid(values)
        except SchemaError:  # e.g. a union of several types: no Arrow type
            table, errors = None, []
        if table is None or errors:
            return self._write_group(topic, partition, schema, [
                d._replace(alert=decode(v, d.key, schema=schema))
                for d, v in zip(items, values, strict=True)])
        paths: list[Path] = self._writer().write_table(
            table, topic=topic, partition=partition, offsets=[d.offset for d in items],
            sizes=[len(v) for v in values], schema=schema)
        self.passthrough_alerts += len(items)
        return paths

    def _render_pngs(self) -> None:
        """One summary PNG per buffered alert (after its data file is durable).

        A picture is a view, not the data: an alert that cannot be drawn is logged and
        the stream goes on (the alert itself is already saved).
        """
        from fink_client.viz import save_summary_png

        folder = self.png_folder
        if folder is None:
            return
        for d in self._buffer:
            if d.alert is None:  # not decoded (pass-through): there is no PNG sink then
                continue
            try:
                self.pngs.append(save_summary_png(d.alert, folder))
            except Exception as exc:
                log.warning("no PNG for %s partition %d offset %d: %s", d.topic, d.partition,
                            d.offset, exc)

    def close(self, *, only_written: bool = False) -> None:
        """Flush (see :meth:`flush`), then close the writers."""
        try:
            if not self.failed:
                self.flush(only_written=only_written)
        finally:
            if self._background is not None:
                self._background.close()
            if self._writer_obj is not None:
                self._writer_obj.close()
                self._writer_obj = None


__all__ = ["FORMATS", "DiskSink", "Sink", "StreamStats", "check_folder", "drained", "read_up_to",
           "stream"]
