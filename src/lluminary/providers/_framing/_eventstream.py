"""A sans-IO framer for AWS's binary event stream (``application/vnd.amazon.eventstream``).

Bedrock's ConverseStream (and every other AWS streaming API) sends a sequence of
self-delimiting binary messages. Each one is::

    prelude   total length (u32 BE) | headers length (u32 BE) | prelude CRC32 (u32 BE)
    headers   repeated: name length (u8) | name (UTF-8) | value type (u8) | value
    payload   total length - headers length - 16 bytes
    trailer   message CRC32 (u32 BE) over every byte before it, prelude included

Header values are typed: 0 true, 1 false, 2 int8, 3 int16, 4 int32, 5 int64
(all big-endian and signed), 6 bytes and 7 UTF-8 string (each u16 BE
length-prefixed), 8 timestamp (int64 milliseconds since the epoch) and 9 UUID
(16 bytes). Both CRCs are plain CRC-32 (``zlib.crc32``).

The framer keeps only the bytes of the message it is inside, so any chunking
gives the same messages. It checks the prelude CRC as soon as twelve bytes are
in, which turns a garbage stream into an error at once instead of waiting for a
bogus length's worth of bytes, and it bounds what it will buffer. Anything it
cannot frame raises :class:`FramingError`; a decoder turns that into one
``protocol`` error.
"""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple
from uuid import UUID

from lluminary.providers._framing._common import MAX_MESSAGE_BYTES, FramingError

__all__ = [
    "MAX_HEADERS_BYTES",
    "MIN_MESSAGE_BYTES",
    "EventStreamFramer",
    "EventStreamMessage",
    "HeaderValue",
]

HeaderValue = bool | int | bytes | str | datetime | UUID

_PRELUDE: Final = struct.Struct(">III")
_PRELUDE_SIZE: Final = 12
_CRC_SIZE: Final = 4
#: A message with no headers and no payload: prelude plus message CRC.
MIN_MESSAGE_BYTES: Final = _PRELUDE_SIZE + _CRC_SIZE
#: AWS caps the headers section at 128 KiB; a larger claim means a corrupt prelude.
MAX_HEADERS_BYTES: Final = 128 * 1024

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# Fixed-size value types: type id -> struct format (None for the 16-byte UUID).
_FIXED: Final[dict[int, struct.Struct | None]] = {
    2: struct.Struct(">b"),
    3: struct.Struct(">h"),
    4: struct.Struct(">i"),
    5: struct.Struct(">q"),
    8: struct.Struct(">q"),
    9: None,
}
_U16: Final = struct.Struct(">H")
_U32: Final = struct.Struct(">I")


class EventStreamMessage(NamedTuple):
    """One decoded message: its typed headers and its raw payload."""

    headers: dict[str, HeaderValue]
    payload: bytes

    def header(self, name: str) -> str | None:
        """A string header's value (``:event-type``, ``:message-type`` …), or None."""
        value = self.headers.get(name)
        return value if isinstance(value, str) else None


