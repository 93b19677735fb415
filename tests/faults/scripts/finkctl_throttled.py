"""Run the real ``finkctl`` with test-only timing changes, for the crash tests.

* librdkafka defaults: ``session.timeout.ms=6000`` (a restart after ``kill -9`` waits
  6 s, not 45 s, for the group to drop the dead member) and
  ``auto.commit.interval.ms=1000`` (stored offsets are committed every second);
* the disk sink is slowed to ``$FAULT_RATE`` alerts/s so that ten kills land while
  alerts are flowing (a sleep before each ``DiskSink.add``; the logic is untouched).
"""

from __future__ import annotations

import os
import sys
import time

from fink_client import config, sink

config.CLIENT_DEFAULTS.update({"session.timeout.ms": 6000, "auto.commit.interval.ms": 1000})
_rate = float(os.environ.get("FAULT_RATE", "0"))
_add = sink.DiskSink.add


def _slow_add(self: sink.DiskSink, deliveries: list) -> list:
    if _rate > 0 and deliveries:
        time.sleep(len(deliveries) / _rate)
    return _add(self, deliveries)


sink.DiskSink.add = _slow_add  # type: ignore[method-assign]

if __name__ == "__main__":
    from fink_client.cli.main import main

    sys.exit(main(sys.argv[1:]))
