"""Poison messages interleaved with good alerts, through a real broker.

Bad messages: random bytes, truncated Avro, a key that is not a schema, an empty value,
values written with another schema (a raw ZTF alert under the Fink schema key, and a
Fink alert under a key holding only the first fields of its schema: it would decode
"successfully" into a wrong, partial alert if trailing bytes were not checked), and a
5 MB garbage value. Every good alert must come out; every bad one must raise a
:class:`DecodeError` carrying its topic/partition/offset and raw bytes, and the caller
must be able to go on (API), or land in the dead-letter folder (``on_error="skip"``,
``dead_letter=DIR`` and ``finkctl stream --dead-letter``).
"""

from __future__ import annotations

import json
import random
import subprocess
import time
import uuid
from pathlib import Path

import fastavro
import pytest

from fink_client.consumer import AlertConsumer
from fink_client.errors import DecodeError
from fink_client.replay import Encoder
from tests.faults.helpers import (
    SAMPLES,
    encode_all,
    env_with,
    publish_spread,
    sample_records,
    unique_alerts,
)
from tests.helpers import FINKCTL

pytestmark = [pytest.mark.faults, pytest.mark.integration]

N_GOOD = 60
SEED = 6


def poison_messages() -> list[tuple[str, bytes | None, bytes | None]]:
    """``(kind, value, key)`` of each bad message."""
    rng = random.Random(SEED)
    (value, key), = list(encode_all(unique_alerts(1)))
    enc = Encoder("fink")
    raw_value, raw_key = enc.encode(*sample_records(SAMPLES / "ztf" / "raw")[0])
    fink_schema = json.loads(key)
    prefix_schema = dict(fink_schema, fields=fink_schema["fields"][:3])
    return [
        ("random bytes", rng.randbytes(3000), key),
        ("truncated avro", value[: len(value) // 2], key),
        ("key not a schema", value, b"not a schema \x00\xff\xfe"),
        ("empty value", b"", key),
        ("wrong schema (raw ZTF value, Fink key)", raw_value, key),
        ("wrong schema (Fink value, raw ZTF key)", value, raw_key),
        ("schema prefix: trailing bytes", value, json.dumps(prefix_schema).encode()),
        ("5 MB garbage", rng.randbytes(5 * 1024 * 1024), key),
    ]


@pytest.fixture(scope="module")
def poisoned(kafka) -> dict:
    """A 1-partition topic: good alerts with the bad messages spread among them."""
    name = kafka.create_topic(f"poison-{uuid.uuid4().hex[:8]}")
    good = list(encode_all(unique_alerts(N_GOOD)))
    bad = poison_messages()
    rng = random.Random(SEED)
    slots = sorted(rng.sample(range(1, N_GOOD), len(bad)))
    stream: list[tuple[str, bytes | None, bytes | None]] = []
    gi = 0
    for i in range(N_GOOD + len(bad)):
        if i - gi in range(len(slots)) and slots[i - gi] == gi:
            stream.append(bad[i - gi])
        else:
            v, k = good[gi]
            stream.append(("good", v, k))
            gi += 1
    assert sum(1 for s in stream if s[0] != "good") == len(bad)
    where = publish_spread([(v, k) for _, v, k in stream], name, kafka.admin_servers, 1)
    offsets = {o: kind for (kind, _, _), (_, o) in zip(stream, where, strict=True)}
    raw = {o: v for (_, v, _), (_, o) in zip(stream, where, strict=True)}
    return {"topic": name, "kinds": offsets, "raw": raw,
            "bad": {o for o, k in offsets.items() if k != "good"}}


def _check_error(exc: DecodeError, poisoned: dict) -> None:
    assert exc.topic == poisoned["topic"]
    assert exc.partition == 0
    assert exc.offset in poisoned["bad"], f"offset {exc.offset} is a good alert: {exc}"
    assert (exc.raw_value or b"") == poisoned["raw"][exc.offset]
    assert f"offset {exc.offset}" in str(exc)


def test_poll_raises_each_bad_message_and_continues(poisoned, alice_config) -> None:
    """poll(): every good alert, in order; one DecodeError per bad message; no stop."""
    candids: list[int] = []
    errors: list[DecodeError] = []
    deadline = time.monotonic() + 60
    with AlertConsumer([poisoned["topic"]], alice_config(f"g-{uuid.uuid4().hex[:8]}")) as c:
        while len(candids) + len(errors) < len(poisoned["kinds"]):
            assert time.monotonic() < deadline, f"stuck: {len(candids)} good, {len(errors)} bad"
            try:
                topic, alert = c.poll(timeout=2)
            except DecodeError as exc:  # the caller skips it and goes on
                errors.append(exc)
                continue
            if topic is not None:
                candids.append(alert["candid"])
    assert candids == list(range(1, N_GOOD + 1))
    assert sorted(e.offset for e in errors) == sorted(poisoned["bad"])
    for exc in errors:
        _check_error(exc, poisoned)
    assert "5 MB" in poisoned["kinds"][max(poisoned["raw"], key=lambda o: len(
        poisoned["raw"][o] or b""))]


def test_consume_hands_out_good_alerts_before_the_error(poisoned, alice_config) -> None:
    """consume(n): the alerts before a bad message come first, the error on the next call."""
    candids: list[int] = []
    errors: list[DecodeError] = []
    deadline = time.monotonic() + 60
    with AlertConsumer([poisoned["topic"]], alice_config(f"g-{uuid.uuid4().hex[:8]}")) as c:
        while len(candids) + len(errors) < len(poisoned["kinds"]):
            assert time.monotonic() < deadline
            try:
                batch = c.consume(num_alerts=25, timeout=2)
            except DecodeError as exc:
                errors.append(exc)
                continue
            candids.extend(a["candid"] for _, a in batch)
    assert candids == list(range(1, N_GOOD + 1))
    assert sorted(e.offset for e in errors) == sorted(poisoned["bad"])


def test_skip_and_dead_letter(poisoned, alice_config, tmp_path, caplog) -> None:
    """on_error='skip' + dead_letter: only good alerts come out; every bad one is kept."""
    dead = tmp_path / "dead"
    got: list[int] = []
    with caplog.at_level("WARNING", logger="fink_client"), AlertConsumer(
        [poisoned["topic"]], alice_config(f"g-{uuid.uuid4().hex[:8]}"),
        on_error="skip", dead_letter=dead,
    ) as c:
        deadline = time.monotonic() + 60
        while len(got) < N_GOOD and time.monotonic() < deadline:
            got.extend(a["candid"] for _, a in c.consume(num_alerts=100, timeout=2))
    assert got == list(range(1, N_GOOD + 1))
    check_dead_letters(dead, poisoned)
    assert sum("skipped undecodable" in r.getMessage() for r in caplog.records) == len(
        poisoned["bad"])


def check_dead_letters(dead: Path, poisoned: dict) -> None:
    """One entry per bad message: raw value bytes identical, reason and location kept."""
    metas = {json.loads(p.read_text())["offset"]: json.loads(p.read_text())
             for p in dead.glob("*.json")}
    assert set(metas) == poisoned["bad"]
    for offset, meta in metas.items():
        assert meta["topic"] == poisoned["topic"] and meta["partition"] == 0
        assert meta["error"] == "DecodeError" and meta["reason"]
        stem = f"{poisoned['topic']}-0-{offset}"
        raw = poisoned["raw"][offset]
        value_file = dead / f"{stem}.value"
        if raw:
            assert value_file.read_bytes() == raw, poisoned["kinds"][offset]
        else:  # empty value: nothing to keep but the record of it
            assert meta["value_bytes"] in (0, None)


def test_cli_dead_letters_every_bad_message(kafka, poisoned, tmp_path) -> None:
    """finkctl stream --save --dead-letter: good alerts saved, bad ones dead-lettered."""
    save, dead = tmp_path / "save", tmp_path / "dead"
    env = env_with({
        "FINK_CLIENT_CONFIG_DIR": str(tmp_path / "cfg"), "FINK_USERNAME": "alice",
        "FINK_PASSWORD": kafka.users["alice"], "FINK_GROUP_ID": f"g-{uuid.uuid4().hex[:8]}",
        "FINK_SERVERS": kafka.bootstrap_servers,
    })
    proc = subprocess.run(
        [*FINKCTL, "stream", poisoned["topic"], "--save", str(save), "--until-end",
         "--dead-letter", str(dead), "--json"],
        env=env, capture_output=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert sorted(saved_candids(save)) == list(range(1, N_GOOD + 1))
    check_dead_letters(dead, poisoned)
    summary = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert summary["alerts"] == N_GOOD
    assert summary["dead_letters"] == len(poisoned["bad"])


def saved_candids(folder: Path) -> list[int]:
    """Candids of every alert in the Avro files of ``folder`` (duplicates kept)."""
    out: list[int] = []
    for path in sorted(folder.rglob("*.avro")):
        with open(path, "rb") as fh:
            out.extend(r["candid"] for r in fastavro.reader(fh))
    return out
