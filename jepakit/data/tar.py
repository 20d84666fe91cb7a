"""A strict streaming tar reader for WebDataset shards.

Python's :mod:`tarfile` ends iteration quietly when a shard is cut at a member
boundary or a header is corrupt, which would lose the rest of the shard
without a word. This reader insists on the end-of-archive block and on header
checksums, so a truncated or damaged shard always raises :class:`TarCorrupt`,
and the caller can count what was lost. It reads ustar, GNU long names and pax
paths: what ``webdataset.TarWriter``, GNU tar and Python's tarfile write.

A shard is data from elsewhere, so nothing in it is trusted: member names are only
sample keys (nothing is ever extracted to disk, so absolute or ``..`` names go
nowhere), links and devices are skipped, data is read in chunks (a header declaring
terabytes allocates nothing) and a member over :data:`MAX_MEMBER_BYTES` ends the
shard as corrupt instead of filling memory.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from typing import IO, Any

BLOCK = 512
_ZERO = bytes(BLOCK)
_REGULAR = (b"0", b"\0", b"7")
CHUNK = 1 << 20
MAX_MEMBER_BYTES = 512 << 20
"""One file in a shard (an image, a label) larger than this is taken as damage."""
_KEY = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")
"""WebDataset's rule: the key is the path up to the first dot of the file name."""


class TarCorrupt(Exception):
    """The shard is truncated or damaged; samples after this point are lost."""


def _read_exact(stream: IO[bytes], n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        try:
            chunk = stream.read(min(n - got, CHUNK))
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:  # a damaged .tar.gz
            raise TarCorrupt(f"damaged gzip data ({exc})") from None
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _number(field: bytes) -> int:
    if field and field[0] & 0x80:  # GNU base-256 for sizes over 8 GiB
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    return int(text, 8) if text else 0


def _checksum_ok(header: bytes) -> bool:
    """The header's checksum: byte sum with the checksum field read as spaces (8 x 32)."""
    try:
        stored = _number(header[148:156])
    except ValueError:
        return False
    unsigned = sum(header) - sum(header[148:156]) + 8 * 32
    if stored == unsigned:
        return True
    high = sum(1 for b in header if b > 127) - sum(1 for b in header[148:156] if b > 127)
    return stored == unsigned - 256 * high  # some old writers sum signed bytes


def _pax_path(data: bytes) -> str | None:
    path = None
    pos = 0
    while pos < len(data):
        space = data.index(b" ", pos)
        length = int(data[pos:space])
        if length <= space - pos or pos + length > len(data):
            raise ValueError(f"pax record length {length}")
        key, _, value = data[space + 1: pos + length - 1].partition(b"=")
        if key == b"path":
            path = value.decode("utf-8", "surrogateescape")
        pos += length
    return path


def members(stream: IO[bytes]) -> Iterator[tuple[str, bytes]]:
    """``(name, data)`` of each regular file; raises :class:`TarCorrupt` on any damage."""
    offset = 0
    long_name: str | None = None
    pax_name: str | None = None
    while True:
        header = _read_exact(stream, BLOCK)
        if len(header) < BLOCK:
            raise TarCorrupt(f"ends at byte {offset + len(header)} without an end-of-archive "
                             "block (truncated shard)")
        if header == _ZERO:
            return
        if not _checksum_ok(header):
            raise TarCorrupt(f"bad header checksum at byte {offset} (corrupt shard)")
        try:
            size = _number(header[124:136])
        except ValueError:
            raise TarCorrupt(f"unreadable size field at byte {offset} (corrupt shard)") from None
        if size < 0:
            raise TarCorrupt(f"negative size field at byte {offset} (corrupt shard)")
        if size > MAX_MEMBER_BYTES:
            raise TarCorrupt(f"a member at byte {offset} declares {size} bytes, more than the "
                             f"{MAX_MEMBER_BYTES >> 20} MiB one file may hold (corrupt shard)")
        name = header[:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        if header[257:262] == b"ustar":
            prefix = header[345:500].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            name = f"{prefix}/{name}" if prefix else name
        typeflag = header[156:157]
        data = _read_exact(stream, size)
        padding = _read_exact(stream, -size % BLOCK)
        if len(data) < size or len(padding) < -size % BLOCK:
            raise TarCorrupt(f"member {name} is cut short ({len(data)} of {size} bytes; "
                             "truncated shard)")
        offset += BLOCK + size + len(padding)
        if typeflag == b"L":
            long_name = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            continue
        if typeflag == b"x":
            try:
                pax_name = _pax_path(data)
            except ValueError:
                raise TarCorrupt(f"bad pax header at byte {offset} (corrupt shard)") from None
            continue
        if typeflag in _REGULAR:
            yield pax_name or long_name or name, data
        long_name = pax_name = None


class _Prefixed:
    """A read-only stream with a few already-read bytes put back in front."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self.head, self.rest = head, rest

    def read(self, n: int = -1) -> bytes:
        if not self.head:
            return self.rest.read(n)
        if n < 0:
            data, self.head = self.head + self.rest.read(), b""
            return data
        data, self.head = self.head[:n], self.head[n:]
        return data if len(data) == n else data + self.rest.read(n - len(data))


def open_stream(raw: IO[bytes]) -> IO[bytes]:
    """Undo gzip compression when the stream starts with its magic (``.tar.gz`` shards)."""
    head = _read_exact(raw, 2)
    stream: Any = _Prefixed(head, raw)
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=stream)  # type: ignore[return-value]
    return stream  # type: ignore[no-any-return]


def split_key(name: str) -> tuple[str, str] | None:
    """``"a/b.seg.png"`` -> ``("a/b", "seg.png")``; None for names without an extension."""
    match = _KEY.match(name)
    return (match.group(1), match.group(2).lower()) if match else None


def is_meta(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.startswith("__") and base.endswith("__")


class Samples:
    """The WebDataset samples of a tar stream: consecutive members with one key grouped
    into ``{"__key__": key, ext: bytes, ...}`` plus ``extra``; metadata files skipped.

    ``pending_key`` names the sample being read when the stream breaks, for the error."""

    def __init__(self, stream: IO[bytes], **extra: Any) -> None:
        self.stream = stream
        self.extra = extra
        self.pending: dict[str, Any] | None = None

    @property
    def pending_key(self) -> str | None:
        return None if self.pending is None else str(self.pending["__key__"])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for name, data in members(self.stream):
            parts = split_key(name)
            if parts is None or is_meta(name):
                continue
            key, ext = parts
            if self.pending is not None and key != self.pending["__key__"]:
                sample, self.pending = self.pending, None
                yield sample
            if self.pending is None:
                self.pending = {"__key__": key, **self.extra}
            self.pending[ext] = data
        if self.pending is not None:
            sample, self.pending = self.pending, None
            yield sample
