"""A server-sent events framer, after the WHATWG spec's parsing rules.

Lines end in CRLF, LF or CR (Gemini sends CRLF; a CR at the end of a chunk may be
the first half of a CRLF, so we remember it). ``data`` lines accumulate and a blank
line dispatches. Comments (``:``) and the ``id``/``retry`` fields are read and
dropped: our providers do not resume streams by id. A UTF-8 byte order mark at
the very start is skipped, as the spec says (it may arrive split over chunks).

The fast path is one ``split`` per chunk into whole messages, each a single
``data:`` line or an ``event:`` and a ``data:`` line; everything else goes through
a line-at-a-time machine. Payloads stay ``bytes`` so the decoder can hand them
straight to msgspec. Input that cannot be framed raises
:class:`FramingError`, but only after the messages framed before it have been
returned, so a decoder sees the same messages however the bytes were chunked.
"""

from __future__ import annotations

from typing import TypeAlias

from lluminary.providers._framing._common import MAX_MESSAGE_BYTES, FramingError

__all__ = ["SSEFramer", "SSEMessage"]

_BOM = b"\xef\xbb\xbf"


#: One dispatched message: its event name (``"message"`` when none was given) and its
#: data. A plain tuple, not a named one: building a NamedTuple cost more than twice as
#: much, on every event of every stream.
SSEMessage: TypeAlias = tuple[str, bytes]

_CR = 13  # byte values: ``13 in chunk`` is a memchr, ``b"\r" in chunk`` a slower substring search
_LF = 10


_EVENT_NAMES: dict[bytes, str] = {}


def _event_name(raw: bytes) -> str:
    """Decode an ``event:`` value, remembering the few names a provider uses."""
    name = _EVENT_NAMES.get(raw)
    if name is None:
        try:
            name = raw.decode()
        except UnicodeDecodeError:
            raise FramingError("SSE event name is not UTF-8") from None
        if len(_EVENT_NAMES) < 256 and len(raw) <= 64:
            _EVENT_NAMES[raw] = name
    return name


