"""Modules named for what they hold (issue 13, item 5); the old import paths still work."""

from __future__ import annotations

import fink_client.encoder
import fink_client.replay
import fink_client.schemas
import fink_client.schemas.registry
from fink_client.wire import Decoder


def test_the_encoder_lives_in_encoder_and_replay_reexports_it() -> None:
    assert fink_client.replay.Encoder is fink_client.encoder.Encoder
    assert fink_client.replay.WIRE_FORMATS is fink_client.encoder.WIRE_FORMATS
    value, key = fink_client.encoder.Encoder("fink").encode(
        {"type": "record", "name": "a", "fields": [{"name": "x", "type": "long"}]}, {"x": 2**60})
    assert Decoder().decode(value, key) == {"x": 2**60}


def test_the_registry_client_lives_in_schemas_registry() -> None:
    fetch = fink_client.schemas.registry.fetch_registry_schema
    assert fink_client.schemas.fetch_registry_schema is fetch
    assert "urllib" not in vars(fink_client.schemas)  # no HTTP in the bundled-schema lookups
