"""Client of a Confluent schema registry: a schema by its id, over HTTP.

Confluent-framed messages carry a 4-byte schema id; a registry (``GET
{url}/schemas/ids/{id}``) says which schema it is. Ids are immutable, so answers are
cached for the life of the process. :func:`fink_client.schemas.confluent_resolver`
uses it when given a registry URL.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

from fink_client.errors import SchemaError

_REGISTRY_CACHE: dict[tuple[str, int], dict[str, Any]] = {}
_REGISTRY_LOCK = threading.Lock()


def fetch_registry_schema(url: str, schema_id: int, timeout: float = 10.0) -> dict[str, Any]:
    """Schema ``schema_id`` from the Confluent schema registry at ``url``.

    Sends ``GET {url}/schemas/ids/{schema_id}`` and parses the ``"schema"`` string of
    the JSON answer. Results are cached per (url, id) for the life of the process
    (registry ids are immutable). Raises :class:`SchemaError` naming the id and URL
    when the registry is unreachable, does not know the id, or answers garbage.
    """
    base = url.rstrip("/")
    key = (base, int(schema_id))
    with _REGISTRY_LOCK:
        cached = _REGISTRY_CACHE.get(key)
    if cached is not None:
        return cached
    address = f"{base}/schemas/ids/{int(schema_id)}"
    request = urllib.request.Request(
        address, headers={"Accept": "application/vnd.schemaregistry.v1+json, application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        hint = "the registry does not know this id" if exc.code == 404 else "check the URL"
        raise SchemaError(
            f"schema registry {address} answered HTTP {exc.code} for schema id {schema_id}: {hint}"
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise SchemaError(
            f"cannot reach schema registry {address} for schema id {schema_id}: {exc}; "
            "check the registry URL and your network"
        ) from exc
    try:
        answer = json.loads(body)
        schema = answer["schema"]
        parsed = json.loads(schema) if isinstance(schema, str) else schema
    except (ValueError, KeyError, TypeError) as exc:
        raise SchemaError(
            f"schema registry {address} gave no valid 'schema' for id {schema_id}: {exc}"
        ) from exc
    if not isinstance(parsed, dict):
        raise SchemaError(
            f"schema registry {address} gave no Avro record schema for id {schema_id}"
        )
    with _REGISTRY_LOCK:
        _REGISTRY_CACHE[key] = parsed
    return parsed
