"""``finkctl demo`` as a real subprocess: both surveys, Rubin/LSST first, times in UTC."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers import FINKCTL

pytestmark = pytest.mark.integration


def test_demo_shows_lsst_first_then_ztf_in_utc() -> None:
    r = subprocess.run([*FINKCTL, "demo"], capture_output=True, text=True, timeout=240,
                       env={k: v for k, v in os.environ.items() if not k.startswith("FINK_")})
    out = r.stdout
    assert r.returncode == 0, r.stderr + out
    assert "received 24 of 24 alerts" in out and "done: every alert published" in out
    lsst, ztf = out.index("Rubin/LSST alerts"), out.index("ZTF alerts")
    assert out.index("-> topic 'fink_lsst'") < out.index("-> topic 'rrlyr'")
    assert lsst < ztf
    lsst_table, ztf_table = out[lsst:ztf], out[ztf:]
    header = lsst_table.splitlines()[1].split()
    assert header[:6] == ["topic", "diaObjectId", "diaSourceId", "date", "(UTC)", "band"]
    assert "flux" in header and "snn_sn_vs_others" in header
    # midpointMjdTai 60776.83602190012 is 20:03:52 TAI, i.e. 20:03:15 UTC
    assert lsst_table.count("2025-04-11 20:03:15") == 6 and "TAI" not in out
    assert ztf_table.splitlines()[1].split()[:7] == ["topic", "objectId", "candid", "date",
                                                     "(UTC)", "band", "mag"]
    assert "ZTF18abvcdqu" in ztf_table and "ZTF18abvcdqu" not in lsst_table
