"""Avro Object Container framing: header, blocks and block codecs (Avro 1.11 spec).

A container is ``Obj\\x01``, a metadata map (``avro.schema``, ``avro.codec``...), a
16-byte sync marker, then blocks: a record count (long), the byte size of the block's
data (long), the data (the records' binary encodings concatenated, then compressed by
the codec), and the sync marker again. Codecs: ``null``; ``deflate`` (raw RFC 1951,
no zlib header); ``snappy`` (raw snappy, then the big-endian CRC32 of the uncompressed
data); ``zstandard``; ``bzip2`` and ``xz``.

This module only frames bytes: it never decodes a record. It is shared by the decoder
of container messages (:mod:`fink_client.wire`) and by the Avro pass-through writer
(:mod:`fink_client.io.avro_passthrough`).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fink_client.errors import ConfigError

MAGIC = b"Obj\x01"
SYNC_SIZE = 16


class FramingError(ValueError):
    """The bytes are not a well-formed Avro container (truncated, bad sync, bad CRC)."""


# -- varints (zigzag longs) ------------------------------------------------------------
def encode_long(n: int) -> bytes:
    """Avro binary encoding of a long (zigzag, then base-128 varint)."""
    n = (n << 1) ^ (n >> 63)
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_long(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode the long at ``pos``; return it and the position after it."""
    shift = result = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise FramingError("truncated container: a varint runs past the end")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift > 63:
            raise FramingError("malformed varint in container framing")


def _read_bytes(buf: bytes | memoryview, pos: int) -> tuple[bytes, int]:
    n, pos = read_long(buf, pos)
    if n < 0 or pos + n > len(buf):
        raise FramingError("truncated container: a header entry runs past the end")
    return bytes(buf[pos:pos + n]), pos + n


# -- codecs --------------------------------------------------------------------------
@dataclass(frozen=True)
class Codec:
    """A block codec: ``compress(data) -> block bytes`` and its inverse."""

    name: str
    compress: Callable[[bytes], bytes]
    decompress: Callable[[bytes], bytes]


def _deflate(data: bytes) -> bytes:
    comp = zlib.compressobj(wbits=-15)
    return comp.compress(data) + comp.flush()


def _inflate(data: bytes) -> bytes:
    return zlib.decompress(data, wbits=-15)


def _snappy() -> Codec:
    from cramjam import snappy

    def compress(data: bytes) -> bytes:
        crc = zlib.crc32(data).to_bytes(4, "big")
        return bytes(snappy.compress_raw(data)) + crc

    def decompress(block: bytes) -> bytes:
        if len(block) < 4:
            raise FramingError("snappy block shorter than its CRC32")
        data = bytes(snappy.decompress_raw(block[:-4]))
        if zlib.crc32(data).to_bytes(4, "big") != block[-4:]:
            raise FramingError("snappy block fails its CRC32 check")
        return data

    return Codec("snappy", compress, decompress)


def _zstandard() -> Codec:
    try:  # the standard library (3.14+) or its backport, as fastavro uses
        try:
            from compression import zstd  # type: ignore[import-not-found]
        except ImportError:
            from backports import zstd
        return Codec("zstandard", zstd.compress, zstd.decompress)
    except ImportError:
        from cramjam import zstd as czstd

        return Codec("zstandard", lambda d: bytes(czstd.compress(d)),
                     lambda d: bytes(czstd.decompress(d)))


def _bzip2() -> Codec:
    import bz2

    return Codec("bzip2", bz2.compress, bz2.decompress)


def _xz() -> Codec:
    import lzma

    return Codec("xz", lzma.compress, lzma.decompress)


_NULL = Codec("null", bytes, bytes)
_FACTORIES: dict[str, Callable[[], Codec]] = {
    "null": lambda: _NULL,
    "deflate": lambda: Codec("deflate", _deflate, _inflate),
    "snappy": _snappy,
    "zstandard": _zstandard,
    "bzip2": _bzip2,
    "xz": _xz,
}
_LIBRARIES = {"snappy": "cramjam", "zstandard": "cramjam (or backports.zstd)"}
_CODECS: dict[str, Codec] = {}
CODECS = tuple(_FACTORIES)


