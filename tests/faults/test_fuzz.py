"""Fuzzing the decoder with mutated real payloads (hypothesis).

Seeds: real alerts in every wire format we decode (Fink ZTF with the schema in the
key, raw ZTF, Rubin/LSST, an Avro container, Confluent framing). Mutations: bit flips,
byte overwrites, truncation, insertion, chunk duplication/deletion, and a *huge varint*
spliced in anywhere (a string/bytes length or an array/map count claiming up to
2**62). Properties: only :class:`AlertError` subclasses escape ``Decoder.decode`` and
``fink_client.decode``; each case ends quickly; memory stays bounded. Crafted payloads
whose length prefix claims gigabytes are decoded in a child process whose peak RSS is
compared with a baseline.

The case count is printed (``[faults] fuzz: N cases``) so that it can be quoted.
"""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import strategies as st

import fink_client
from fink_client.errors import AlertError
from fink_client.replay import Encoder
from fink_client.wire import Decoder
from tests.faults import fuzzing
from tests.faults.helpers import SAMPLES, sample_records

pytestmark = pytest.mark.faults


def _seeds() -> list[tuple[str, bytes, bytes | None]]:
    out: list[tuple[str, bytes, bytes | None]] = []
    for sub in ("ztf/fink", "ztf/raw", "lsst"):
        for schema, record in sample_records(SAMPLES / sub)[:2]:
            value, key = Encoder("fink").encode(schema, record)
            out.append((f"fink:{sub}", value, key))
    schema, record = sample_records(SAMPLES / "ztf" / "raw")[0]
    out.append(("container", Encoder("container").encode(schema, record)[0], None))
    out.append(("confluent", Encoder("confluent", schema_id=10).encode(schema, record)[0], None))
    return out


SEEDS = _seeds()
DECODER = Decoder()
COUNT = {"cases": 0, "decoded": 0, "errors": 0, "slowest": 0.0}


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, bytes | None]:
    """A seed payload with 1-4 mutations (and, rarely, a mutated key)."""
    _name, value, key = draw(st.sampled_from(SEEDS))
    buf = fuzzing.mutate_bytes(draw, value)
    if key is not None and draw(st.integers(0, 19)) == 0:
        kb = bytearray(key)
        if kb:
            kb[draw(st.integers(0, len(kb) - 1))] = draw(st.integers(0, 255))
        key = bytes(kb)
    return buf, key


def _decode_one(value: bytes, key: bytes | None) -> None:
    t0 = time.perf_counter()
    try:
        DECODER.decode(value, key, topic="fuzz", partition=0, offset=COUNT["cases"])
        COUNT["decoded"] += 1
    except AlertError:
        COUNT["errors"] += 1
    # anything else propagates: the property is violated
    elapsed = time.perf_counter() - t0
    COUNT["cases"] += 1
    COUNT["slowest"] = max(COUNT["slowest"], elapsed)
    assert elapsed < fuzzing.CASE_LIMIT_S, f"one decode took {elapsed:.1f} s"


@pytest.mark.timeout(300)
def test_mutated_payloads_raise_only_alert_errors(capsys) -> None:
    """Only typed errors escape, every case is fast, RSS stays flat over the whole run."""
    for _name, value, key in SEEDS:  # warm the schema cache before measuring memory
        DECODER.decode(value, key)
    growth, seconds = fuzzing.run_fuzz(_decode_one, mutated(), fuzzing.FUZZ_CASES)
    with capsys.disabled():
        print(f"\n[faults] fuzz: {COUNT['cases']} cases ({COUNT['errors']} typed errors, "
              f"{COUNT['decoded']} decoded), slowest {COUNT['slowest'] * 1000:.1f} ms, "
              f"RSS growth {growth / 2**20:.1f} MB, {seconds:.0f} s")
    assert COUNT["cases"] >= fuzzing.FUZZ_CASES * 0.9
    assert COUNT["errors"] > COUNT["cases"] // 2  # the mutations do break payloads
    assert growth < fuzzing.RSS_GROWTH_LIMIT


def test_public_decode_function_also_raises_typed_errors() -> None:
    """``fink_client.decode`` (the helper for payloads got elsewhere) has the same contract."""
    _n, value, key = SEEDS[0]
    for bad in (value[:100], value + b"\x00", b"\xff" * 64, fuzzing.zigzag(2**60) + value[1:]):
        with pytest.raises(AlertError):
            fink_client.decode(bad, key)


@pytest.mark.parametrize("fastpath", ["c", "fastavro"])
def test_length_prefix_claiming_gigabytes_allocates_nothing(fastpath: str) -> None:
    """Strings/arrays claiming 16 MB..4 EB: typed error, fast, peak RSS growth < 64 MB."""
    env = dict(os.environ)
    if fastpath == "fastavro":
        env["FINK_CLIENT_NO_FASTPATH"] = "1"
    fuzzing.check_crafted_in_child("wire", env)
