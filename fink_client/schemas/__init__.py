"""Bundled alert schemas and lookups into them.

Bundled schemas (Avro JSON) live beside this module:

- ``fink-ztf/``: Fink's ZTF live-stream schemas (``distribution_schema_*.avsc``) and
  the ZTF data-transfer schema (``avro_schema_ftransfer_ztf_*.json``);
- ``fink-lsst/``: Fink's Rubin/LSST data-transfer schema;
- ``ztf/``: the raw ZTF alert schema (as found in ZTF's own container files).

Older Fink streams put a schema *version string* in the message key instead of the
schema; :func:`for_version` resolves it to a bundled schema.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from fink_client.errors import SchemaError

SCHEMA_DIR = Path(__file__).resolve().parent

_VERSION_PREFIXES = ("distribution_schema_", "avro_schema_")


@functools.lru_cache(maxsize=1)
def bundled() -> dict[str, Path]:
    """Map of bundled schema names (file stem, e.g. ``distribution_schema_fink_ztf_2.7_3.10.1``)
    to their paths."""
    out: dict[str, Path] = {}
    for path in sorted(SCHEMA_DIR.rglob("*")):
        if path.suffix in (".avsc", ".json") and path.is_file():
            out[path.name.rsplit(".", 1)[0]] = path
    return out


@functools.cache
def load(name: str) -> dict[str, Any]:
    """Load a bundled schema by name (see :func:`bundled`) as a JSON dict."""
    try:
        path = bundled()[name]
    except KeyError:
        raise SchemaError(
            f"no bundled schema named {name!r}; available: {', '.join(bundled())}"
        ) from None
    return load_file(path)


def load_file(path: str | Path) -> dict[str, Any]:
    """Load an Avro schema from a ``.avsc``/``.json`` file, or from an Avro container's header."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
            fh.seek(0)
            if head == b"Obj\x01":
                import fastavro

                return fastavro.reader(fh).writer_schema
            return json.load(fh)
    except FileNotFoundError:
        raise SchemaError("schema file not found", path=str(path)) from None
    except (OSError, ValueError) as exc:
        raise SchemaError(f"cannot read schema: {exc}", path=str(path)) from exc


def _normalise(version: str) -> str:
    v = version.strip().lower()
    for prefix in _VERSION_PREFIXES:
        if v.startswith(prefix):
            v = v[len(prefix):]
    return re.sub(r"\.(avsc|json)$", "", v).replace("p", ".")


@functools.lru_cache(maxsize=1)
def _version_index() -> dict[str, str]:
    """Every accepted spelling of a version string -> bundled schema name."""
    index: dict[str, str] = {}
    for name in bundled():
        if not name.startswith("distribution_schema_"):
            continue
        full = _normalise(name)  # e.g. "fink_ztf_2.7_3.10.1" or "0.2-live"
        keys = {full, full.replace("-live", ""), full.replace("fink_ztf_", "")}
        m = re.match(r"fink_ztf_(\d+\.\d+)_", full)
        if m:
            keys.add(m.group(1))  # the Fink schema version alone, e.g. "2.7"
        for k in keys:
            index.setdefault(k, name)
    return index


def for_version(version: str) -> dict[str, Any] | None:
    """Bundled schema for a version string found in a message key, or ``None``.

    Accepted spellings include the file stem (``distribution_schema_fink_ztf_2.4_3.3.0``),
    the part after ``distribution_schema_`` (``fink_ztf_2.4_3.3.0``, ``0p2-live``), and
    the Fink schema version alone (``2.4``, ``0.2``).
    """
    name = _version_index().get(_normalise(version))
    return load(name) if name else None


def versions() -> list[str]:
    """Version strings understood by :func:`for_version` (for error messages)."""
    return sorted(set(_version_index()))
