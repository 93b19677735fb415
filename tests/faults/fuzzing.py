"""Shared machinery of the two fuzz suites (tests/faults/test_fuzz.py: ``Decoder``;
tests/faults/test_arrow_fuzz.py: ``decode_batch``).

- :func:`mutate_bytes`: the payload mutations (bit flips, overwrites, truncation,
  insertion, duplication, deletion, varints claiming huge lengths or counts);
- :func:`run_fuzz`: a property over many derandomized hypothesis cases, with the
  process's RSS growth and the time taken;
- :func:`crafted_payloads` and :func:`check_crafted_in_child`: payloads whose length
  prefixes claim gigabytes, decoded in a child process (scripts/crafted_decode.py)
  whose peak RSS is measured.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
from collections.abc import Callable
from typing import Any

import fastavro
import psutil
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fink_client.replay import Encoder
from tests.faults.helpers import python_cmd, sample_records

#: Fuzz cases of tests/faults/test_fuzz.py (``FINK_FUZZ_CASES``: more for a longer run).
FUZZ_CASES = int(os.environ.get("FINK_FUZZ_CASES", "5000"))
CASE_LIMIT_S = 2.0  # one decode of a ~50-160 KB payload takes ~1 ms: 2 s means a hang
RSS_GROWTH_LIMIT = 64 * 1024 * 1024


def zigzag(n: int) -> bytes:
    """Avro long encoding of ``n``."""
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        b = z & 0x7F
        z >>= 7
        if z:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def mutate_bytes(draw: st.DrawFn, value: bytes) -> bytes:
    """``value`` with 1-4 mutations: bit flips, bytes set, truncation, insertions,
    duplicated or deleted runs, and varints claiming huge lengths or counts."""
    buf = bytearray(value)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "insert", "dup", "delete",
                                   "varint", "varint"]))
        pos = draw(st.integers(0, max(0, len(buf) - 1)))
        if op == "flip" and buf:
            buf[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and buf:
            buf[pos] = draw(st.integers(0, 255))
        elif op == "truncate":
            del buf[pos:]
        elif op == "insert":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "dup":
            n = draw(st.integers(1, 512))
            buf[pos:pos] = buf[pos:pos + n]
        elif op == "delete":
            del buf[pos:pos + draw(st.integers(1, 512))]
        elif op == "varint":  # a length or count claiming up to exabytes
            big = draw(st.one_of(st.integers(2**20, 2**62), st.integers(-(2**62), -1)))
            buf[pos:pos + draw(st.integers(0, 9))] = zigzag(big)
    return bytes(buf)


def run_fuzz(
    check_one: Callable[..., None], cases: st.SearchStrategy[tuple[Any, ...]], count: int
) -> tuple[int, float]:
    """Call ``check_one(*case)`` on ``count`` derandomized cases drawn from ``cases``.

    Returns the growth of this process's RSS over the run (bytes) and its length
    (seconds). A failing ``check_one`` fails the test, with hypothesis's shrunk case.
    """
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    t0 = time.monotonic()

    @settings(max_examples=count, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(cases)
    def run(case: tuple[Any, ...]) -> None:
        check_one(*case)

    run()
    return proc.memory_info().rss - rss0, time.monotonic() - t0


def _prefix_len(schema: dict, record: dict, nfields: int) -> int:
    """Byte offset where field ``nfields`` starts in the schemaless encoding of ``record``."""
    prefix = dict(schema, fields=schema["fields"][:nfields])
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(prefix, named_schemas={}), record)
    return buf.tell()


def crafted_payloads() -> list[tuple[str, bytes, bytes]]:
    """Fink ZTF payloads whose first string length, or prv_candidates count, is huge."""
    schema, record = sample_records()[0]
    value, key = Encoder("fink").encode(schema, record)
    names = [f["name"] for f in schema["fields"]]
    at = _prefix_len(schema, record, names.index("prv_candidates"))
    out = []
    for claim in (2**24, 2**31, 2**40, 2**62):
        # timestamp: union branch 0 (string), then the string length
        out.append((f"string of {claim} bytes", b"\x00" + zigzag(claim) + value[2:200], key))
        # prv_candidates: union branch 0 (array), then the block count
        out.append((f"array of {claim} items", value[:at] + b"\x00" + zigzag(claim)
                    + value[at + 2:at + 300], key))
        out.append((f"array block of -{claim} items", value[:at] + b"\x00" + zigzag(-claim)
                    + zigzag(claim) + value[at + 2:at + 300], key))
    return out


def check_crafted_in_child(kind: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Decode the crafted payloads in a child process (scripts/crafted_decode.py ``kind``:
    ``wire`` or ``batch``) whose peak RSS is measured.

    Asserts that none escaped its typed error, none decoded, none was slow and the peak
    RSS grew by less than :data:`RSS_GROWTH_LIMIT`; returns the child's report for
    further checks.
    """
    good = Encoder("fink").encode(*sample_records()[0])[0].hex()
    cases = [(n, v.hex(), k.hex(), good) for n, v, k in crafted_payloads()]
    proc = subprocess.run(python_cmd("crafted_decode.py", kind),
                          input=json.dumps(cases).encode(), capture_output=True, timeout=120,
                          env=env or dict(os.environ))
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    out: dict[str, Any] = json.loads(proc.stdout)
    assert out["escaped"] == []
    assert out["decoded"] == []
    assert out["slow"] == []
    assert out["peak_growth_kb"] * 1024 < RSS_GROWTH_LIMIT, (
        f"peak RSS grew by {out['peak_growth_kb'] / 1024:.0f} MB")
    return out
