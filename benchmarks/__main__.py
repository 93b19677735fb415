"""The performance harness: ``python -m benchmarks`` (or ``make bench``).

Every case is measured next to its baseline in the same run, each measurement in its
own subprocess (so peak RSS is per run), and the table is printed and written to
``benchmarks/results/latest.json`` and ``latest.md``. ``--quick`` gives a short run
(smaller counts); ``--skip-kafka`` leaves out the cases that need the embedded broker.
``python -m benchmarks.transfer`` measures ``finkctl transfer`` (results/transfer.md).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import byte_compile_package

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def measure(kind: str, args: dict[str, Any], timeout: float = 900) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; return its JSON result."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.worker", kind, json.dumps(args)],
        capture_output=True, text=True, cwd=ROOT, timeout=timeout,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{kind} {args} failed: {proc.stderr.strip()[-800:]}")
    out = json.loads(lines[-1])
    out["alerts_per_s"] = out["alerts"] / out["seconds"] if out["seconds"] else 0.0
    out["mb_per_s"] = out["bytes"] / out["seconds"] / 1e6 if out["seconds"] else 0.0
    return out


def row(case: str, ours: dict, base: dict, *, ratio: float, target: str, met: bool,
        note: str = "") -> dict[str, Any]:
    return {"case": case, "ours": ours, "baseline": base, "ratio": ratio,
            "target": target, "met": met, "note": note}


def decode_cases(quick: bool) -> list[dict]:
    from benchmarks import data

    seconds = 1.0 if quick else 3.0
    rows = []
    for set_name in ("samples", "synthetic"):
        for survey in data.SAMPLE_DIRS:
            args = {"set": set_name, "survey": survey, "seconds": seconds}
            base = measure("decode", {**args, "impl": "fastavro"})
            ours = measure("decode", {**args, "impl": "fink"})
            ratio = ours["alerts_per_s"] / base["alerts_per_s"]
            rows.append(row(f"decode {survey} ({set_name})", ours, base, ratio=ratio,
                            target=">= 3x" if survey == "Fink ZTF" else "",
                            met=ratio >= 3 if survey == "Fink ZTF" else True))
            print(_line(rows[-1]), flush=True)
    return rows


def kafka_cases(quick: bool) -> list[dict]:
    from benchmarks import data
    from fink_client.localkafka import LocalKafka
    from fink_client.replay import publish

    count = 10_000 if quick else 100_000
    _, payloads = data.sample_sets()["Fink ZTF"]
    records = list(_records("Fink ZTF"))
    avg_value = sum(len(p) for p in payloads) / len(payloads)
    rows = []
    with LocalKafka(heap="1g") as kafka:
        servers = kafka.admin_servers
        topic = kafka.create_topic("bench_ztf", partitions=1)
        t0 = time.perf_counter()
        publish((records[i % len(records)] for i in range(count)), topic,
                {"bootstrap.servers": servers, "linger.ms": 50, "batch.size": 4_000_000})
        print(f"  published {count} real Fink ZTF alerts ({avg_value / 1e3:.0f} KB values + "
              f"schema keys) in {time.perf_counter() - t0:.0f} s", flush=True)
        args = {"servers": servers, "topic": topic, "count": count}
        base = measure("e2e", {**args, "impl": "bare"})
        ours = measure("e2e", {**args, "impl": "fink"})
        for m in (base, ours):
            m["mb_per_s"] = m["alerts_per_s"] * avg_value / 1e6
        ratio = ours["alerts_per_s"] / base["alerts_per_s"]
        rows.append(row(f"end to end, {count:,} alerts Kafka -> dicts", ours, base,
                        ratio=ratio, target=">= 2x", met=ratio >= 2,
                        note="baseline: confluent-kafka consume() + fastavro"))
        print(_line(rows[-1]), flush=True)
        # The same bare loop given our fetch settings: how much is decoding alone.
        from fink_client.config import CLIENT_DEFAULTS

        tuned = {k: v for k, v in CLIENT_DEFAULTS.items() if "fetch" in k or "queued" in k}
        base2 = measure("e2e", {**args, "impl": "bare", "config": tuned})
        base2["mb_per_s"] = base2["alerts_per_s"] * avg_value / 1e6
        ratio = ours["alerts_per_s"] / base2["alerts_per_s"]
        rows.append(row("end to end, same, vs bare loop with our fetch settings", ours, base2,
                        ratio=ratio, target="", met=True,
                        note="baseline given fink-client's fetch/queue settings: "
                             "the gain left is decoding"))
        print(_line(rows[-1]), flush=True)
        aio = measure("e2e", {**args, "impl": "aio"})
        aio["mb_per_s"] = aio["alerts_per_s"] * avg_value / 1e6
        ratio = aio["alerts_per_s"] / ours["alerts_per_s"]
        rows.append(row("end to end, asyncio consumer vs the sync one", aio, ours,
                        ratio=ratio, target="", met=True,
                        note="fink_client.aio (worker thread, 0.1 s slices) vs AlertConsumer"))
        print(_line(rows[-1]), flush=True)
        rows += arrow_case(args, ours, avg_value)
        rows += upstream_case(servers, topic, count, ours)
        rows += save_cases(kafka, topic, count, tuned)
        base = measure("startup", {"servers": servers, "topic": topic, "impl": "bare"})
        ours = measure("startup", {"servers": servers, "topic": topic, "impl": "fink"})
        base["unit"] = ours["unit"] = "s"
        rows.append(row("start-up: AlertConsumer() -> first alert", ours, base,
                        ratio=ours["seconds"] / base["seconds"], target="<= 2 s",
                        met=ours["seconds"] <= 2.0,
                        note=f"{ours['seconds']:.2f} s (bare consumer: {base['seconds']:.2f} s)"))
        print(_line(rows[-1]), flush=True)
    return rows


def arrow_case(args: dict, ours: dict, avg_value: float) -> list[dict]:
    """``AlertConsumer.consume_arrow`` vs ``consume`` (dicts, measured above), same topic."""
    from fink_client.consumer import AlertConsumer

    if not hasattr(AlertConsumer, "consume_arrow"):
        print("  consume_arrow vs consume: left out (no AlertConsumer.consume_arrow in this "
              "build)", flush=True)
        return []
    arrow = measure("e2e", {**args, "impl": "arrow"})
    arrow["mb_per_s"] = arrow["alerts_per_s"] * avg_value / 1e6
    ratio = arrow["alerts_per_s"] / ours["alerts_per_s"]
    r = row("consume_arrow (RecordBatches) vs consume (dicts)", arrow, ours, ratio=ratio,
            target=">= 3x", met=ratio >= 3,
            note="same topic; batches of 1,000 built from the Avro bytes; baseline: "
                 "AlertConsumer.consume(100) to dicts")
    print(_line(r), flush=True)
    return [r]


def upstream_case(servers: str, topic: str, count: int, ours: dict) -> list[dict]:
    """Our ``AlertConsumer.consume`` (measured above) vs upstream fink-client's, same topic."""
    from benchmarks import upstream

    n = min(count, 20_000)  # upstream decodes ~1,000/s here: a rate needs no more
    try:
        base = upstream.consume(servers, topic, n)
    except Exception as exc:
        print(f"  end to end vs upstream fink-client: skipped: {exc}", flush=True)
        return []
    base["alerts_per_s"] = base["alerts"] / base["seconds"]
    base["mb_per_s"] = base["alerts_per_s"] * ours["mb_per_s"] / ours["alerts_per_s"]
    ratio = ours["alerts_per_s"] / base["alerts_per_s"]
    r = row(f"end to end dicts vs upstream fink-client {base['version']}", ours, base,
            ratio=ratio, target=">= 8x", met=ratio >= 8,
            note=f"baseline: upstream fink-client {base['version']} from PyPI, in its own "
                 f"virtualenv, AlertConsumer.consume(100) on the same topic ({n:,} alerts)")
    print(_line(r), flush=True)
    return [r]


