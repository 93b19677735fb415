"""Schema registry: bundled Confluent ids and a real HTTP schema registry (local server)."""

from __future__ import annotations

import http.server
import io
import json
import struct
import threading
from collections.abc import Iterator

import fastavro
import pytest

from fink_client import codec, schemas, synth
from fink_client.errors import DecodeError, SchemaError
from fink_client.testing import assert_alerts_equal
from fink_client.wire import Decoder


def test_every_id_names_a_bundled_schema_and_ids_are_unique() -> None:
    table = schemas.ids()
    assert len(set(table.values())) == len(table)
    for schema_id, name in table.items():
        assert name in schemas.bundled()
        assert schemas.by_id(schema_id) == schemas.load(name)
        assert schemas.id_of(name) == schema_id
    assert schemas.by_id(999_999) is None
    # the id index is not itself a schema
    assert not any(name.startswith("_") for name in schemas.bundled())


def test_bundled_registry_keeps_version_lookup() -> None:
    assert schemas.for_version("2.7")["name"] == "topLevelRecord"
    assert schemas.for_version("no-such-version") is None


class _Registry(http.server.BaseHTTPRequestHandler):
    known: dict[int, dict] = {}
    hits: list[str] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        parts = self.path.strip("/").split("/")
        if parts[:2] == ["schemas", "ids"] and parts[2].isdigit() and int(parts[2]) in self.known:
            body = json.dumps({"schema": json.dumps(self.known[int(parts[2])])}).encode()
            self.send_response(200)
        elif parts[:2] == ["schemas", "ids"] and parts[2] == "666":
            body = b"<html>not json</html>"
            self.send_response(200)
        else:
            body = json.dumps({"error_code": 40403, "message": "Schema not found"}).encode()
            self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def registry() -> Iterator[str]:
    schema = schemas.load("avro_schema_ftransfer_lsst_2026-03-18")
    _Registry.known = {7001: schema}
    _Registry.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_registry_lookup_over_http_and_cache(registry: str) -> None:
    expected = schemas.load("avro_schema_ftransfer_lsst_2026-03-18")
    resolve = schemas.confluent_resolver(registry + "/")
    assert resolve(7001) == expected
    assert resolve(7001) == expected
    assert _Registry.hits == ["/schemas/ids/7001"]  # second call served from the cache


def test_registry_unknown_id_and_garbage_raise_schema_error(registry: str) -> None:
    resolve = schemas.confluent_resolver(registry)
    with pytest.raises(SchemaError, match=r"HTTP 404.*schema id 12"):
        resolve(12)
    with pytest.raises(SchemaError, match="no valid 'schema' for id 666"):
        resolve(666)


def test_unreachable_registry_raises_schema_error() -> None:
    with pytest.raises(SchemaError, match="cannot reach schema registry"):
        schemas.fetch_registry_schema("http://127.0.0.1:9", 1, timeout=2)


def _confluent(schema: dict, schema_id: int, record: dict) -> bytes:
    buf = io.BytesIO()
    buf.write(b"\x00" + struct.pack(">I", schema_id))
    fastavro.schemaless_writer(buf, codec.parse_schema(schema), record)
    return buf.getvalue()


def test_decoder_with_registry_resolver(registry: str) -> None:
    schema = schemas.load("avro_schema_ftransfer_lsst_2026-03-18")
    alert = next(synth.generate(schema, 1, seed=5))
    decoder = Decoder(id_resolver=schemas.confluent_resolver(registry))
    assert_alerts_equal(decoder.decode(_confluent(schema, 7001, alert)), alert)
    with pytest.raises(DecodeError):
        decoder.decode(_confluent(schema, 4040, alert))


def test_decoder_with_bundled_ids() -> None:
    decoder = Decoder(id_resolver=schemas.confluent_resolver())
    for schema_id, name in schemas.ids().items():
        schema = schemas.load(name)
        alert = next(synth.generate(schema, 1, seed=schema_id))
        assert_alerts_equal(decoder.decode(_confluent(schema, schema_id, alert)), alert)