class SSEFramer:
    __slots__ = (
        "_buf",
        "_data",
        "_error",
        "_event",
        "_head",
        "_idle",
        "_size",
        "_skip_lf",
        "_tail",
        "_tail_size",
    )

    def __init__(self) -> None:
        self._buf = b""
        # Pieces of a line that no chunk has ended yet, and the data bytes of the message
        # being built: kept so that no chunk costs more than its own length (see feed).
        self._tail: list[bytes] = []
        self._tail_size = 0
        self._event = ""
        self._data: list[bytes] = []
        self._size = 0
        self._skip_lf = False
        # The first bytes of the stream, until we know whether they open with a BOM;
        # None once that is decided.
        self._head: bytes | None = b""
        self._error: FramingError | None = None
        # True when no state is held at all (between messages, BOM decided, no error),
        # so that a chunk holding exactly one ``data:`` message can skip everything else.
        self._idle = False

    def feed(self, chunk: bytes) -> list[SSEMessage]:
        # The one-read-one-event case of a live stream: a single ``data: …\n\n``.
        if (
            self._idle
            and chunk[:6] == b"data: "
            and chunk.find(_LF) == len(chunk) - 2
            and chunk[-1] == _LF
            and _CR not in chunk
        ):
            return [("message", chunk[6:-2])]
        try:
            return self._feed(chunk)
        finally:
            self._idle = (
                self._error is None
                and self._head is None
                and not (self._skip_lf or self._buf or self._tail or self._data or self._event)
            )

    def _feed(self, chunk: bytes) -> list[SSEMessage]:
        if self._error is not None:
            raise self._error
        if self._head is not None:
            head = self._head + chunk
            if len(head) < len(_BOM) and _BOM.startswith(head):
                self._head = head
                return []
            self._head = None
            chunk = head[len(_BOM) :] if head.startswith(_BOM) else head
            if not chunk:
                return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if _CR in chunk:
            # A trailing CR ends its line now; if the next chunk opens with LF, that
            # LF belongs to the same CRLF and must not end a second (empty) line.
            self._skip_lf = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if _LF not in chunk:
            # No line ends here: set the piece aside. Copying the partial line onto every
            # chunk made a long line arriving in small chunks quadratic (3 MiB in 1 KiB
            # chunks took seconds of CPU, all of it holding up the event loop).
            self._tail.append(chunk)
            self._tail_size += len(chunk)
            if len(self._buf) + self._tail_size > MAX_MESSAGE_BYTES:
                raise FramingError("SSE line exceeds the size limit")
            return []
        if self._tail:
            chunk = b"".join([self._buf, *self._tail, chunk])
            self._buf, self._tail, self._tail_size = b"", [], 0
        partial = self._buf
        buf = partial + chunk if partial else chunk
        self._buf = b""
        out: list[SSEMessage] = []
        try:
            if partial or self._data or self._event:
                # A message is in progress: the line machine takes it to its end (a blank
                # line opening the chunk, after a line that ended the last one, included).
                end = buf.find(b"\n\n")
                if end < 0:
                    self._lines_of(buf, out)
                    return out
                end += 2
                lines = buf[:end].split(b"\n")
                lines.pop()
                self._lines(lines, out)
                buf = buf[end:]
            self._blocks(buf, out)
        except FramingError as exc:
            if not out:
                raise
            # Deliver the messages framed before the bad input and raise on the next
            # call: otherwise what a decoder sees before the error would depend on
            # where the chunk boundaries fell.
            self._error = exc
        return out

    def _blocks(self, buf: bytes, out: list[SSEMessage]) -> None:
        """Frame ``buf``, which starts a message, a whole message at a time.

        Nearly every message a provider sends is one ``data:`` line, or an ``event:``
        line and one ``data:`` line: those are cut out of the block directly, without
        a pass per line. Any other block goes through the line machine, which ends it
        as a blank line would; what follows the last blank line is the start of the
        next message, left to the line machine as well.
        """
        blocks = buf.split(b"\n\n")
        rest = blocks.pop()
        append = out.append
        for block in blocks:
            if block[:6] == b"data: ":
                if _LF not in block:
                    append(("message", block[6:]))
                    continue
            elif block[:7] == b"event: ":
                cut = block.find(b"\n")
                if block[cut + 1 : cut + 7] == b"data: " and block.find(b"\n", cut + 1) < 0 < cut:
                    append((_event_name(block[7:cut]) or "message", block[cut + 7 :]))
                    continue
            elif not block:
                continue  # a blank line with nothing before it dispatches nothing
            lines = block.split(b"\n")
            lines.append(b"")
            self._lines(lines, out)
        if rest:
            self._lines_of(rest, out)

    def _lines_of(self, buf: bytes, out: list[SSEMessage]) -> None:
        """Run the line machine over ``buf``'s complete lines and keep its last, partial one."""
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        self._lines(lines, out)
        if len(self._buf) > MAX_MESSAGE_BYTES:
            raise FramingError("SSE line exceeds the size limit")

    def _lines(self, lines: list[bytes], out: list[SSEMessage]) -> None:
        # The hot loop: blank lines and "data: " lines are handled inline (one
        # message is typically two lines), everything else goes through _line.
        data = self._data
        append = out.append
        for line in lines:
            if not line:
                if data:
                    payload = data[0] if len(data) == 1 else b"\n".join(data)
                    append((self._event or "message", payload))
                    data = self._data = []
                    self._size = 0
                self._event = ""
            elif line[:6] == b"data: ":
                value = line[6:]
                data.append(value)
                # A running total: summing every line again on each one was quadratic.
                self._size += len(value)
                if self._size > MAX_MESSAGE_BYTES and len(data) > 1:
                    raise FramingError("SSE message exceeds the size limit")
            elif line[:7] == b"event: ":
                self._event = _event_name(line[7:])
            else:
                self._line(line, out)
                data = self._data

    def close(self) -> list[SSEMessage]:
        """End of input: dispatch a last message that lacks only its closing blank line.

        The spec discards such a message, but recorded streams (and some servers)
        end right after the last ``data:`` line. Dispatching it is safe: a body cut
        inside the payload leaves JSON that does not parse, which the decoder
        reports as a protocol error, and without the provider's end marker the
        stream still cannot finish.
        """
        if self._error is not None:
            raise self._error
        out: list[SSEMessage] = []
        if self._head:
            # Only part of a BOM ever arrived: it is not a BOM, so it is a line.
            self._buf, self._head = self._head, None
        if self._tail:
            self._buf = b"".join([self._buf, *self._tail])
            self._tail, self._tail_size = [], 0
        if self._buf:
            self._line(self._buf, out)
            self._buf = b""
        self._line(b"", out)
        return out

    @property
    def pending(self) -> bool:
        """True while part of a message has been received but not dispatched."""
        return bool(self._buf or self._tail or self._data or self._head)

    def _line(self, line: bytes, out: list[SSEMessage]) -> None:
        if not line:
            if self._data:
                data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
                out.append((self._event or "message", data))
                self._data = []
                self._size = 0
            self._event = ""
            return
        if line[:1] == b":":
            return
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            # A bare ``data`` line (no colon) is a data field with an empty value.
            self._data.append(value)
            self._size += len(value)
            if self._size > MAX_MESSAGE_BYTES and len(self._data) > 1:
                raise FramingError("SSE message exceeds the size limit")
        elif name == b"event":
            try:
                self._event = value.decode()
            except UnicodeDecodeError:
                raise FramingError("SSE event name is not UTF-8") from None
        # ``id``, ``retry`` and unknown fields are ignored, as the spec says.
