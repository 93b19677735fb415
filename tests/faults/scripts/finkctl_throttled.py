"""Run the real ``finkctl`` with test-only timing changes, for the crash tests.

* librdkafka defaults: ``session.timeout.ms=6000`` (a restart after ``kill -9`` waits
  6 s, not 45 s, for the group to drop the dead member) and
  ``auto.commit.interval.ms=1000`` (stored offsets are committed every second);
* the disk sink is held to at most ``$FAULT_RATE`` alerts/s, whatever its own speed, so
  that ten kills land while alerts are flowing: before each ``DiskSink.add`` it sleeps
  until the alerts handed to it so far are not ahead of that rate (counted from its first
  batch); the logic is untouched. A cap, not an added delay per alert: the Avro
  pass-through and the dict path then run the test at the same pace (an added delay let
  the faster pass-through drain the topic before the ten kills landed);
* each Avro pass-through file takes ``$FAULT_WRITE_SECONDS`` longer to write (a sleep
  once its temporary file is open, before its bytes), so that a test can interrupt a
  write that would otherwise last milliseconds.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from fink_client import config, sink
from fink_client.io import avro_passthrough

config.CLIENT_DEFAULTS.update({"session.timeout.ms": 6000, "auto.commit.interval.ms": 1000})
_rate = float(os.environ.get("FAULT_RATE", "0"))
_add = sink.DiskSink.add
_pace = {"start": 0.0, "count": 0}


def _slow_add(self: sink.DiskSink, deliveries: list) -> list:
    if _rate > 0 and deliveries:
        now = time.monotonic()
        if not _pace["count"]:
            _pace["start"] = now
        _pace["count"] += len(deliveries)
        ahead = _pace["start"] + _pace["count"] / _rate - now
        if ahead > 0:
            time.sleep(ahead)
    return _add(self, deliveries)


sink.DiskSink.add = _slow_add  # type: ignore[method-assign]

_write_seconds = float(os.environ.get("FAULT_WRITE_SECONDS", "0"))
_write_container = avro_passthrough.write_container


def _slow_write(fh: Any, *args: Any, **kw: Any) -> int:
    time.sleep(_write_seconds)
    return _write_container(fh, *args, **kw)


if _write_seconds > 0:
    avro_passthrough.write_container = _slow_write

if __name__ == "__main__":
    from fink_client.cli.main import main

    sys.exit(main(sys.argv[1:]))
