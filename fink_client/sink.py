"""The streaming loop behind ``finkctl stream``, and its disk sink (``--save``).

Delivery rule (README "Delivery guarantees"): alerts are buffered, written to a file by
the writers of :mod:`fink_client.io` (temporary name, flush, fsync, rename), and only
*then* are their offsets stored and committed. The consumer runs with
``auto_store=False`` so nothing is committed implicitly. Killed at any moment, a rerun
with the same group gets again at most the alerts of the files not yet committed (one
batch per partition, plus what the last 5 s auto-commit had not sent); a file already
written for them is left as it is and the rerun writes them under a new, equally
deterministic name.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fink_client.consumer import AlertConsumer, Delivery
from fink_client.errors import ConfigError, SchemaError
from fink_client.wire import schema_from_key

log = logging.getLogger(__name__)

FORMATS = ("avro", "parquet", "json")
TP = tuple[str, int]


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


class DiskSink:
    """Write deliveries into files of one format; store their offsets once durable.

    ``add`` buffers; a file is written when ``batch_size`` alerts are buffered or the
    oldest buffered alert is ``max_age`` seconds old, and on :meth:`flush`. ``schema``
    (a schema dict) is used for every alert; otherwise a Fink message key holding the
    schema JSON gives it.
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
    ) -> None:
        if fmt not in FORMATS:
            raise ConfigError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        self.consumer = consumer
        self.folder = check_folder(folder)
        self.format = fmt
        self.batch_size = batch_size
        self.max_age = max_age
        self._schema = schema
        self._writer_options = dict(writer_options or {})
        self._writer_obj: Any = None
        self._schemas: dict[bytes, dict[str, Any] | None] = {}
        self._buffer: list[Delivery] = []
        self._since: float | None = None
        self.files: list[Path] = []
        self.written = 0
        self.failed = False
        self.png_folder = check_folder(png_folder) if png_folder is not None else None
        self.pngs: list[Path] = []

    def _schema_of(self, key: bytes | None) -> dict[str, Any] | None:
        if self._schema is not None or key is None:
            return self._schema
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
        """Buffer ``deliveries``; write (and return) files if the batch is full or old."""
        if deliveries and self._since is None:
            self._since = time.monotonic()
        self._buffer.extend(deliveries)
        if len(self._buffer) >= self.batch_size or (
            self._since is not None and time.monotonic() - self._since >= self.max_age
        ):
            return self.flush()
        return []

    def flush(self, *, only_written: bool = False) -> list[Path]:
        """Write every buffered alert durably, then store their offsets; return new files.

        Alerts are grouped by topic, partition and schema, in offset order. Offsets are
        stored only after every file of the batch is durable, so a failure here (disk
        full...) leaves them uncommitted: they are read again on the next run. Normally
        everything handed out so far is stored (dead-lettered messages are durable in
        their folder too); ``only_written`` stores just the written alerts' offsets, for
        a stop on an undecodable message that was *not* kept anywhere.
        """
        if not self._buffer:
            self._since = None
            return []
        groups: dict[tuple[str, int, bytes | None], list[Delivery]] = {}
        for d in self._buffer:
            key = d.key if self._schema is None and d.key is not None else None
            groups.setdefault((d.topic, d.partition, key), []).append(d)
        new: list[Path] = []
        try:
            for (topic, partition, key), items in groups.items():
                items.sort(key=lambda d: d.offset)
                paths = self._writer().write(
                    [d.alert for d in items], topic=topic, partition=partition,
                    offsets=[d.offset for d in items], schema=self._schema_of(key),
                )
                new.extend(Path(p) for p in paths or [])
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
        self.files.extend(new)
        return new

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
            try:
                self.pngs.append(save_summary_png(d.alert, folder))
            except Exception as exc:
                log.warning("no PNG for %s partition %d offset %d: %s", d.topic, d.partition,
                            d.offset, exc)

    def close(self, *, only_written: bool = False) -> None:
        """Flush (see :meth:`flush`), then close the writer."""
        try:
            if not self.failed:
                self.flush(only_written=only_written)
        finally:
            if self._writer_obj is not None:
                self._writer_obj.close()
                self._writer_obj = None


@dataclasses.dataclass
class StreamStats:
    """What a stream run did; ``reason`` says why it stopped."""

    count: int = 0
    started: float = dataclasses.field(default_factory=time.monotonic)
    reason: str = ""
    positions: dict[TP, int] = dataclasses.field(default_factory=dict)

    @property
    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        """Alerts per second since the start."""
        return self.count / self.elapsed if self.elapsed > 0 else 0.0


def drained(positions: Mapping[TP, int], starts: Mapping[TP, int],
            ends: Mapping[TP, int]) -> bool:
    """True when every partition of ``ends`` has been read up to its end offset."""
    return all(positions.get(tp, starts.get(tp, 0)) >= end for tp, end in ends.items())


def stream(
    consumer: AlertConsumer,
    *,
    sink: DiskSink | None = None,
    limit: int | None = None,
    starts: Mapping[TP, int] | None = None,
    ends: Mapping[TP, int] | None = None,
    idle_timeout: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_alerts: Callable[[list[Delivery], StreamStats], None] | None = None,
    batch: int = 200,
    poll_interval: float = 0.5,
) -> StreamStats:
    """Consume until ``limit`` alerts, the ``ends`` offsets (``--until-end``), ``idle_timeout``
    seconds without an alert, or ``should_stop()``; then flush the sink.

    ``starts``/``ends`` map each partition to where reading starts and the end offset to
    reach. ``on_alerts`` sees every batch (display, status line). Returns the stats; its
    ``reason`` is ``limit``, ``end``, ``timeout`` or ``stopped``.
    """
    stats = StreamStats()
    starts = dict(starts or {})
    last_alert = time.monotonic()
    try:
        while True:
            if should_stop():
                stats.reason = "stopped"
                break
            if limit is not None and stats.count >= limit:
                stats.reason = "limit"
                break
            stats.positions = consumer.delivered_positions()
            if ends is not None and drained(stats.positions, starts, ends):
                stats.reason = "end"
                break
            want = batch if limit is None else min(batch, limit - stats.count)
            got = consumer.consume_messages(want, timeout=poll_interval)
            now = time.monotonic()
            if got:
                last_alert = now
                stats.count += len(got)
                if sink is not None:
                    sink.add(got)
            elif sink is not None:
                sink.add([])  # lets an old, partly filled batch reach the disk
            stats.positions = consumer.delivered_positions()
            if on_alerts is not None:
                on_alerts(got, stats)
            if idle_timeout is not None and now - last_alert >= idle_timeout:
                stats.reason = "timeout"
                break
    except KeyboardInterrupt:
        raise  # second Ctrl-C: abort now, store nothing more
    except BaseException:
        # The alerts already buffered decoded fine: write and commit them, but not the
        # offset of whatever failed (an undecodable message is read again next time).
        if sink is not None:
            sink.close(only_written=True)
        raise
    if sink is not None:
        sink.close()
    return stats


__all__ = ["FORMATS", "DiskSink", "StreamStats", "check_folder", "drained", "stream"]
