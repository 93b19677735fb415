"""Type stub of the C extension ``fink_client._fastdecode`` (source: ``_fastdecode.c``).

The fast path of :mod:`fink_client.codec`: :func:`fink_client.fastdecode.compile_program`
turns a parsed Avro schema into a *program* (nested tuples); :class:`Reader` decodes
schemaless Avro payloads with it, into dicts or (``_arrow.c``) into Arrow columns.
"""

from collections.abc import Sequence
from typing import Any, final

from typing_extensions import Buffer

@final
class Reader:
    """``Reader(program, trailing_exc=ValueError, views=False)``: payload bytes ->
    decoded record.

    ``trailing_exc`` is raised when bytes are left after the record (wrong schema); a
    truncated payload raises ``EOFError``, a malformed one ``ValueError``. With
    ``views``, :meth:`decode_arrow` gives the bytes columns as ``binary_view`` into the
    payloads, which the batch keeps alive (``bytes`` as they are, other buffers copied).
    """

    def __new__(
        cls, program: tuple[Any, ...], trailing_exc: type[BaseException] = ...,
        views: bool = ...
    ) -> Reader: ...
    def __call__(self, payload: Buffer, /) -> Any:
        """Decode one schemaless Avro payload (any bytes-like object)."""
    def decode_many(self, payloads: Sequence[Buffer], /) -> list[Any]:
        """Decode a sequence of payloads into a list of records."""
    def validate(self, payload: Buffer, /) -> None:
        """Raise exactly what decoding ``payload`` would raise, building nothing."""
    def arrow_schema(self) -> tuple[object, int]:
        """``(capsule, address)`` of the ArrowSchema (C data interface) of
        :meth:`decode_arrow`'s batches; ``ValueError`` if the schema has no Arrow form."""
    def decode_arrow(self, payloads: Sequence[Buffer], /) -> tuple[object, int]:
        """Decode payloads into one struct ArrowArray: ``(capsule, address)``, for
        ``pyarrow.RecordBatch._import_from_c(address, schema)``. On error the exception
        has the attribute ``batch_index``."""
