"""One measured run, in its own process so that its peak RSS is its own.

``python -m benchmarks.worker KIND JSON-ARGS`` prints one JSON line:
``{"alerts": n, "bytes": b, "seconds": s, "peak_rss_mb": m, ...}``. Kinds:

- ``decode``: ``{"set": "samples"|"synthetic", "survey": label, "impl": "fastavro"|"fink",
  "seconds": t}``: decode the payloads in a loop for about ``t`` seconds;
- ``e2e``: ``{"impl": "bare"|"fink"|"arrow", "servers": ..., "topic": ..., "count": n}``:
  consume ``n`` alerts from Kafka into dicts, or into Arrow batches with ``consume_arrow``
  (the caller computes MB/s from the value size);
- ``startup``: ``{"impl": "bare"|"fink", "servers": ..., "topic": ...}``: time from
  creating the consumer to the first alert;
- ``parquet``: ``{"count": n, "batch": b, "full": bool}``: write ``n`` synthetic Fink ZTF
  alerts to Parquet, ``b`` per file (without history and cutouts unless ``full``);
- ``consume``: ``{"servers": ..., "topic": ..., "count": n, "config": {...}}``: a bare
  confluent-kafka ``consume()`` loop that only touches the values (no decoding);
- ``save``: ``{"format": "avro"|"parquet", "servers": ..., "topic": ..., "count": n}``: the
  ``finkctl stream --save`` path (AlertConsumer + DiskSink, 1,000 alerts per file), each
  file deleted once durable;
- ``disk``: ``{"impl": "passthrough"|"plain", "survey": label, "count": n}``: write ``n``
  sample alerts' values to files of 1,000, fsynced: through the Avro pass-through writer
  (validate, frame, atomic write), or as plain bytes (write + fsync: the disk's speed);
- ``container``: ``{"impl": "fastavro"|"fink", "set": "samples"|"synthetic", "seconds": t}``:
  decode raw ZTF Avro-container messages (one alert per container).
"""

from __future__ import annotations

import asyncio
import io
import json
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def repeat_for(
    dec: Callable[[bytes], Any], payloads: list[bytes], seconds: float
) -> dict[str, Any]:
    """Decode ``payloads`` once to warm up, then over and over for ``seconds``.

    Returns the alerts and bytes decoded in the timed part and its length, the result
    shape of every worker kind.
    """
    for p in payloads:
        dec(p)
    size = sum(len(p) for p in payloads)
    n = nbytes = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for p in payloads:
            dec(p)
        n += len(payloads)
        nbytes += size
    return {"alerts": n, "bytes": nbytes, "seconds": time.perf_counter() - start}


def run_decode(args: dict[str, Any]) -> dict[str, Any]:
    import fastavro

    from benchmarks import data
    from fink_client import codec

    sets = data.sample_sets() if args["set"] == "samples" else data.synthetic_sets(
        args.get("n", 40), seed=1)
    schema_json, payloads = sets[args["survey"]]
    parsed = codec.parse_schema(schema_json)
    if args["impl"] == "fastavro":
        def dec(b: bytes) -> Any:
            return fastavro.schemaless_reader(io.BytesIO(b), parsed, None)
    else:
        dec = codec.compile_reader(parsed)
        if type(dec).__name__ != "Reader":
            raise SystemExit("the C fast path is not available")
    return repeat_for(dec, payloads, args["seconds"])


BATCH = 100  # alerts per consume() call, for both loops


