"""Reading and writing alert files (Avro container, Parquet, JSON lines, dead-letter).

- :class:`AlertReader`: ``.avro`` (any codec), ``.avro.gz``, Parquet, JSON lines,
  folders and lists of them -> alert dicts, lists, pandas or Arrow;
- :func:`open_writer` / :class:`AvroWriter`, :class:`ParquetWriter`,
  :class:`JsonLinesWriter`: atomic, uniquely and deterministically named files
  (see :mod:`fink_client.io.writers`);
- :mod:`fink_client.io.arrow`: Avro schema -> Arrow schema, without inference;
- :class:`~fink_client.io.deadletter.DeadLetter`: undecodable messages.
"""

from fink_client.io.arrow import avro_to_arrow_schema
from fink_client.io.reader import AlertReader
from fink_client.io.writers import (
    FORMATS,
    AlertWriter,
    AvroWriter,
    JsonLinesWriter,
    ParquetWriter,
    open_writer,
)

__all__ = [
    "FORMATS",
    "AlertReader",
    "AlertWriter",
    "AvroWriter",
    "JsonLinesWriter",
    "ParquetWriter",
    "avro_to_arrow_schema",
    "open_writer",
]
