"""``Worker._heartbeat``: a transfer worker's heartbeats go out at ``heartbeat.interval.ms``
(100 ms), against the embedded broker. Without the wake-up, librdkafka's main thread sent
them only when it woke by itself (~0.5 s apart here), and a second worker's join waited
for the next one."""

from __future__ import annotations

import logging
import multiprocessing
import tempfile
import threading
import time
import uuid

from fink_client import schemas
from fink_client._kafka import LIBRDKAFKA_LOGGER
from fink_client.transfer_worker import Job, Shared, Worker
from tests.conftest import sasl_config

WATCH = 2.0  # seconds of heartbeats counted


class _Heartbeats(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.times: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "Heartbeat for group" in record.getMessage():
            self.times.append(time.monotonic())


def test_a_worker_sends_a_heartbeat_every_interval(kafka) -> None:
    topic = f"ftransfer_ztf_2026-03-23_{uuid.uuid4().hex[:6]}"
    kafka.create_topic(topic, partitions=1)
    config = {**sasl_config(kafka, "alice"), "debug": "cgrp"}
    job = Job(topic=topic, config=config, out=tempfile.mkdtemp(), fmt="parquet",
              partition_by="none", schema=schemas.load("avro_schema_ftransfer_ztf_2026-03-23"),
              ends={0: 0}, batch_size=1000, dead_letter=None, limit=None)
    shared = Shared(multiprocessing.get_context("spawn"), 1)
    beats = _Heartbeats()
    logger = logging.getLogger(LIBRDKAFKA_LOGGER)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(beats)
    worker = Worker(job, shared)
    thread = threading.Thread(target=worker.run)
    try:
        thread.start()
        deadline = time.monotonic() + 60
        while not worker.assigned and time.monotonic() < deadline:
            time.sleep(0.02)
        assert worker.assigned == {0}, "the worker never got its partition"
        start = time.monotonic()
        time.sleep(WATCH)
        counted = [t for t in beats.times if start <= t < start + WATCH]
    finally:
        shared.stop.set()
        thread.join(30)
        logger.removeHandler(beats)
        logger.setLevel(level)
    assert not thread.is_alive()
    # 20 at 100 ms; without the wake-up librdkafka sent 7 in 2 s here (idle worker)
    assert len(counted) >= 10, f"{len(counted)} heartbeats in {WATCH} s"
