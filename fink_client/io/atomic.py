"""Atomic file creation: temporary name, flush, fsync, rename.

A reader (or a restart after ``kill -9``) sees either the complete file under its final
name or nothing: never a half-written alert file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def fsync_dir(path: Path) -> None:
    """fsync a directory so that a rename into it survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | Path, *, overwrite: bool = False) -> Iterator[BinaryIO]:
    """Open ``path`` for binary writing through a temporary file in the same folder.

    On success the data is flushed, fsynced and renamed to ``path``; on error the
    temporary file is removed. Unless ``overwrite`` is true an existing ``path`` is an
    error (``FileExistsError``): names are unique, so a clash means a bug or a rerun of
    exactly the same alerts, which callers check for before writing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not overwrite:
        raise FileExistsError(f"refusing to overwrite {path}")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fh = open(tmp, "wb")  # noqa: SIM115 (closed below, before the rename)
    try:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if path appeared meanwhile: never clobber
            os.unlink(tmp)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):  # closing flushes again: a full disk fails again
            fh.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
