"""Shared tools of the fault suite: unique alerts, a partition-spreading publisher,
subprocess helpers and the id logs written by the crash-test consumer script.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

import fink_client
from fink_client.replay import Encoder, read_records

SAMPLES = Path(fink_client.__file__).parent / "data" / "samples"
FINK_ZTF = SAMPLES / "ztf" / "fink"
HERE = Path(__file__).resolve().parent
CUTOUTS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")


def sample_records(folder: Path = FINK_ZTF) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``(writer_schema, record)`` of every real sample alert in ``folder``."""
    return list(read_records([folder]))


def unique_alerts(n: int, cutout_bytes: int = 1024) -> Iterator[tuple[dict[str, Any], dict]]:
    """``n`` real Fink ZTF alerts with unique ``candid`` (= 1..n).

    The four Fink sample alerts are repeated; their cutouts are cut to ``cutout_bytes``
    so that 10,000 alerts stay ~10 KB each (the wire format is unchanged).
    """
    base = sample_records()
    for i in range(n):
        schema, record = base[i % len(base)]
        rec = dict(record)
        rec["candid"] = i + 1
        for name in CUTOUTS:
            if rec.get(name):
                cut = dict(rec[name])
                cut["stampData"] = cut["stampData"][:cutout_bytes]
                rec[name] = cut
        yield schema, rec


def publish_spread(
    messages: Iterator[tuple[bytes | None, bytes | None]] | list,
    topic: str,
    servers: str,
    partitions: int,
) -> list[tuple[int, int]]:
    """Produce raw ``(value, key)`` pairs round-robin over ``partitions``.

    Fink keys are the schema, identical for every alert, so the default partitioner
    would put everything in one partition. Returns the ``(partition, offset)`` of each
    message, in input order.
    """
    producer = Producer({"bootstrap.servers": servers, "linger.ms": 20,
                         "message.max.bytes": 10 * 1024 * 1024})
    where: dict[int, tuple[int, int]] = {}
    errors: list[str] = []

    def done(n: int) -> Any:
        def cb(err: Any, msg: Any) -> None:
            if err is not None:
                errors.append(str(err))
            else:
                where[n] = (msg.partition(), msg.offset())
        return cb

    count = 0
    for n, (value, key) in enumerate(messages):
        while True:
            try:
                producer.produce(topic, value=value, key=key, partition=n % partitions,
                                 on_delivery=done(n))
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
        count += 1
    left = producer.flush(60)
    assert not errors and not left, f"publish failed: {errors[:3]} ({left} left)"
    return [where[n] for n in range(count)]


def encode_all(records: Iterator[tuple[dict, dict]]) -> Iterator[tuple[bytes, bytes | None]]:
    """Fink live-stream wire format: schemaless value, schema JSON as the key."""
    enc = Encoder("fink")
    for schema, record in records:
        yield enc.encode(schema, record)


def kill9(proc: subprocess.Popen) -> None:
    """``kill -9`` a child process and reap it."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def wait_for(predicate: Any, timeout: float, step: float = 0.02) -> bool:
    """Poll ``predicate()`` until true or ``timeout`` s elapse; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


@dataclass
class RunLog:
    """What one run of ``scripts/api_consumer.py`` wrote before it exited or died.

    ``alerts``: ``(partition, offset, candid)`` in delivery order; ``commits``: the last
    committed offset per partition reported by librdkafka's ``on_commit``.
    """

    alerts: list[tuple[int, int, int]] = field(default_factory=list)
    commits: dict[int, int] = field(default_factory=dict)


def read_run_log(path: Path) -> RunLog:
    """Parse an id log; a torn last line (killed mid-write) is ignored."""
    log = RunLog()
    if not path.exists():
        return log
    data = path.read_bytes()
    for line in data.split(b"\n")[:-1]:  # the part after the last newline may be torn
        parts = line.split()
        if parts[:1] == [b"A"] and len(parts) == 4:
            log.alerts.append((int(parts[1]), int(parts[2]), int(parts[3])))
        elif parts[:1] == [b"C"] and len(parts) == 3:
            p, o = int(parts[1]), int(parts[2])
            log.commits[p] = max(log.commits.get(p, 0), o)
    return log


def duplicate_bound_check(runs: list[RunLog]) -> tuple[int, int, list[tuple[int, int]]]:
    """Check the documented duplicate bound across consecutive runs of one group.

    After run ``k`` dies, run ``k+1`` may deliver again only alerts handed out since the
    last commit: offsets at or after the last committed offset of each partition (a
    commit that landed but was not logged only makes the real count smaller). Returns
    ``(duplicates, bound, per_kill)`` where ``per_kill`` lists ``(dups, bound)``.
    """
    seen: set[tuple[int, int]] = set()
    committed: dict[int, int] = {}
    per_kill: list[tuple[int, int]] = []
    total_dups = total_bound = 0
    for k, run in enumerate(runs):
        if k > 0:
            prev_seen = seen
            since_commit = {(p, o) for (p, o) in prev_seen if o >= committed.get(p, 0)}
            dups = sum(1 for (p, o, _c) in run.alerts if (p, o) in prev_seen)
            per_kill.append((dups, len(since_commit)))
            total_dups += dups
            total_bound += len(since_commit)
        seen = seen | {(p, o) for (p, o, _c) in run.alerts}
        for p, o in run.commits.items():
            committed[p] = max(committed.get(p, 0), o)
    return total_dups, total_bound, per_kill


def python_cmd(script: str, *args: str) -> list[str]:
    """Command line running one of the helper scripts of this folder."""
    return [sys.executable, str(HERE / "scripts" / script), *args]


def env_with(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment plus ``extra``."""
    env = dict(os.environ)
    env.update(extra)
    return env
