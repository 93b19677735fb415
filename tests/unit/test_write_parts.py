"""``io.atomic.write_parts``: many buffers into a file by ``os.writev``, exactly as
``fh.write`` of each would write them, short writes resumed where they stopped."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import pytest

from fink_client.io import atomic
from fink_client.io.atomic import atomic_write, write_parts


def _parts(n: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.choice([0, 1, 7, 300, 5000])) for _ in range(n)]


def test_file_gets_the_parts_in_order_beyond_one_writev(tmp_path: Path) -> None:
    parts = _parts(3 * atomic._IOV_MAX + 5)  # several writev calls, empty parts among them
    path = tmp_path / "f.bin"
    with atomic_write(path) as fh:
        fh.write(b"head")  # buffered by fh: flushed before the writev
        assert write_parts(fh, parts) == sum(map(len, parts))
        assert fh.tell() == 4 + sum(map(len, parts))
        fh.write(b"tail")  # fh's position followed the descriptor's
    assert path.read_bytes() == b"head" + b"".join(parts) + b"tail"


def test_short_writes_resume_mid_buffer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.writev
    calls = []

    def short(fd: int, buffers: list) -> int:  # at most 1,000 bytes a call, like a slow pipe
        calls.append(len(buffers))
        out, left = [], 1000
        for b in buffers:
            out.append(bytes(b)[:left])
            left -= len(out[-1])
            if not left:
                break
        return real(fd, out)

    monkeypatch.setattr(os, "writev", short)
    parts = _parts(200, seed=2)
    path = tmp_path / "f.bin"
    with open(path, "wb") as fh:
        assert write_parts(fh, parts) == sum(map(len, parts))
    assert path.read_bytes() == b"".join(parts)
    assert len(calls) > sum(map(len, parts)) // 1000  # it did resume many times


def test_writev_writing_nothing_is_an_error(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "writev", lambda fd, buffers: 0)
    with open(tmp_path / "f.bin", "wb") as fh, pytest.raises(OSError, match="wrote nothing"):
        write_parts(fh, [b"abc"])


def test_stream_without_descriptor_gets_write_per_part() -> None:
    parts = _parts(50, seed=3)
    buf = io.BytesIO()
    assert write_parts(buf, parts) == sum(map(len, parts))
    assert buf.getvalue() == b"".join(parts)