def run_e2e(args: dict[str, Any]) -> dict[str, Any]:
    count = args["count"]
    group = f"bench-{uuid.uuid4().hex[:8]}"
    n = nbytes = 0
    if args["impl"] == "bare":
        import fastavro
        from confluent_kafka import Consumer

        from fink_client import codec

        consumer = Consumer({"bootstrap.servers": args["servers"], "group.id": group,
                             "auto.offset.reset": "earliest", **args.get("config", {})})
        consumer.subscribe([args["topic"]])
        parsed: dict[bytes, Any] = {}
        start = None
        while n < count:
            for msg in consumer.consume(num_messages=BATCH, timeout=1.0):
                if msg.error():
                    continue
                if start is None:  # throughput only: start-up is measured on its own
                    start = time.perf_counter()
                key, value = msg.key(), msg.value()
                schema = parsed.get(key)
                if schema is None:
                    schema = parsed[key] = codec.parse_schema(key)
                fastavro.schemaless_reader(io.BytesIO(value), schema, None)
                n += 1
                nbytes += len(value)
        seconds = time.perf_counter() - (start or 0.0)
        consumer.close()
    elif args["impl"] == "aio":
        return asyncio.run(_run_e2e_aio(args, group))
    elif args["impl"] == "arrow":  # AlertConsumer.consume_arrow: RecordBatches, no dicts
        from fink_client.consumer import AlertConsumer

        consumer = AlertConsumer([args["topic"]], {"bootstrap.servers": args["servers"],
                                                   "group_id": group})
        while not n:
            batch = consumer.consume_arrow(1, timeout=1.0)
            n = batch.num_rows if batch is not None else 0
        start = time.perf_counter()
        while n < count:
            batch = consumer.consume_arrow(1000, timeout=1.0)
            n += batch.num_rows if batch is not None else 0
        seconds = time.perf_counter() - start
        consumer.close()
    else:
        from fink_client.consumer import AlertConsumer

        consumer = AlertConsumer([args["topic"]], {"bootstrap.servers": args["servers"],
                                                   "group_id": group, **args.get("config", {})})
        while not n:
            n = len(consumer.consume(num_alerts=1, timeout=1.0))
        start = time.perf_counter()
        while n < count:
            n += len(consumer.consume(num_alerts=BATCH, timeout=1.0))
        seconds = time.perf_counter() - start
        consumer.close()
    return {"alerts": n, "bytes": nbytes, "seconds": seconds}


async def _run_e2e_aio(args: dict[str, Any], group: str) -> dict[str, Any]:
    """The loop of the sync case, with fink_client.aio's consumer."""
    from fink_client.aio import AlertConsumer

    count, n = args["count"], 0
    async with AlertConsumer([args["topic"]], {"bootstrap.servers": args["servers"],
                                               "group_id": group}) as consumer:
        while not n:
            n = len(await consumer.consume(num_alerts=1, timeout=1.0))
        start = time.perf_counter()
        while n < count:
            n += len(await consumer.consume(num_alerts=BATCH, timeout=1.0))
        seconds = time.perf_counter() - start
    return {"alerts": n, "bytes": 0, "seconds": seconds}


def run_startup(args: dict[str, Any]) -> dict[str, Any]:
    group = f"bench-start-{uuid.uuid4().hex[:8]}"
    if args["impl"] == "bare":
        from confluent_kafka import Consumer

        start = time.perf_counter()
        consumer = Consumer({"bootstrap.servers": args["servers"], "group.id": group,
                             "auto.offset.reset": "earliest"})
        consumer.subscribe([args["topic"]])
        while True:
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error():
                break
        seconds = time.perf_counter() - start
        consumer.close()
    else:
        from fink_client.consumer import AlertConsumer

        start = time.perf_counter()
        consumer = AlertConsumer([args["topic"]], {"bootstrap.servers": args["servers"],
                                                   "group_id": group})
        while True:
            _, alert = consumer.poll(1.0)
            if alert is not None:
                break
        seconds = time.perf_counter() - start
        consumer.close()
    return {"alerts": 1, "bytes": 0, "seconds": seconds}


def run_parquet(args: dict[str, Any]) -> dict[str, Any]:
    import os

    from benchmarks import data
    from fink_client import schemas
    from fink_client.io import open_writer

    schema_json = schemas.load(data.SYNTH_SCHEMAS["Fink ZTF"])
    if not args.get("full"):
        schema_json = data.light_schema(schema_json)
    pool = list(data.synthetic_records(schema_json, args.get("pool", 500), seed=2))
    count, batch = args["count"], args["batch"]
    n = nbytes = 0
    with tempfile.TemporaryDirectory(prefix="fink-bench-") as folder:
        writer = open_writer("parquet", folder, schema_json)
        start = time.perf_counter()
        while n < count:
            k = min(batch, count - n)
            chunk = [pool[(n + i) % len(pool)] for i in range(k)]
            for path in writer.write(chunk):
                nbytes += os.path.getsize(path)
                os.unlink(path)  # keep the disk footprint small: the write was durable
            n += k
        seconds = time.perf_counter() - start
    return {"alerts": n, "bytes": nbytes, "seconds": seconds}


