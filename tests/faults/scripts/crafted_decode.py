"""Decode the crafted payloads of tests/faults/fuzzing.py in a fresh process and say how.

Run by :func:`tests.faults.fuzzing.check_crafted_in_child` as ``crafted_decode.py KIND``:

- ``wire``: ``Decoder.decode`` of each payload; any :class:`AlertError` is the expected
  outcome;
- ``batch``: ``BatchDecoder.decode([good, payload])``; a ``BatchDecodeError`` blaming
  value 1 is the expected outcome (blaming the good value is a failure).

stdin: a JSON list of ``[name, value hex, key hex, good value hex]``. stdout: one JSON
object with the names of the payloads that ``escaped`` (any other outcome, with why),
were ``decoded`` or were ``slow`` (over 2 s), and ``peak_growth_kb``: the growth of the
peak RSS over its value after decoding the good alert (schema parsed, builders warm), so
that only what the crafted payloads allocate counts; ``batch`` adds ``in_c``.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

#: One decode: None for the expected typed error, "decoded", or why it is a failure.
Outcome = Callable[[bytes, bytes], "str | None"]


def wire(key: bytes, good: bytes) -> tuple[Outcome, dict[str, Any]]:
    """Decode with fink_client.wire.Decoder (every wire format, dicts)."""
    from fink_client.errors import AlertError
    from fink_client.wire import Decoder

    decoder = Decoder()
    decoder.decode(good, key)

    def one(value: bytes, value_key: bytes) -> str | None:
        try:
            decoder.decode(value, value_key)
        except AlertError:
            return None
        return "decoded"

    return one, {}


def batch(key: bytes, good: bytes) -> tuple[Outcome, dict[str, Any]]:
    """Decode with fink_client.arrowbatch.BatchDecoder (Arrow batches)."""
    from fink_client.arrowbatch import BatchDecodeError, BatchDecoder
    from fink_client.wire import schema_from_key

    decoder = BatchDecoder(schema_from_key(key))
    decoder.decode([good, good])

    def one(value: bytes, _key: bytes) -> str | None:
        try:
            decoder.decode([good, value])
        except BatchDecodeError as exc:
            return None if exc.index == 1 else f"blamed value {exc.index}"
        return "decoded"

    return one, {"in_c": decoder.in_c}


def main() -> None:
    """Decode every case of stdin with the decoder named by argv[1]; print the outcome."""
    cases = json.loads(sys.stdin.read())
    make = {"wire": wire, "batch": batch}[sys.argv[1]]
    one, out = make(bytes.fromhex(cases[0][2]), bytes.fromhex(cases[0][3]))
    out.update(escaped=[], decoded=[], slow=[])
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for name, value, key, _good in cases:
        t0 = time.perf_counter()
        try:
            outcome = one(bytes.fromhex(value), bytes.fromhex(key))
        except BaseException as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        if outcome == "decoded":
            out["decoded"].append(name)
        elif outcome is not None:
            out["escaped"].append(f"{name}: {outcome}")
        if time.perf_counter() - t0 > 2:
            out["slow"].append(name)
    out["peak_growth_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
    print(json.dumps(out))


if __name__ == "__main__":
    main()
