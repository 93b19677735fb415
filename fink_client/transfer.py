"""Fink Data Transfer topics (``ftransfer_<survey>_<date>_<id>``, ``fxmatch_*``): download a
whole topic into one partitioned dataset, with several processes and machines.

Their values are schemaless Avro and carry no key: the schema is the key of the first
message of the side topic ``<topic>_schema``. It is read by partition assignment (no
group, no commit), so every run finds it again.

:func:`transfer` starts ``workers`` processes (:mod:`fink_client.transfer_worker`), all
members of the user's consumer group: Kafka shares the partitions among them, and among
the processes of the same command started on other machines with the same group. Each
worker writes aligned batches of offsets into files (Avro, Parquet typed from the Avro
schema, or JSON lines), under Hive folders (:mod:`fink_client.partitioning`), and commits
a batch only once its file is durable. The run ends when the group has committed every
partition up to the end offsets taken at start (whoever wrote them), at ``limit``, after
``timeout`` seconds without progress, or on :func:`request_stop`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confluent_kafka import TopicPartition

from fink_client.errors import (
    AlertError,
    BrokerUnreachableError,
    ConfigError,
    SchemaError,
    TopicAuthorizationError,
)
from fink_client.io.atomic import clean_stale_temps

if TYPE_CHECKING:
    from fink_client.offsets import OffsetsClient, PartitionOffsets

log = logging.getLogger(__name__)

FORMATS = ("parquet", "avro", "json")
TRANSFER_PREFIXES = ("ftransfer_", "fxmatch_")


def side_topic(topic: str) -> str:
    """Name of the topic holding the schema of data-transfer topic ``topic``."""
    return f"{topic}_schema"


def is_transfer_topic(topic: str) -> bool:
    """True for Fink data-transfer and cross-match topic names (not their side topics)."""
    return topic.startswith(TRANSFER_PREFIXES) and not topic.endswith("_schema")


def _side_auth_error(topic: str) -> TopicAuthorizationError:
    side = side_topic(topic)
    return TopicAuthorizationError(
        f"not authorised to read {side!r}, the topic holding the schema of {topic!r}: "
        "ask the Fink team for READ access to both topics, or give the schema with "
        "--schema FILE",
        topic=side,
    )


def fetch_side_schema(
    kafka_config: dict[str, Any], topic: str, timeout: float = 15.0
) -> dict[str, Any] | None:
    """Schema of ``topic`` read from the key of the first message of ``<topic>_schema``.

    Returns ``None`` if the side topic does not exist (the topic's messages may carry
    their schema themselves). Raises :class:`TopicAuthorizationError` naming the side
    topic when the user may not read it, and :class:`SchemaError` if it exists but holds
    no usable schema within ``timeout`` seconds. The side topic is read by assignment,
    never through the group: nothing is committed, so a rerun always finds it.
    """
    from fink_client import _kafka

    side = side_topic(topic)
    client = _kafka.consumer({k: v for k, v in kafka_config.items() if k != "error_cb"},
                             timeout=timeout)
    try:
        md = client.retry(f"reading {side!r}", client.kafka.list_topics, side)
        tmd = md.topics.get(side)
        if tmd is not None and tmd.error is not None and not _kafka.is_unknown_topic(tmd.error):
            typed = client.translate(tmd.error, topic=side)
            raise _side_auth_error(topic) if isinstance(typed, TopicAuthorizationError) else typed
        if tmd is None or tmd.error is not None or not tmd.partitions:
            return None
        try:
            msg = _kafka.first_message(client, side, [0], timeout)
        except TopicAuthorizationError:
            raise _side_auth_error(topic) from None
        if msg is None:
            raise SchemaError(f"no message on schema topic {side!r} within {timeout:g} s",
                              topic=side)
        try:
            key = msg.key()
            if key is None:
                raise ValueError("the message has no key")
            return json.loads(key)
        except ValueError as exc:
            raise SchemaError(
                f"the first message of {side!r} has no schema JSON in its key: {exc}",
                topic=side, partition=0, offset=msg.offset(),
            ) from exc
    finally:
        client.close()


# -- the download -------------------------------------------------------------------------
@dataclasses.dataclass
class Progress:
    """Where a transfer stands (given to the ``progress`` callback, and returned at the end).

    ``alerts``/``payload_bytes``/``files``/``disk_bytes``/``dead_letters`` count what this
    command wrote; ``total`` is the group's lag at start and ``lag`` what the group (every
    machine) has left; ``reason`` says why it stopped: ``done``, ``nothing to do``,
    ``limit``, ``timeout`` or ``stopped``. ``first_batch_seconds`` is the start-up: seconds
    from the call to the first batch this command made durable and committed (None if it
    made none), which the rate in ``seconds`` includes.
    """

    topic: str
    group_id: str
    out: str
    total: int = 0
    lag: int = 0
    alerts: int = 0
    payload_bytes: int = 0
    files: int = 0
    disk_bytes: int = 0
    dead_letters: int = 0
    workers: int = 0
    seconds: float = 0.0
    first_batch_seconds: float | None = None
    reason: str = ""
    schema_files: list[str] = dataclasses.field(default_factory=list)

    @property
    def rate(self) -> float:
        """Alerts per second written by this command."""
        return self.alerts / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate (from the group's lag), if known."""
        return self.lag / self.rate if self.rate > 0 else None

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for ``--json``)."""
        d = dataclasses.asdict(self)
        d.update(rate=round(self.rate, 1), seconds=round(self.seconds, 3))
        if self.first_batch_seconds is not None:
            d["first_batch_seconds"] = round(self.first_batch_seconds, 3)
        return d


_STOP: list[Any] = []


#: Environment of the server that forks the workers, unless the user set these: the
#: libraries its modules load start no thread of their own (numpy's OpenBLAS starts a
#: thread pool, pyarrow's jemalloc a background thread), so that forking it is safe by
#: construction; and an idle OpenBLAS pool costs its start-up CPU for nothing (a
#: transfer uses no linear algebra).
SERVER_ENVIRONMENT = {
    "OPENBLAS_NUM_THREADS": "1",
    "JE_ARROW_MALLOC_CONF": "background_thread:false",
}


def worker_context() -> Any:
    """The multiprocessing context that starts transfer workers, made ready to start them.

    Where the platform has it (Linux, macOS), multiprocessing's ``forkserver``: a server
    process, started here at the first call, imports the workers' modules once
    (:data:`~fink_client.transfer_worker.WORKER_MODULES`: pyarrow, confluent-kafka, ~0.4 s
    of CPU) and forks every worker from that state, so that a worker starts in ~20 ms
    instead of ~0.45 s, and the import runs while the command is still talking to the
    broker. The server is a fresh Python process that never starts a thread
    (:data:`SERVER_ENVIRONMENT`): a worker is never a fork of a process with threads
    (librdkafka's, or any other). It lives until the calling process exits (or
    :func:`stop_worker_server`). It is multiprocessing's forkserver, one per program: a
    program that also uses it for processes of its own shares it, and whichever starts
    it first decides what it preloads. Elsewhere (Windows): ``spawn``.
    """
    import multiprocessing.forkserver as forkserver

    from fink_client.transfer_worker import WORKER_MODULES

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(WORKER_MODULES))  # used when the server starts
    # the server takes the environment of the moment it starts (workers then adopt
    # their command's, see transfer_worker.run); set for the instant of its start only
    added = {k: v for k, v in SERVER_ENVIRONMENT.items() if k not in os.environ}
    os.environ.update(added)
    try:
        forkserver.ensure_running()
    finally:
        for key in added:
            os.environ.pop(key, None)
    return ctx


def stop_worker_server() -> None:
    """Stop the server that forks transfer workers (:func:`worker_context`), if running:
    it frees its memory (~100 MB with pyarrow imported); the next transfer starts a new
    one. A no-op where workers are spawned."""
    import multiprocessing.forkserver as forkserver

    stop = getattr(getattr(forkserver, "_forkserver", None), "_stop", None)
    if stop is not None:
        stop()


def request_stop() -> None:
    """Ask the running :func:`transfer` to finish its batches and stop (signal handlers)."""
    for event in _STOP:
        event.set()


def clean_temporary_files(*folders: Path) -> int:
    """Remove the temporary files (``.<name>.<n>.<pid>.tmp``) that dead runs left anywhere
    below ``folders``; return how many were removed."""
    return sum(len(clean_stale_temps(folder, recursive=True)) for folder in folders)


def dump_schemas(out: Path, topic: str, schema: Mapping[str, Any]) -> list[Path]:
    """Write ``_<topic>.avsc`` and ``_<topic>.arrow.txt`` (the Parquet schema) into ``out``.

    Names start with ``_`` so that dataset readers (pyarrow, Spark) skip them.
    """
    from fink_client.io.arrow import avro_to_arrow_schema
    from fink_client.io.atomic import atomic_write

    paths = []
    avsc = out / f"_{topic}.avsc"
    with atomic_write(avsc, overwrite=True) as fh:
        fh.write(json.dumps(schema, indent=1).encode())
    paths.append(avsc)
    try:
        arrow = avro_to_arrow_schema(schema)
    except SchemaError as exc:
        log.warning("no Arrow schema for %s: %s", topic, exc)
        return paths
    text = arrow.remove_metadata().to_string(show_field_metadata=False)
    arrow_path = out / f"_{topic}.arrow.txt"
    with atomic_write(arrow_path, overwrite=True) as fh:
        fh.write(text.encode() + b"\n")
    paths.append(arrow_path)
    return paths


def _check_args(fmt: str, workers: int, batch_size: int, limit: int | None,
                timeout: float | None) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}",
                          field="format")
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError("workers must be a positive number of processes", field="workers")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError("batch_size must be a positive number of alerts", field="batch_size")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ConfigError("limit must be a positive number of alerts", field="limit")
    if timeout is not None and not timeout > 0:
        raise ConfigError("timeout must be a positive number of seconds", field="timeout")


def transfer(
    topic: str,
    out: str | Path,
    config: Mapping[str, Any],
    *,
    fmt: str = "parquet",
    partition_by: str = "none",
    workers: int | None = None,
    limit: int | None = None,
    batch_size: int = 1000,
    timeout: float | None = 60.0,
    restart_from_beginning: bool = False,
    schema: Any = None,
    dead_letter: str | Path | None = None,
    progress: Callable[[Progress], None] | None = None,
    verbose: int = 0,
) -> Progress:
    """Download data-transfer ``topic`` into ``out``; return what was done.

    ``config``: fink-client config (``username``, ``password``, ``group_id``,
    ``bootstrap.servers``...): the group is shared by the workers and by the same command
    on other machines. ``fmt``: ``parquet`` | ``avro`` | ``json``; ``partition_by``:
    ``none`` | ``time`` | ``finkclass`` | ``tnsclass`` | a (dotted) field. ``workers``:
    processes (default: CPU count). ``schema`` (path, dict, JSON) overrides the side
    topic. ``timeout``: stop after that many seconds without progress of the group.
    ``dead_letter``: folder for undecodable messages (otherwise one stops the run with
    :class:`~fink_client.errors.DecodeError`). ``progress`` is called about twice a second.

    Typed errors (:mod:`fink_client.errors`): authentication, topic or side topic not
    authorised, unknown topic (listing the available ones), broker unreachable, bad
    configuration.

    Workers are forked by multiprocessing's ``forkserver`` (:func:`worker_context`;
    ``spawn`` where there is none), never from a process with librdkafka's threads: in a
    script, call this under ``if __name__ == "__main__":``.
    """
    from fink_client import config as _config
    from fink_client import transfer_worker
    from fink_client.offsets import OffsetsClient
    from fink_client.partitioning import Partitioner
    from fink_client.sink import check_folder
    from fink_client.wire import load_schema

    workers = workers if workers is not None else (os.cpu_count() or 1)
    _check_args(fmt, workers, batch_size, limit, timeout)
    if not isinstance(topic, str) or not topic or topic.startswith("^"):
        raise ConfigError("topic must be one topic name", field="topic")
    user_config = {k: v for k, v in dict(config).items() if k not in ("logger", "error_cb")}
    kcfg = _config.kafka_config(user_config)
    connect_timeout = _config.connect_timeout(user_config)
    out_path = check_folder(out)
    dead_path = check_folder(dead_letter) if dead_letter is not None else None
    clean_temporary_files(*(p for p in (out_path, dead_path) if p is not None))

    started = time.monotonic()
    ctx = worker_context()  # the workers' imports start now, beside the checks below
    with OffsetsClient(user_config) as oc:
        tps = oc.partitions([topic])  # typed: unknown topic (with the list), not authorised
        schema_json = (load_schema(schema) if schema is not None
                       else fetch_side_schema(kcfg, topic, connect_timeout))
        Partitioner(partition_by, schema_json)  # refuse a bad --partition-by now
        if schema_json is None and partition_by not in ("none",):
            log.info("no schema on %s: partition fields are checked per message",
                     side_topic(topic))
        if restart_from_beginning:
            oc.reset([topic], "earliest")
        report = oc.describe([topic])
        commit_start_offsets(oc, kcfg, report)
        ends = {r.partition: r.high for r in report}
        state = Progress(topic=topic, group_id=kcfg["group.id"], out=str(out_path),
                         total=sum(r.lag for r in report), workers=workers)
        state.lag = state.total
        if schema_json is not None:
            state.schema_files = [str(p) for p in dump_schemas(out_path, topic, schema_json)]
        if state.lag == 0:
            state.reason = "nothing to do"
            state.workers = 0
            state.seconds = time.monotonic() - started
            return state

        job = transfer_worker.Job(
            topic=topic, config=user_config, out=str(out_path), fmt=fmt,
            partition_by=partition_by, schema=schema_json, ends=ends,
            batch_size=batch_size, dead_letter=str(dead_path) if dead_path else None,
            limit=limit, environ=dict(os.environ),
        )
        shared = transfer_worker.Shared(ctx, workers)
        procs = [ctx.Process(target=transfer_worker.run, args=(job, shared, verbose),
                             name=f"finkctl-transfer-{i}", daemon=True)
                 for i in range(workers)]
        _STOP.append(shared.stop)
        error: AlertError | None = None
        try:
            for proc in procs:
                proc.start()
            error = _supervise(oc, tps, ends, state, shared, procs, limit, timeout,
                               progress, started)
        finally:
            shared.stop.set()
            # done: every batch is committed, a worker has only its consumer to close;
            # otherwise it finishes the file it is writing
            stop_workers(procs, DONE_PATIENCE if state.reason == "done" else STOP_PATIENCE)
            _STOP.remove(shared.stop)
            _read_counts(state, shared)
            if error is None:  # the workers have exited: what they reported is there
                error = _first_error(shared, wait=0.0)
            if state.reason != "done":  # done: the lag was 0 a moment ago
                with contextlib.suppress(AlertError):
                    state.lag = _group_lag(oc, tps, ends)
            state.seconds = time.monotonic() - started
        if error is not None:
            raise error
    return state


#: ``auto.offset.reset`` values that start a partition without committed offset at its
#: beginning (librdkafka's names for it).
_EARLIEST = ("earliest", "smallest", "beginning")


def commit_start_offsets(oc: OffsetsClient, kcfg: Mapping[str, Any],
                         report: list[PartitionOffsets]) -> dict[tuple[str, int], int]:
    """Commit, for the group, the first offset of every partition it never committed,
    before the workers start; return what was committed (nothing if it was refused).

    Why: a worker starts such a partition with a ListOffsets lookup of its beginning; when
    the group's second member joins while that reply is on its way (the usual start of a
    2-worker command), librdkafka drops the reply as outdated and asks again only after a
    fixed ~500 ms, so the first worker's partitions stall (measured: 0.5-1 s of a 3 s
    run). With an offset committed, a worker starts from it at once, from where
    ``auto.offset.reset=earliest`` would start (the transfer's default; another value
    commits nothing).

    Safe with the same command on other machines: Kafka refuses a commit from outside the
    group while it has members, so a running group's progress is never rewound; refused,
    the workers look the beginning up as before."""
    if str(kcfg.get("auto.offset.reset", "earliest")) not in _EARLIEST:
        return {}
    fresh = {(r.topic, r.partition): r.low for r in report
             if r.committed is None and r.high > r.low}
    try:
        oc.commit(fresh)
    except AlertError as exc:  # an active group (another machine), or no right to commit
        log.debug("start offsets not committed: %s", exc)
        return {}
    return fresh


#: Seconds the workers have to exit once asked to stop: after a finished transfer (they
#: close their consumer), and otherwise (they finish the file they are writing).
DONE_PATIENCE = 5.0
STOP_PATIENCE = 30.0


def stop_workers(procs: list[Any], patience: float) -> list[Any]:
    """Wait up to ``patience`` seconds in all for the (already told) worker processes
    ``procs`` to exit; kill, with a warning, those still running; return them.

    A worker that does not exit is stuck (in librdkafka, closing its consumer, say);
    what it has not committed is read again by the next run, as after ``kill -9``."""
    deadline = time.monotonic() + patience
    killed = []
    for proc in procs:
        if proc.pid is None:  # never started
            continue
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            log.warning("worker %s (pid %s) had not exited %g s after the stop; killed "
                        "(what it did not commit is read again by the next run)",
                        proc.name, proc.pid, patience)
            proc.kill()
            proc.join(5)
            killed.append(proc)
    return killed


def _read_counts(state: Progress, shared: Any) -> None:
    with shared.lock:
        state.alerts = shared.alerts.value
        state.payload_bytes = shared.payload.value
        state.files = shared.files.value
        state.disk_bytes = shared.disk.value
        state.dead_letters = shared.dead.value


def _first_error(shared: Any, wait: float = 0.1) -> AlertError | None:
    """The first error a worker reported, waiting up to ``wait`` seconds for one that a
    worker is still sending (it sets the stop flag just before)."""
    try:
        return shared.errors.get(timeout=wait) if wait > 0 else shared.errors.get_nowait()
    except Exception:
        return None


def _group_lag(oc: Any, tps: list[TopicPartition], ends: Mapping[int, int]) -> int:
    """Alerts the group (every machine) still has to commit, up to the ends at start."""
    committed = oc.committed(tps)
    lows = {p: low for (_, p), (low, _) in oc.watermarks(tps).items()}
    lag = 0
    for tp in tps:
        done = committed.get((tp.topic, tp.partition))
        start = lows[tp.partition] if done is None else max(done, lows[tp.partition])
        lag += max(0, ends[tp.partition] - start)
    return lag


def _supervise(oc: Any, tps: list[TopicPartition], ends: Mapping[int, int], state: Progress,
               shared: Any, procs: list[Any], limit: int | None, timeout: float | None,
               progress: Callable[[Progress], None] | None, started: float) -> AlertError | None:
    """Watch the workers and the group's commits until done; return a worker's error."""
    last_change = time.monotonic()
    last_seen = (-1, -1)
    reported_dead: set[int] = set()
    reported = -1.0  # when progress was last called (seconds since start)
    while True:
        # a worker's commit wakes us at once: the end is seen when the last file is
        # committed, not up to half a second later
        shared.changed(0.5)
        _read_counts(state, shared)
        if state.first_batch_seconds is None and state.alerts + state.dead_letters > 0:
            # woken by that batch's commit (Shared.notify), so this is within milliseconds
            state.first_batch_seconds = time.monotonic() - started
        try:
            state.lag = _group_lag(oc, tps, ends)
        except BrokerUnreachableError as exc:  # an outage: wait (up to --timeout)
            log.warning("%s; waiting for the broker to come back", exc)
        state.seconds = time.monotonic() - started
        if progress is not None and (state.lag == 0 or state.seconds - reported >= 0.5):
            reported = state.seconds
            progress(state)
        if state.lag == 0:
            state.reason = "done"
            return None
        if shared.stop.is_set():
            error = _first_error(shared)
            if error is not None:
                return error
            state.reason = "stopped"
            return None
        if limit is not None and state.alerts + state.dead_letters >= limit:
            state.reason = "limit"
            return None
        for proc in procs:
            if proc.exitcode is not None and proc.pid not in reported_dead:
                reported_dead.add(proc.pid)
                log.warning("worker %s (pid %s) ended with exit code %s; the group gives its "
                            "partitions to the others (uncommitted batches are read again)",
                            proc.name, proc.pid, proc.exitcode)
        if all(proc.exitcode is not None for proc in procs):
            if limit is not None and shared.reserved.value >= limit:
                state.reason = "limit"
                return None
            return _first_error(shared) or AlertError(
                "every transfer worker died; rerun the command to resume (nothing is lost)")
        seen = (state.alerts + state.dead_letters, state.lag)
        now = time.monotonic()
        if seen != last_seen:
            last_seen, last_change = seen, now
        elif timeout is not None and now - last_change >= timeout:
            state.reason = "timeout"
            return None


__all__ = ["FORMATS", "Progress", "clean_temporary_files", "commit_start_offsets",
           "dump_schemas", "fetch_side_schema", "is_transfer_topic", "request_stop", "side_topic",
           "stop_worker_server", "stop_workers", "transfer", "worker_context"]
