"""A server-sent events framer, after the WHATWG spec's parsing rules.

Lines end in CRLF, LF or CR (Gemini sends CRLF; a CR at the end of a chunk may be
the first half of a CRLF, so we remember it). ``data`` lines accumulate and a blank
line dispatches. Comments (``:``) and the ``id``/``retry`` fields are read and
dropped: our providers do not resume streams by id.

The fast path is one ``split`` per chunk; payloads stay ``bytes`` so the decoder
can hand them straight to msgspec.
"""

from __future__ import annotations

from typing import NamedTuple

from lluminary.providers._framing._common import MAX_MESSAGE_BYTES, FramingError

__all__ = ["SSEFramer", "SSEMessage"]


class SSEMessage(NamedTuple):
    event: str
    data: bytes


class SSEFramer:
    __slots__ = ("_buf", "_data", "_event", "_skip_lf")

    def __init__(self) -> None:
        self._buf = b""
        self._event = ""
        self._data: list[bytes] = []
        self._skip_lf = False

    def feed(self, chunk: bytes) -> list[SSEMessage]:
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\r" in chunk:
            # A trailing CR ends its line now; if the next chunk opens with LF, that
            # LF belongs to the same CRLF and must not end a second (empty) line.
            self._skip_lf = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buf = self._buf + chunk if self._buf else chunk
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        if len(self._buf) > MAX_MESSAGE_BYTES:
            raise FramingError("SSE line exceeds the size limit")
        out: list[SSEMessage] = []
        for line in lines:
            self._line(line, out)
        return out

    def close(self) -> list[SSEMessage]:
        """End of input: dispatch a last message that lacks only its closing blank line.

        The spec discards such a message, but recorded streams (and some servers)
        end right after the last ``data:`` line. Dispatching it is safe: a body cut
        inside the payload leaves JSON that does not parse, which the decoder
        reports as a protocol error, and without the provider's end marker the
        stream still cannot finish.
        """
        out: list[SSEMessage] = []
        if self._buf:
            self._line(self._buf, out)
            self._buf = b""
        self._line(b"", out)
        return out

    @property
    def pending(self) -> bool:
        """True while part of a message has been received but not dispatched."""
        return bool(self._buf or self._data)

    def _line(self, line: bytes, out: list[SSEMessage]) -> None:
        if not line:
            if self._data:
                data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
                out.append(SSEMessage(self._event or "message", data))
                self._data = []
            self._event = ""
            return
        if line[:5] == b"data:":
            value = line[6:] if line[5:6] == b" " else line[5:]
            self._data.append(value)
            if len(self._data) > 1 and sum(map(len, self._data)) > MAX_MESSAGE_BYTES:
                raise FramingError("SSE message exceeds the size limit")
            return
        if line[:1] == b":":
            return
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"event":
            try:
                self._event = value.decode()
            except UnicodeDecodeError:
                raise FramingError("SSE event name is not UTF-8") from None
        # ``id``, ``retry`` and unknown fields are ignored, as the spec says.
