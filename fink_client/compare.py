"""Alert equality: NaN-aware, type-strict, and telling *where* two alerts differ.

:func:`first_difference` names the path of the first difference
(``candidate.magpsf``, ``prv_candidates[3].jd``) instead of dumping two 50 KB dicts;
:func:`alerts_equal` is its yes/no form. The writers use it to tell a rerun that
rewrites the same alerts from a clash with a different alert's file.

Equality is strict about types that matter for round trips: an ``int`` never equals a
``float`` (a 64-bit id that became a float is a bug), ``bytes`` never equals ``str``,
and ``None`` never equals NaN. ``bool`` and ``int`` are told apart as well.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["alerts_equal", "first_difference"]


def _kind(value: Any) -> str:
    """Coarse type class used to compare values from different libraries alike."""
    if value is None:
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytes"
    if isinstance(value, str):
        return "str"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, (Sequence, np.ndarray)):
        return "list"
    return type(value).__name__


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """Describe the first difference between ``a`` and ``b`` (``None`` if equal).

    NaN equals NaN (any payload); ``-0.0`` equals ``0.0``; dict key order is ignored;
    list order matters.
    """
    ka, kb = _kind(a), _kind(b)
    where = path or "<root>"
    if ka != kb:
        return f"{where}: type {ka} ({a!r:.80}) != {kb} ({b!r:.80})"
    if ka == "null":
        return None
    if ka == "float":
        fa, fb = float(a), float(b)
        if math.isnan(fa) and math.isnan(fb):
            return None
        return None if fa == fb else f"{where}: {fa!r} != {fb!r}"
    if ka in ("int", "bool", "str"):
        return None if a == b else f"{where}: {a!r:.80} != {b!r:.80}"
    if ka == "bytes":
        ba, bb = bytes(a), bytes(b)
        if ba == bb:
            return None
        return f"{where}: bytes differ (lengths {len(ba)} and {len(bb)})"
    if ka == "map":
        keys_a, keys_b = set(a), set(b)
        if keys_a != keys_b:
            only_a = sorted(map(str, keys_a - keys_b))[:5]
            only_b = sorted(map(str, keys_b - keys_a))[:5]
            return f"{where}: keys differ (only left: {only_a}, only right: {only_b})"
        for key in a:
            diff = first_difference(a[key], b[key], f"{path}.{key}" if path else str(key))
            if diff:
                return diff
        return None
    if ka == "list":
        if len(a) != len(b):
            return f"{where}: lengths {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            diff = first_difference(x, y, f"{path}[{i}]")
            if diff:
                return diff
        return None
    return None if a == b else f"{where}: {a!r:.80} != {b!r:.80}"


def alerts_equal(a: Any, b: Any) -> bool:
    """True when ``a`` and ``b`` are equal alerts (NaN-aware, type-strict)."""
    return first_difference(a, b) is None
