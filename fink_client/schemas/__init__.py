"""Bundled alert schemas and lookups into them.

Bundled schemas (Avro JSON) live beside this module:

- ``fink-ztf/``: Fink's ZTF live-stream schemas (``distribution_schema_*.avsc``) and
  the ZTF data-transfer schema (``avro_schema_ftransfer_ztf_*.json``);
- ``fink-lsst/``: Fink's Rubin/LSST data-transfer schema, and the schema of Fink's
  Rubin alerts of LSST schema 7.4 (``fink_lsst_alert_7.4``, from the sample alerts);
- ``ztf/``: the raw ZTF alert schema (as found in ZTF's own container files).

Older Fink streams put a schema *version string* in the message key instead of the
schema; :func:`for_version` resolves it to a bundled schema.

Confluent-framed messages carry a 4-byte schema id instead. :func:`by_id` resolves the
ids of the bundled schemas, fixed in ``_ids.json``:

====  ==========================================
id    bundled schema
====  ==========================================
1     ``fink_lsst_alert_7.4``
2     ``avro_schema_ftransfer_lsst_2026-03-18``
10    ``ztf_alert_3.3`` (raw ZTF)
11    ``distribution_schema_0p2-live``
12    ``distribution_schema_fink_ztf_2.4_3.3.0``
13    ``distribution_schema_fink_ztf_2.7_3.10.1``
14    ``avro_schema_ftransfer_ztf_2026-03-23``
====  ==========================================

:func:`fetch_registry_schema` (the HTTP client in :mod:`fink_client.schemas.registry`,
re-exported here) asks a Confluent schema registry instead
(``GET {url}/schemas/ids/{id}``), and :func:`confluent_resolver` wraps either into
the ``id_resolver`` callable that :class:`fink_client.wire.Decoder` and
:class:`fink_client.AlertConsumer` take.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fink_client.errors import SchemaError
from fink_client.schemas.registry import fetch_registry_schema as fetch_registry_schema

SCHEMA_DIR = Path(__file__).resolve().parent

_VERSION_PREFIXES = ("distribution_schema_", "avro_schema_")


@functools.lru_cache(maxsize=1)
def bundled() -> dict[str, Path]:
    """Map of bundled schema names (file stem, e.g. ``distribution_schema_fink_ztf_2.7_3.10.1``)
    to their paths."""
    out: dict[str, Path] = {}
    for path in sorted(SCHEMA_DIR.rglob("*")):
        if path.suffix in (".avsc", ".json") and path.is_file() and not path.name.startswith("_"):
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

                schema = fastavro.reader(fh).writer_schema
            else:
                schema = json.load(fh)
    except FileNotFoundError:
        raise SchemaError("schema file not found", path=str(path)) from None
    except (OSError, ValueError) as exc:
        raise SchemaError(f"cannot read schema: {exc}", path=str(path)) from exc
    if not isinstance(schema, dict):
        raise SchemaError("not an Avro record schema (its top level must be an object)",
                          path=str(path))
    return schema


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


# -- Confluent schema ids ------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def ids() -> dict[int, str]:
    """Confluent schema id -> bundled schema name (the table in ``_ids.json``)."""
    with open(SCHEMA_DIR / "_ids.json", encoding="utf-8") as fh:
        table = json.load(fh)["ids"]
    return {int(k): v for k, v in table.items()}


def id_of(name: str) -> int | None:
    """Confluent schema id of the bundled schema ``name``, or ``None`` if it has none."""
    for schema_id, schema_name in ids().items():
        if schema_name == name:
            return schema_id
    return None


def by_id(schema_id: int) -> dict[str, Any] | None:
    """Bundled schema registered under Confluent id ``schema_id``, or ``None``."""
    name = ids().get(int(schema_id))
    return load(name) if name else None


def confluent_resolver(
    registry_url: str | None = None, timeout: float = 10.0
) -> Callable[[int], dict[str, Any] | None]:
    """An ``id_resolver`` for :class:`fink_client.wire.Decoder` / ``AlertConsumer``.

    Without ``registry_url`` ids resolve to bundled schemas (:func:`by_id`; unknown ids
    give ``None``). With it, ids are looked up in that schema registry only (its ids
    mean something else than ours), and failures raise :class:`SchemaError`.
    """
    if registry_url is None:
        return by_id

    def resolve(schema_id: int) -> dict[str, Any] | None:
        return fetch_registry_schema(registry_url, schema_id, timeout)

    return resolve
