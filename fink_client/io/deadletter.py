"""Dead-letter folder: where undecodable messages are kept, never dropped.

Each rejected message becomes three files named after where it came from,
``<topic>-<partition>-<offset>``: ``.value`` (raw bytes), ``.key`` (raw key, if any)
and ``.json`` (topic, partition, offset, error type and reason, sizes, time). Files
are written atomically, the ``.json`` last: an entry exists once its ``.json`` does. A
rerun that meets the same message again leaves the existing entry as it is.

A failed write (disk full, folder not writable) raises :class:`DeadLetterError` naming
the folder and the message, and leaves no file of that entry behind: callers must not
mark the message delivered then (the consumer delivers it again).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from pathlib import Path
from typing import Any

from fink_client.errors import AlertError, DeadLetterError
from fink_client.io.atomic import atomic_write


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


class DeadLetter:
    """Write rejected messages (raw bytes + reason) into a folder."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def entry_name(self, error: AlertError) -> str:
        """Unique, deterministic name of an entry (topic-partition-offset, or file+time)."""
        if error.topic is not None and error.offset is not None:
            return _safe(f"{error.topic}-{error.partition}-{error.offset}")
        if error.path is not None:
            return _safe(f"{Path(error.path).name}-{time.time_ns()}")
        return f"unknown-{time.time_ns()}"

    def write(self, value: bytes | None, key: bytes | None, error: AlertError) -> Path:
        """Keep ``value``/``key`` and the reason of ``error``; return the ``.json`` path
        once the entry is durable. Raises :class:`DeadLetterError` if it cannot be.
        """
        name = self.entry_name(error)
        meta_path = self.folder / f"{name}.json"
        if meta_path.exists():
            return meta_path
        try:
            self._write_entry(name, meta_path, value, key, error)
        except OSError as exc:
            for suffix in (".value", ".key"):  # no half entry (the .json came last)
                with contextlib.suppress(OSError):
                    (self.folder / f"{name}{suffix}").unlink()
            raise DeadLetterError(
                f"cannot keep the undecodable message in the dead-letter folder "
                f"{str(self.folder)!r}: {exc.strerror or exc}; it was not marked delivered "
                "and comes again: free space or fix the folder, then read on",
                topic=error.topic, partition=error.partition, offset=error.offset,
                path=str(self.folder),
            ) from exc
        self.count += 1
        return meta_path

    def _write_entry(self, name: str, meta_path: Path, value: bytes | None,
                     key: bytes | None, error: AlertError) -> None:
        if value is not None:
            with atomic_write(self.folder / f"{name}.value", overwrite=True) as fh:
                fh.write(value)
        if key is not None:
            with atomic_write(self.folder / f"{name}.key", overwrite=True) as fh:
                fh.write(key)
        meta: dict[str, Any] = {
            "topic": error.topic,
            "partition": error.partition,
            "offset": error.offset,
            "path": error.path,
            "error": type(error).__name__,
            "reason": error.reason,
            "value_bytes": None if value is None else len(value),
            "key_bytes": None if key is None else len(key),
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        with atomic_write(meta_path, overwrite=True) as fh:
            fh.write(json.dumps(meta, indent=1).encode())
