"""``finkctl demo``: the whole path on this machine, step by step, Rubin/LSST first.

Starts the embedded Kafka broker, replays the bundled real alerts in Fink's wire format
(schemaless Avro value, schema JSON as key): the Fink-processed Rubin/LSST alerts in their
own topic first, then the ZTF ones in two topics; consumes them all with
:class:`~fink_client.consumer.AlertConsumer` over SASL/SCRAM as a user restricted by ACLs,
prints one table per survey (LSST first: ids, time in UTC, band, flux in nJy, Fink
classes; then ZTF: ids, time in UTC, band, magnitude, Fink classes), and stops the broker.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from fink_client.cli.options import add_json_flag
from fink_client.cli.output import print_json
from fink_client.consumer import AlertConsumer, Delivery
from fink_client.localkafka import DEMO_PASSWORD, DEMO_USER, LocalKafka
from fink_client.replay import replay
from fink_client.survey import LSST, ZTF, survey
from fink_client.table import alert_row, format_table

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"

#: topic -> (bundled sample folders, what they are), in the order they are replayed and
#: shown. "fink_lsst" holds Fink-processed Rubin alerts (Fink LSST schema 7.4), "rrlyr"
#: Fink-processed ZTF alerts (all RR Lyrae candidates, as on Fink's topic of that name),
#: "ztf_raw" raw ZTF alerts as ZTF distributes them.
DEMO_TOPICS = {
    "fink_lsst": ([SAMPLES / "lsst" / "fink-7.4"], "Rubin/LSST, Fink LSST schema 7.4"),
    "rrlyr": ([SAMPLES / "ztf" / "fink"], "ZTF, Fink-processed: ZTF schema 3.3 + Fink fields"),
    "ztf_raw": ([SAMPLES / "ztf" / "raw", SAMPLES / "ztf" / "raw-datasim"],
                "ZTF, raw: ZTF schema 3.3"),
}

#: How each survey's table is titled, in the order the tables are shown.
SURVEY_TITLES = {LSST: "Rubin/LSST alerts (flux: difference-image PSF flux in nJy)",
                 ZTF: "ZTF alerts (mag: difference-image PSF magnitude)"}


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``demo`` subcommand."""
    p = sub.add_parser(
        "demo",
        help="run the local demo: embedded broker, bundled real alerts, SCRAM consumer",
        description=__doc__,
    )
    add_json_flag(p)
    p.set_defaults(func=run)
    return p


def _step(n: int, text: str, quiet: bool) -> None:
    if not quiet:
        print(f"[{n}/5] {text}", flush=True)


def run(args: argparse.Namespace) -> int:
    """Run the demo end to end; returns 0 when every published alert came back."""
    quiet = bool(args.json)
    _step(1, "starting the embedded Apache Kafka broker (KRaft, SCRAM-SHA-512, ACLs)...", quiet)
    t0 = time.monotonic()
    with LocalKafka(users={DEMO_USER: DEMO_PASSWORD}) as kafka:
        if not quiet:
            print(f"      up in {time.monotonic() - t0:.1f} s: users connect to "
                  f"{kafka.bootstrap_servers} (SASL_PLAINTEXT), admin on {kafka.admin_servers}")
        _step(2, f"creating topics {', '.join(DEMO_TOPICS)} and granting user "
                 f"'{DEMO_USER}' READ on them", quiet)
        for topic in DEMO_TOPICS:
            kafka.create_topic(topic)
        kafka.allow(DEMO_USER, topics=list(DEMO_TOPICS), groups=["fink-demo-group"])

        _step(3, "replaying the bundled real alerts in Fink's wire format, Rubin/LSST first",
              quiet)
        published = {}
        for topic, (folders, what) in DEMO_TOPICS.items():
            published[topic] = replay(folders, topic, {"bootstrap.servers": kafka.admin_servers})
            if not quiet:
                names = ", ".join(f"{f.relative_to(SAMPLES)}/" for f in folders)
                print(f"      {published[topic]:3d} alerts from {names} ({what}) "
                      f"-> topic '{topic}'")

        _step(4, f"consuming with AlertConsumer as '{DEMO_USER}' over SCRAM", quiet)
        config = {
            "username": DEMO_USER,
            "password": DEMO_PASSWORD,
            "group_id": "fink-demo-group",
            "bootstrap.servers": kafka.bootstrap_servers,
        }
        received: list[Delivery] = []
        want = sum(published.values())
        with AlertConsumer(list(DEMO_TOPICS), config) as consumer:
            deadline = time.monotonic() + 60
            while len(received) < want and time.monotonic() < deadline:
                received.extend(consumer.consume_messages(want - len(received), timeout=5))
        order = list(DEMO_TOPICS)
        received.sort(key=lambda d: (order.index(d.topic), d.partition, d.offset))
        tables = {kind: [alert_row(d.topic, d.alert or {}) for d in received
                         if survey(d.alert or {}) == kind] for kind in SURVEY_TITLES}
        if quiet:
            print_json({"published": published, "received": len(received),
                        "surveys": {kind: len(rows) for kind, rows in tables.items()},
                        "alerts": [row for rows in tables.values() for row in rows]})
        else:
            print(f"      received {len(received)} of {want} alerts\n")
            for kind, rows in tables.items():
                print(f"{SURVEY_TITLES[kind]}: {len(rows)}")
                print(format_table(rows))
                print()
        _step(5, "stopping the broker", quiet)
    if not quiet:
        print("done: every alert published was received." if len(received) == want
              else f"FAILED: {want - len(received)} alert(s) missing")
    return 0 if len(received) == want else 1
