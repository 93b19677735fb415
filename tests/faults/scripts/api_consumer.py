"""Plain AlertConsumer loop for the crash tests (run as a subprocess, killed with -9).

For every alert it appends ``A <partition> <offset> <candid>`` to the log file and
fsyncs it *before* asking for the next batch (which is when AlertConsumer stores the
batch's offsets); librdkafka's commit reports are logged as ``C <partition> <offset>``.
It exits cleanly (closing the consumer, which commits) after ``--idle`` seconds
without an alert. The password comes from ``$FAULT_PASSWORD`` (never on the command
line). Extra librdkafka settings come as ``--set key=value``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from fink_client.consumer import AlertConsumer


def main() -> int:
    """Consume until idle, logging every alert durably."""
    ap = argparse.ArgumentParser()
    ap.add_argument("topic")
    ap.add_argument("--servers", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--idle", type=float, default=4.0)
    ap.add_argument("--rate", type=float, default=0.0, help="max alerts/s (0: no limit)")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()

    fd = os.open(args.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    pending: list[bytes] = []

    def on_commit(err: object, partitions: list) -> None:
        if err is None:
            for tp in partitions:
                if tp.error is None and tp.offset >= 0:
                    pending.append(b"C %d %d\n" % (tp.partition, tp.offset))

    config: dict[str, object] = {
        "username": args.user, "password": os.environ["FAULT_PASSWORD"],
        "group_id": args.group, "bootstrap.servers": args.servers, "on_commit": on_commit,
    }
    for item in args.set:
        key, _, value = item.partition("=")
        config[key] = value
    start = 0.0
    received = 0
    last = time.monotonic()
    with AlertConsumer([args.topic], config) as consumer:
        # Idle limit: counted from the last alert, or (before the first one) 5x longer,
        # since a restart after kill -9 may wait for the group to drop the dead member.
        while time.monotonic() - last < (args.idle if received else 5 * args.idle):
            # This call stores the offsets of the previous batch: it is already on disk.
            got = consumer.consume_messages(args.batch, timeout=0.5)
            for d in got:
                pending.append(b"A %d %d %d\n" % (d.partition, d.offset, d.alert["candid"]))
            if pending:
                os.write(fd, b"".join(pending))
                os.fsync(fd)
                pending.clear()
            if got:
                if not received:
                    start = time.monotonic()  # the rate limit counts from the first alert
                last = time.monotonic()
                received += len(got)
                if args.rate > 0:
                    ahead = received / args.rate - (time.monotonic() - start)
                    if ahead > 0:
                        time.sleep(ahead)
    if pending:
        os.write(fd, b"".join(pending))
        os.fsync(fd)
    os.close(fd)
    print(f"received {received}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