def run_consume(args: dict[str, Any]) -> dict[str, Any]:
    from confluent_kafka import Consumer

    count = args["count"]
    consumer = Consumer({"bootstrap.servers": args["servers"],
                         "group.id": f"bench-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", **args.get("config", {})})
    consumer.subscribe([args["topic"]])
    n = nbytes = 0
    start = None
    while n < count:
        for msg in consumer.consume(num_messages=BATCH, timeout=1.0):
            if msg.error():
                continue
            if start is None:
                start = time.perf_counter()
            nbytes += len(msg.value())
            n += 1
    seconds = time.perf_counter() - (start or 0.0)
    consumer.close()
    return {"alerts": n, "bytes": nbytes, "seconds": seconds}


def run_save(args: dict[str, Any]) -> dict[str, Any]:
    import os

    from fink_client.consumer import AlertConsumer
    from fink_client.sink import DiskSink

    count = args["count"]
    consumer = AlertConsumer([args["topic"]], {"bootstrap.servers": args["servers"],
                                               "group_id": f"bench-{uuid.uuid4().hex[:8]}"},
                             auto_store=False)
    n = nbytes = files = 0
    start = None
    with tempfile.TemporaryDirectory(prefix="fink-bench-save-") as folder:
        sink = DiskSink(consumer, folder, args["format"], batch_size=1000)
        # the pass-through sink wants schemaless values validated, not decoded
        raw = {"raw": True} if getattr(sink, "raw", False) else {}

        def done(paths: list) -> None:
            nonlocal nbytes, files
            for path in paths:  # durable: keep the disk footprint small
                nbytes += os.path.getsize(path)
                files += 1
                os.unlink(path)

        while n < count:
            got = consumer.consume_messages(min(200, count - n), timeout=1.0, **raw)
            if got and start is None:
                start = time.perf_counter()
            n += len(got)
            done(sink.add(got))
        done(sink.flush())
        seconds = time.perf_counter() - (start or 0.0)
        consumer.close()
    return {"alerts": n, "bytes": nbytes, "seconds": seconds, "files": files,
            "passthrough": getattr(sink, "passthrough_alerts", None)}


def run_disk(args: dict[str, Any]) -> dict[str, Any]:
    import os

    from benchmarks import data
    from fink_client.io.atomic import atomic_write
    from fink_client.io.avro_passthrough import RawAvroWriter

    schema_json, payloads = data.sample_sets()[args["survey"]]
    count, batch = args["count"], 1000
    n = nbytes = 0
    with tempfile.TemporaryDirectory(prefix="fink-bench-disk-") as folder:
        writer = RawAvroWriter(folder)
        writer.prepared(schema_json)  # schema compiled before timing, as in a stream
        start = time.perf_counter()
        while n < count:
            k = min(batch, count - n)
            chunk = [payloads[(n + i) % len(payloads)] for i in range(k)]
            if args["impl"] == "passthrough":
                paths = writer.write(chunk, schema_json, topic="bench", partition=0,
                                     offsets=range(n, n + k))
            else:
                paths = [Path(folder) / f"plain-{n}.bin"]
                with atomic_write(paths[0]) as fh:
                    for value in chunk:
                        fh.write(value)
            for path in paths:
                nbytes += os.path.getsize(path)
                os.unlink(path)
            n += k
        seconds = time.perf_counter() - start
    return {"alerts": n, "bytes": nbytes, "seconds": seconds}


def run_container(args: dict[str, Any]) -> dict[str, Any]:
    import fastavro

    from benchmarks import data

    values = data.container_values(args["set"])
    if args["impl"] == "fastavro":
        def dec(v: bytes) -> Any:
            return list(fastavro.reader(io.BytesIO(v)))
    else:
        from fink_client.wire import Decoder

        dec = Decoder().decode
    return repeat_for(dec, values, args["seconds"])  # ours parses the header schema once


KINDS = {"decode": run_decode, "e2e": run_e2e, "startup": run_startup, "parquet": run_parquet,
         "consume": run_consume, "save": run_save, "disk": run_disk,
         "container": run_container}


def main() -> None:
    """Run one measurement and print its JSON result."""
    kind, args = sys.argv[1], json.loads(sys.argv[2])
    out = KINDS[kind](args)
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
