"""``io.direct.DirectFile`` (files past the page cache) and ``atomic_write(direct=True)``:
the same bytes as an ordinary write whatever the sizes, O_DIRECT really used where the
file system takes it, and an ordinary write where it does not."""

from __future__ import annotations

import errno
import fcntl
import os
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fink_client.io import direct
from fink_client.io.atomic import atomic_write, write_parts
from fink_client.io.direct import CHUNK, DirectFile

SIZES = [0, 1, 4095, 4096, 4097, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 12345]


def _takes_o_direct(folder: Path) -> bool:
    """Whether ``folder``'s file system accepts O_DIRECT (ext4 and xfs do, tmpfs before
    Linux 6.6 does not): the test then checks that it was used."""
    probe = folder / "probe"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
    except OSError:
        return False
    os.close(fd)
    probe.unlink()
    return True


@pytest.mark.parametrize("size", SIZES)
def test_bytes_are_written_exactly_in_pieces_of_any_size(tmp_path: Path, size: int) -> None:
    rng = random.Random(size)
    data = rng.randbytes(size)
    path = tmp_path / "f.bin"
    with atomic_write(path, direct=True) as fh:
        assert isinstance(fh, DirectFile)
        at = 0
        while at < size:  # uneven pieces, some across the staging buffer's end
            step = rng.choice([1, 100, 5000, 70_000, CHUNK // 3, CHUNK + 7])
            assert fh.write(data[at:at + step]) == len(data[at:at + step])
            at += step
    assert path.read_bytes() == data
    assert not list(tmp_path.glob(".*.tmp"))


def test_full_buffers_go_past_the_page_cache(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f.bin", os.O_WRONLY | os.O_CREAT, 0o600)
    fh = DirectFile(fd, "f.bin")
    fh.write(b"x" * (CHUNK + 10))  # one full buffer written, 10 bytes staged
    uses_direct = bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)
    assert uses_direct == _takes_o_direct(tmp_path)
    fh.close()  # the tail goes through the page cache: O_DIRECT is off for it
    assert (tmp_path / "f.bin").read_bytes() == b"x" * (CHUNK + 10)


def test_a_refused_direct_write_is_written_normally(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system may accept the flag and refuse the write (EINVAL): the bytes are
    then written without it, none lost or doubled."""
    real = os.write
    refused = []

    def write(fd: int, data: memoryview) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            refused.append(len(data))
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
    data = random.Random(3).randbytes(2 * CHUNK + 99)
    with atomic_write(tmp_path / "f.bin", direct=True) as fh:
        fh.write(data)
    assert (tmp_path / "f.bin").read_bytes() == data
    assert len(refused) <= 1  # refused once, then no longer tried for this file


def test_other_errors_still_raise_and_leave_no_file(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int, data: memoryview) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError, match="No space"), \
            atomic_write(tmp_path / "f.bin", direct=True) as fh:
        fh.write(b"y" * (CHUNK + 1))
    assert list(tmp_path.iterdir()) == []


def test_turned_off_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINK_CLIENT_DIRECT_IO", "0")
    assert not direct.enabled()
    with atomic_write(tmp_path / "f.bin", direct=True) as fh:
        assert not isinstance(fh, DirectFile)
        fh.write(b"abc")
    assert (tmp_path / "f.bin").read_bytes() == b"abc"


def test_two_files_open_at_once_in_one_thread(tmp_path: Path) -> None:
    """The staging buffers are per thread, but never shared by two open files."""
    a, b = random.Random(1).randbytes(CHUNK + 5), random.Random(2).randbytes(CHUNK + 6)
    with atomic_write(tmp_path / "a", direct=True) as fa, \
            atomic_write(tmp_path / "b", direct=True) as fb:
        for i in range(0, CHUNK + 6, 4096):  # interleaved writes
            fa.write(a[i:i + 4096])
            fb.write(b[i:i + 4096])
    assert (tmp_path / "a").read_bytes() == a
    assert (tmp_path / "b").read_bytes() == b


def test_parts_and_parquet_through_a_direct_file(tmp_path: Path) -> None:
    parts = [random.Random(i).randbytes(47_000) for i in range(200)]  # ~9.4 MB of values
    with atomic_write(tmp_path / "parts.bin", direct=True) as fh:
        assert write_parts(fh, parts) == sum(map(len, parts))
    assert (tmp_path / "parts.bin").read_bytes() == b"".join(parts)

    table = pa.table({"id": list(range(200)), "cutout": parts})
    with atomic_write(tmp_path / "t.parquet", direct=True) as fh:
        pq.write_table(table, fh)
    assert pq.read_table(tmp_path / "t.parquet").equals(table)



def _table(rows: int) -> pa.Table:
    rng = random.Random(rows)
    return pa.table({"id": list(range(rows)), "x": [rng.random() for _ in range(rows)],
                     "cutout": [rng.randbytes(40_000) for _ in range(rows)]})


def test_a_whole_parquet_file_is_built_in_memory_then_written_as_it_is(
        tmp_path: Path) -> None:
    table = _table(300)  # ~12 MB: several O_DIRECT blocks and a tail
    expected = pa.BufferOutputStream()
    pq.write_table(table, expected)
    with atomic_write(tmp_path / "t.parquet", direct=True) as fh:
        assert fh.write_whole(lambda sink: pq.write_table(table, sink), 64 << 20)
    assert (tmp_path / "t.parquet").read_bytes() == expected.getvalue().to_pybytes()


def test_a_file_too_big_for_its_hint_is_not_written_whole(tmp_path: Path) -> None:
    table = _table(100)
    with atomic_write(tmp_path / "t.parquet", direct=True) as fh:
        assert not fh.write_whole(lambda sink: pq.write_table(table, sink), 1 << 20)
        assert fh.tell() == 0  # nothing written: the caller streams it instead
        pq.write_table(table, fh)
    assert pq.read_table(tmp_path / "t.parquet").equals(table)


def test_only_a_first_write_is_whole(tmp_path: Path) -> None:
    with atomic_write(tmp_path / "f.bin", direct=True) as fh:
        fh.write(b"head")
        assert not fh.write_whole(lambda sink: sink.write(b"body"), 1 << 20)
    assert (tmp_path / "f.bin").read_bytes() == b"head"


def test_parquet_writer_writes_its_files_whole(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """ParquetWriter takes the whole-file path: no piece goes through write()."""
    from fink_client import schemas, synth
    from fink_client.io import ParquetWriter

    pieces = []
    real = DirectFile.write
    monkeypatch.setattr(DirectFile, "write", lambda self, d: pieces.append(len(d)) or real(self, d))
    schema = schemas.load("avro_schema_ftransfer_ztf_2026-03-23")
    alerts = list(synth.generate(schema, 30, seed=2))
    [path] = ParquetWriter(tmp_path, schema).write(alerts)
    assert pieces == []
    assert pq.read_table(path).num_rows == 30
