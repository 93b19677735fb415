"""Fuzzing the Avro -> Arrow batch decoder (``decode_batch``) with mutated real payloads.

Same mutations as tests/faults/test_fuzz.py (tests/faults/fuzzing.py: bit flips,
overwrites, truncation, insertion, duplication, deletion, huge varints) on schemaless
values of real Fink ZTF, raw ZTF and Rubin/LSST alerts, each mutated value placed in a
batch between good ones.
Properties: only :class:`BatchDecodeError` escapes, with the mutated value's index;
each batch ends quickly; RSS stays flat; when both the C path and the dict path
accept a value, they give the same row. Length prefixes claiming gigabytes are
decoded in a child process whose peak RSS is compared with a baseline.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import strategies as st

from fink_client.arrowbatch import BatchDecodeError, BatchDecoder
from fink_client.replay import Encoder
from tests.faults import fuzzing
from tests.faults.helpers import SAMPLES, sample_records
from tests.helpers import c_buildable
from tests.unit.test_arrow_decode import assert_same_batch

pytestmark = pytest.mark.faults

BATCH_CASES = fuzzing.FUZZ_CASES // 5  # a batch decode is ~3 values


def _seeds() -> list[tuple[BatchDecoder, bytes]]:
    out = []
    for sub in ("ztf/fink", "ztf/raw", "lsst"):
        for schema, record in sample_records(SAMPLES / sub)[:2]:
            decoder = BatchDecoder(schema)
            assert decoder.in_c or not c_buildable()
            out.append((decoder, Encoder("fink").encode(schema, record)[0]))
    return out


SEEDS = _seeds()
COUNT = {"cases": 0, "errors": 0, "both_ok": 0, "slowest": 0.0}


@st.composite
def mutated(draw: st.DrawFn) -> tuple[int, bytes]:
    index = draw(st.integers(0, len(SEEDS) - 1))
    return index, fuzzing.mutate_bytes(draw, SEEDS[index][1])


def _one(index: int, value: bytes) -> None:
    decoder, good = SEEDS[index]
    t0 = time.perf_counter()
    try:
        got = decoder.decode([good, value, good])
    except BatchDecodeError as exc:
        assert exc.index == 1, f"error blamed on value {exc.index}"
        COUNT["errors"] += 1
        got = None
    # anything else propagates: the property is violated
    elapsed = time.perf_counter() - t0
    COUNT["cases"] += 1
    COUNT["slowest"] = max(COUNT["slowest"], elapsed)
    assert elapsed < fuzzing.CASE_LIMIT_S, f"one batch took {elapsed:.1f} s"
    if got is not None:
        try:
            ref = decoder.decode_via_dicts([good, value, good])
        except BatchDecodeError:
            return  # e.g. a timestamp beyond datetime's range: only the dict path fails
        COUNT["both_ok"] += 1
        assert_same_batch(got, ref)


@pytest.mark.timeout(300)
def test_mutated_values_raise_only_batch_decode_errors(capsys) -> None:
    for decoder, good in SEEDS:  # warm up both paths (pyarrow's pool keeps what it got)
        for _ in range(50):
            decoder.decode([good] * 3)
            decoder.decode_via_dicts([good] * 3)
    growth, seconds = fuzzing.run_fuzz(_one, mutated(), BATCH_CASES)
    with capsys.disabled():
        print(f"\n[faults] arrow fuzz: {COUNT['cases']} batches ({COUNT['errors']} typed "
              f"errors, {COUNT['both_ok']} equal to the dict path), slowest "
              f"{COUNT['slowest'] * 1000:.1f} ms, RSS growth {growth / 2**20:.1f} MB, "
              f"{seconds:.0f} s")
    assert COUNT["cases"] >= BATCH_CASES * 0.9
    assert COUNT["errors"] > COUNT["cases"] // 2
    assert growth < fuzzing.RSS_GROWTH_LIMIT


def test_length_prefix_claiming_gigabytes_allocates_nothing() -> None:
    """Strings/arrays claiming 16 MB..4 EB in a batch: typed error, fast, flat peak RSS."""
    out = fuzzing.check_crafted_in_child("batch")
    assert out["in_c"] or not c_buildable()

