"""Test helpers shared by fink-client's tests (and usable by users' own tests).

:func:`assert_alerts_equal` compares two alerts (or lists of alerts) exactly, with NaN
equal to NaN, and reports the *path* of the first difference. The comparison itself
lives in :mod:`fink_client.compare` (production code uses it too and never imports
this module); :func:`first_difference` and :func:`alerts_equal` are re-exported here.
"""

from __future__ import annotations

from typing import Any

from fink_client.compare import alerts_equal, first_difference

__all__ = ["alerts_equal", "assert_alerts_equal", "first_difference"]


def assert_alerts_equal(a: Any, b: Any) -> None:
    """Assert that two alerts (or lists of alerts) are equal, NaN-aware and type-strict.

    Raises ``AssertionError`` naming the path of the first difference.
    """
    diff = first_difference(a, b)
    if diff is not None:
        raise AssertionError(f"alerts differ at {diff}")
