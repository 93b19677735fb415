"""``benchmarks.transfer``'s disk ceiling: the bytes a transfer makes durable, written as
its workers write them, and the table row that shows it beside the transfer cases."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from benchmarks.transfer import disk_ceiling, markdown


def test_the_ceiling_writes_every_byte_durably_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = disk_ceiling(3_000_000, 3)
    assert result["bytes"] == 3 * (1_000_000 + 8)  # each file: its number, then the block
    assert result["seconds"] > 0 and result["cpu"] >= 0
    assert list(tmp_path.iterdir()) == []  # its folder is removed


def test_the_table_gives_the_ceiling_no_verdict_and_each_case_its_share_of_it() -> None:
    base = {"alerts_per_s": 15_000, "mb_per_s": 700.0, "cpu_us_per_alert": 55}
    disk = {"alerts_per_s": 6_000, "mb_per_s": 280.0, "cpu_us_per_alert": 12}
    case = {"alerts_per_s": 4_500, "mb_per_s": 210.0, "cpu_us_per_alert": 200,
            "startup": 0.9}
    rows = [{"case": "disk ceiling", "ours": disk, "baseline": base,
             "ratio_vs_bare_mb": 0.4, "target": "none", "met": None},
            {"case": "parquet", "ours": case, "baseline": base, "ratio_vs_bare_mb": 0.3,
             "of_disk": 0.75, "target": ">= 0.5x bare MB/s", "met": False}]
    meta = {"date": "d", "machine": "m", "alerts": 20_000, "payload_mb": 940.0,
            "partitions": 10, "repeat": 3, "load_before": "0", "load_after": "0",
            "bare_runs": "15,000", "disk_runs": "280"}
    lines = markdown(rows, meta).splitlines()
    assert "the disk ceiling's: 280 MB/s" in lines[0]
    disk_row = next(line for line in lines if line.startswith("| disk ceiling"))
    case_row = next(line for line in lines if line.startswith("| parquet"))
    assert disk_row.endswith("| 0.40x |  | none |  |")  # no share of itself, no verdict
    assert case_row.endswith("| 0.30x | 0.75x | >= 0.5x bare MB/s | **no** |")
    header = next(line for line in lines if line.startswith("| case"))
    assert header.count("|") == disk_row.count("|") == case_row.count("|")
