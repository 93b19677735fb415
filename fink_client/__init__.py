"""fink-client: receive, decode, store and look at the alert streams of the Fink broker.

Quick start::

    from fink_client.consumer import AlertConsumer
    with AlertConsumer(["rrlyr"], {"username": "...", "password": "...",
                                   "group_id": "my_group"}) as consumer:
        topic, alert = consumer.poll(timeout=5)

``fink_client.decode(value, key=None, schema=None)`` decodes a payload obtained
elsewhere; ``fink_client.decode_batch(values, schema)`` decodes many into one
``pyarrow.RecordBatch`` without dicts; ``fink_client.io`` reads and writes alert files.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fink_client.errors import AlertError
from fink_client.wire import Decoder, SchemaLike, decode

if TYPE_CHECKING:
    import pyarrow as pa


def decode_batch(values: Sequence[Any], schema: SchemaLike) -> pa.RecordBatch:
    """Schemaless Avro values of one schema -> ``pyarrow.RecordBatch`` (see
    :func:`fink_client.arrowbatch.decode_batch`; pyarrow is imported on first use)."""
    from fink_client.arrowbatch import decode_batch as _decode_batch

    return _decode_batch(values, schema)


#: The package version, its one source: pyproject.toml reads it (setuptools dynamic attr).
__version__ = "0.1.0"

# A library logs, the application decides where logs go (no "last resort" stderr output).
logging.getLogger("fink_client").addHandler(logging.NullHandler())

__all__ = ["AlertError", "Decoder", "__version__", "decode", "decode_batch"]