class EventStreamFramer:
    __slots__ = ("_buf", "_error")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._error: FramingError | None = None

    def feed(self, chunk: bytes) -> list[EventStreamMessage]:
        if self._error is not None:
            raise self._error
        buf = self._buf
        buf += chunk
        out: list[EventStreamMessage] = []
        try:
            pos = self._parse(buf, out)
        except FramingError as exc:
            # Hand out the good messages before the bad one and raise on the next
            # call, so what comes out never depends on where the chunks were cut.
            self._buf = bytearray()
            if not out:
                raise
            self._error = exc
            return out
        if pos:
            del buf[:pos]
        return out

    def close(self) -> list[EventStreamMessage]:
        """End of input. Bytes of an unfinished message mean the body was cut."""
        if self._error is not None:
            raise self._error
        if self._buf:
            held = len(self._buf)
            self._buf = bytearray()
            raise FramingError(f"the event stream ended inside a message ({held} bytes of it received)")
        return []

    @property
    def pending(self) -> bool:
        """True while part of a message has been received."""
        return bool(self._buf)

    @staticmethod
    def _parse(buf: bytearray, out: list[EventStreamMessage]) -> int:
        """Append every complete message in ``buf`` to ``out``; return the bytes consumed."""
        pos = 0
        size = len(buf)
        while size - pos >= _PRELUDE_SIZE:
            total, headers_len, prelude_crc = _PRELUDE.unpack_from(buf, pos)
            _check_prelude(buf, pos, total, headers_len, prelude_crc)
            if size - pos < total:
                break  # the rest of this message has not arrived yet
            # One copy per message: parsing then works on immutable bytes, and the
            # buffer stays free to shrink (a live memoryview would pin it).
            message = bytes(buf[pos : pos + total])
            (message_crc,) = _U32.unpack_from(message, total - _CRC_SIZE)
            if zlib.crc32(memoryview(message)[: total - _CRC_SIZE]) != message_crc:
                raise FramingError("event stream message CRC mismatch")
            payload_start = _PRELUDE_SIZE + headers_len
            headers = _parse_headers(memoryview(message)[_PRELUDE_SIZE:payload_start])
            out.append(EventStreamMessage(headers, message[payload_start : total - _CRC_SIZE]))
            pos += total
        return pos


def _check_prelude(buf: bytearray, pos: int, total: int, headers_len: int, crc: int) -> None:
    # Checked before anything else so a corrupt length is never trusted.
    if zlib.crc32(buf[pos : pos + 8]) != crc:
        raise FramingError("event stream prelude CRC mismatch")
    if total < MIN_MESSAGE_BYTES:
        raise FramingError(f"event stream message length {total} is below the minimum of {MIN_MESSAGE_BYTES}")
    if total > MAX_MESSAGE_BYTES:
        raise FramingError(f"event stream message length {total} exceeds the limit of {MAX_MESSAGE_BYTES}")
    if headers_len > MAX_HEADERS_BYTES or headers_len > total - MIN_MESSAGE_BYTES:
        raise FramingError(f"event stream headers length {headers_len} does not fit a {total}-byte message")


def _parse_headers(data: memoryview) -> dict[str, HeaderValue]:
    """Decode the headers section, never reading past its end."""
    headers: dict[str, HeaderValue] = {}
    pos = 0
    end = len(data)
    while pos < end:
        name_len = data[pos]
        pos += 1
        if name_len == 0 or pos + name_len + 1 > end:
            raise FramingError("event stream header name runs past the headers section")
        name = _utf8(data[pos : pos + name_len], "header name")
        pos += name_len
        kind = data[pos]
        pos += 1
        value: HeaderValue
        if kind == 0:
            value = True
        elif kind == 1:
            value = False
        elif kind in _FIXED:
            fmt = _FIXED[kind]
            width = 16 if fmt is None else fmt.size
            if pos + width > end:
                raise FramingError(f"event stream header {name!r} runs past the headers section")
            if fmt is None:
                value = UUID(bytes=bytes(data[pos : pos + width]))
            else:
                (number,) = fmt.unpack_from(data, pos)
                value = _timestamp(number) if kind == 8 else number
            pos += width
        elif kind in (6, 7):
            if pos + 2 > end:
                raise FramingError(f"event stream header {name!r} runs past the headers section")
            (length,) = _U16.unpack_from(data, pos)
            pos += 2
            if pos + length > end:
                raise FramingError(f"event stream header {name!r} runs past the headers section")
            raw = data[pos : pos + length]
            value = bytes(raw) if kind == 6 else _utf8(raw, f"header {name!r}")
            pos += length
        else:
            raise FramingError(f"event stream header {name!r} has unknown value type {kind}")
        headers[name] = value
    return headers


def _utf8(raw: memoryview, what: str) -> str:
    try:
        return str(raw, "utf-8")
    except UnicodeDecodeError:
        raise FramingError(f"event stream {what} is not UTF-8") from None


def _timestamp(millis: int) -> datetime:
    try:
        return _EPOCH + timedelta(milliseconds=millis)
    except OverflowError:
        raise FramingError(f"event stream timestamp {millis} is out of range") from None