def codec(name: str) -> Codec:
    """The codec called ``name``; :class:`ConfigError` if unknown or its library is missing."""
    found = _CODECS.get(name)
    if found is not None:
        return found
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ConfigError(f"unknown Avro codec {name!r}; choose one of {', '.join(CODECS)}",
                          field="codec")
    try:
        found = _CODECS[name] = factory()
    except ImportError:
        raise ConfigError(f"the Avro codec {name!r} needs the package {_LIBRARIES[name]}: "
                          "pip install it", field="codec") from None
    return found


# -- reading -------------------------------------------------------------------------
@dataclass(frozen=True)
class Header:
    """A parsed container header. ``meta_end`` is where the sync marker starts, so
    ``value[:meta_end]`` identifies the schema and codec (the marker is per file)."""

    meta: dict[str, bytes]
    sync: bytes
    meta_end: int

    @property
    def end(self) -> int:
        """Position of the first block."""
        return self.meta_end + SYNC_SIZE

    @property
    def codec_name(self) -> str:
        """The ``avro.codec`` of the header (``null`` when absent)."""
        return self.meta.get("avro.codec", b"null").decode("ascii", "replace")


def meta_end(value: bytes | memoryview) -> int:
    """End of the metadata map of the container ``value`` (where its sync marker starts).

    Walks the map without copying its entries: cheap enough to run per message.
    """
    if bytes(value[:4]) != MAGIC:
        raise FramingError("not an Avro container (no 'Obj\\x01' magic)")
    pos = 4
    while True:
        count, pos = read_long(value, pos)
        if count == 0:
            return pos
        if count < 0:
            count = -count
            _, pos = read_long(value, pos)  # the block's byte size
        for _ in range(2 * count):  # key, value
            n, pos = read_long(value, pos)
            if n < 0 or pos + n > len(value):
                raise FramingError("truncated container: a header entry runs past the end")
            pos += n


def read_header(value: bytes | memoryview) -> Header:
    """Parse the header of the container ``value``."""
    end = meta_end(value)
    pos = 4
    meta: dict[str, bytes] = {}
    while pos < end:
        count, pos = read_long(value, pos)
        if count == 0:
            break
        if count < 0:
            count = -count
            _, pos = read_long(value, pos)
        for _ in range(count):
            key, pos = _read_bytes(value, pos)
            meta[key.decode("utf-8", "replace")], pos = _read_bytes(value, pos)
    if end + SYNC_SIZE > len(value):
        raise FramingError("truncated container: no sync marker after the header")
    return Header(meta, bytes(value[end:end + SYNC_SIZE]), end)


def iter_blocks(value: bytes, header: Header, codec_: Codec) -> Iterator[tuple[int, bytes]]:
    """``(record count, uncompressed data)`` of each block of ``value`` after ``header``.

    Checks every block's sync marker and length; raises :class:`FramingError`.
    """
    pos, end = header.end, len(value)
    view = memoryview(value)
    while pos < end:
        count, pos = read_long(view, pos)
        size, pos = read_long(view, pos)
        if count < 0 or size < 0 or pos + size + SYNC_SIZE > end:
            raise FramingError(f"truncated container: block of {size} bytes at byte {pos} "
                               f"runs past the end ({end} bytes)")
        data = value[pos:pos + size]
        pos += size
        if view[pos:pos + SYNC_SIZE] != header.sync:
            raise FramingError(f"sync marker mismatch after the block ending at byte {pos}")
        pos += SYNC_SIZE
        yield count, codec_.decompress(data) if codec_ is not _NULL else data


# -- writing -------------------------------------------------------------------------
def block_parts(values: list[bytes], sync: bytes, codec_: Codec) -> list[bytes]:
    """The framed block holding ``values`` (already-encoded records), as parts to write
    (uncompressed: the values themselves, not copied into one buffer)."""
    if codec_ is _NULL:
        return [encode_long(len(values)) + encode_long(sum(map(len, values))), *values, sync]
    data = codec_.compress(values[0] if len(values) == 1 else b"".join(values))
    return [encode_long(len(values)) + encode_long(len(data)), data, sync]


__all__ = [
    "CODECS", "MAGIC", "SYNC_SIZE", "Codec", "FramingError", "Header", "block_parts",
    "codec", "encode_long", "iter_blocks", "meta_end", "read_header", "read_long",
]