def _publish_lsst(kafka: Any, count: int) -> tuple[str, float]:
    """A topic of ``count`` real Fink LSST sample alerts (schema JSON as the key)."""
    from benchmarks import data
    from fink_client.replay import publish

    _, payloads = data.sample_sets()["Fink LSST"]
    records = list(_records("Fink LSST"))
    topic = kafka.create_topic("bench_lsst", partitions=1)
    publish((records[i % len(records)] for i in range(count)), topic,
            {"bootstrap.servers": kafka.admin_servers, "linger.ms": 50,
             "batch.size": 4_000_000})
    return topic, sum(len(p) for p in payloads) / len(payloads)


def save_cases(kafka: Any, ztf_topic: str, count: int, tuned: dict) -> list[dict]:
    """``finkctl stream --save`` (AlertConsumer + DiskSink) vs a bare consume loop, MB/s
    of message values, for real alerts of both surveys."""
    servers = kafka.admin_servers
    lsst_count = max(2_000, count // 5)
    t0 = time.perf_counter()
    lsst_topic, lsst_size = _publish_lsst(kafka, lsst_count)
    print(f"  published {lsst_count} real Fink LSST alerts ({lsst_size / 1e3:.0f} KB values) "
          f"in {time.perf_counter() - t0:.0f} s", flush=True)
    rows = []
    for label, topic, n in (("Fink ZTF", ztf_topic, count), ("Fink LSST", lsst_topic,
                                                              lsst_count)):
        args = {"servers": servers, "topic": topic, "count": n}
        base = measure("consume", {**args, "config": tuned})
        for fmt, target in (("avro", 0.7), ("parquet", 0.4)):
            ours = measure("save", {**args, "format": fmt})
            ours["mb_per_s"] = base["mb_per_s"] * ours["alerts_per_s"] / base["alerts_per_s"]
            ratio = ours["mb_per_s"] / base["mb_per_s"]
            how = ("pass-through: raw values framed into container blocks, no decoding"
                   if fmt == "avro" and ours.get("passthrough") else
                   "raw values -> C batch decoder -> Arrow -> Parquet, no dicts"
                   if fmt == "parquet" and ours.get("passthrough") else
                   "decoded dicts -> io.arrow -> Parquet (no C extension)" if fmt == "parquet"
                   else "decoded dicts re-encoded by fastavro")
            rows.append(row(f"{fmt.capitalize()} save, {label}, {n:,} alerts, vs bare consume",
                            ours, base, ratio=ratio, target=f">= {target:.0%}",
                            met=ratio >= target,
                            note=f"stream --save --format {fmt} path (AlertConsumer + DiskSink,"
                                 f" 1,000 alerts per fsynced file; {how}); baseline: bare "
                                 "confluent-kafka consume() of the values with our fetch "
                                 "settings, no decoding; MB/s of message values"))
            print(_line(rows[-1]), flush=True)
    return rows


def disk_cases(quick: bool) -> list[dict]:
    """The Avro pass-through writer alone (no Kafka) vs plain write + fsync of the same
    bytes: what the disk allows, and how close the pass-through gets to it."""
    count = 5_000 if quick else 20_000
    rows = []
    for survey in ("Fink ZTF", "Fink LSST"):
        args = {"survey": survey, "count": count}
        base = measure("disk", {**args, "impl": "plain"})
        ours = measure("disk", {**args, "impl": "passthrough"})
        ratio = ours["mb_per_s"] / base["mb_per_s"]
        rows.append(row(f"Avro pass-through writer alone, {survey}, vs plain write+fsync",
                        ours, base, ratio=ratio, target="", met=True,
                        note="no Kafka: validate + frame + atomic write of the sample values, "
                             "1,000 per file, against writing the same bytes with fsync (the "
                             "disk's own speed, the ceiling of any durable save)"))
        print(_line(rows[-1]), flush=True)
    return rows


def container_cases(quick: bool) -> list[dict]:
    """Raw ZTF container messages (schema in each header): our Decoder vs fastavro.reader."""
    seconds = 1.0 if quick else 3.0
    rows = []
    for set_name in ("samples", "synthetic"):
        args = {"set": set_name, "seconds": seconds}
        base = measure("container", {**args, "impl": "fastavro"})
        ours = measure("container", {**args, "impl": "fink"})
        ratio = ours["alerts_per_s"] / base["alerts_per_s"]
        rows.append(row(f"container messages, raw ZTF ({set_name})", ours, base, ratio=ratio,
                        target=">= 5x", met=ratio >= 5,
                        note="one Avro container per message (raw ZTF streams): "
                             "wire.Decoder.decode vs fastavro.reader per message"))
        print(_line(rows[-1]), flush=True)
    return rows


def parquet_cases(quick: bool) -> list[dict]:
    small, big = (10_000, 100_000) if quick else (100_000, 1_000_000)
    base = measure("parquet", {"count": small, "batch": 1000, "full": True})
    ours = measure("parquet", {"count": big, "batch": 1000, "full": True})
    ratio = ours["peak_rss_mb"] / base["peak_rss_mb"]
    rows = [row(f"to disk: Parquet, {big:,} vs {small:,} alerts (peak RSS ratio)", ours, base,
                ratio=ratio, target="RSS <= 1.5x", met=ratio <= 1.5,
                note="synthetic Fink ZTF alerts (history, cutouts) cycled from a pool of "
                     "500, 1,000 per file; MB/s of Parquet written (the pool's repeated "
                     "cutouts compress well)")]
    print(_line(rows[-1]), flush=True)
    return rows


def _records(survey: str) -> list[tuple[dict, dict]]:
    import fastavro

    from benchmarks import data

    out = []
    for path in sorted((data.SAMPLES / data.SAMPLE_DIRS[survey]).glob("*.avro")):
        with open(path, "rb") as fh:
            reader = fastavro.reader(fh)
            out.extend((reader.writer_schema, rec) for rec in reader)
    return out


def _fmt(m: dict) -> str:
    if m.get("unit") == "s":
        return f"{'first alert in':>14} {m['seconds']:>5.2f} s    {m['peak_rss_mb']:>6.0f} MB"
    return (f"{m['alerts_per_s']:>9,.0f}/s {m['mb_per_s']:>7.1f} MB/s "
            f"{m['peak_rss_mb']:>6.0f} MB")


def _line(r: dict) -> str:
    return (f"{r['case']:<58} {_fmt(r['ours'])} | {_fmt(r['baseline'])} | "
            f"{r['ratio']:5.2f}x {r['target']:>11} {'ok' if r['met'] else 'MISSED'}")


def markdown(rows: list[dict], meta: dict) -> str:
    """The results as a Markdown table."""
    out = [
        f"Run {meta['date']} on {meta['machine']} (Python {meta['python']}, "
        f"{meta['mode']} run, `{meta['command']}`).",
        "",
        "| case | ours: alerts/s | MB/s | peak RSS | baseline: alerts/s | MB/s | peak RSS "
        "| ratio | target | met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        o, b = r["ours"], r["baseline"]
        ratio = f"{r['ratio']:.2f}x"
        if o.get("unit") == "s":  # start-up: a time, not a rate
            cells = [f"first alert in {o['seconds']:.2f} s", "", f"{o['peak_rss_mb']:.0f} MB",
                     f"first message in {b['seconds']:.2f} s", "", f"{b['peak_rss_mb']:.0f} MB"]
        else:
            cells = [f"{o['alerts_per_s']:,.0f}", f"{o['mb_per_s']:.1f}",
                     f"{o['peak_rss_mb']:.0f} MB", f"{b['alerts_per_s']:,.0f}",
                     f"{b['mb_per_s']:.1f}", f"{b['peak_rss_mb']:.0f} MB"]
        out.append(f"| {r['case']} | {' | '.join(cells)} | {ratio} | {r['target']} | "
                   f"{'yes' if r['met'] else '**no**'} |")
    notes = [f"- {r['case']}: {r['note']}" for r in rows if r["note"]]
    if notes:
        out += ["", *notes]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run every case, print the table, write ``results/latest.{json,md}``."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="short run (smaller counts)")
    ap.add_argument("--skip-kafka", action="store_true",
                    help="leave out the end-to-end and start-up cases (no broker)")
    ap.add_argument("--only", choices=["decode", "container", "disk", "kafka", "parquet"],
                    action="append",
                    help="run only these groups of cases (repeatable)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder for latest.json/md")
    args = ap.parse_args(argv)
    groups = args.only or ["decode", "container", "disk", "kafka", "parquet"]
    if args.skip_kafka and "kafka" in groups:
        groups.remove("kafka")

    byte_compile_package()  # as installed: no module compiled again per process
    from fink_client import fastdecode

    if not fastdecode.available():
        print("warning: the C fast path is not built: 'ours' is fastavro", file=sys.stderr)
    print(f"{'case':<58} {'ours':^35} | {'baseline':^35} | ratio", flush=True)
    rows: list[dict] = []
    started = time.time()
    for group in groups:
        try:
            rows += {"decode": decode_cases, "container": container_cases, "disk": disk_cases,
                     "kafka": kafka_cases, "parquet": parquet_cases}[group](args.quick)
        except Exception as exc:  # a missing broker should not lose the other cases
            print(f"  {group}: skipped: {type(exc).__name__}: {exc}", flush=True)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)) + " UTC",
        "machine": f"{platform.machine()}, {_cpus()} CPUs",
        "python": platform.python_version(),
        "mode": "quick" if args.quick else "full",
        "command": "python -m benchmarks" + (" --quick" if args.quick else ""),
        "fast_path": fastdecode.available(),
        "wall_seconds": round(time.time() - started, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps({"meta": meta, "cases": rows}, indent=1))
    (args.out / "latest.md").write_text(markdown(rows, meta))
    print(f"\nwrote {args.out / 'latest.json'} and latest.md ({meta['wall_seconds']:.0f} s)")
    return 0 if all(r["met"] for r in rows) else 1


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


if __name__ == "__main__":
    raise SystemExit(main())
