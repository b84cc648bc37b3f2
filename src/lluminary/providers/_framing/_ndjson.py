"""A newline-delimited JSON framer (Ollama): one payload per non-blank line."""

from __future__ import annotations

from lluminary.providers._framing._common import MAX_MESSAGE_BYTES, FramingError

__all__ = ["NDJSONFramer"]


class NDJSONFramer:
    __slots__ = ("_buf", "_error", "_tail", "_tail_size")

    def __init__(self) -> None:
        self._buf = b""
        # Pieces of a line that no chunk has ended yet: see feed.
        self._tail: list[bytes] = []
        self._tail_size = 0
        self._error: FramingError | None = None

    def feed(self, chunk: bytes) -> list[bytes]:
        if self._error is not None:
            raise self._error
        if b"\n" not in chunk:
            # No line ends here: set the piece aside rather than copy the partial line onto
            # every chunk, which made a long line arriving in small chunks quadratic.
            self._tail.append(chunk)
            self._tail_size += len(chunk)
            if len(self._buf) + self._tail_size > MAX_MESSAGE_BYTES:
                raise FramingError("NDJSON line exceeds the size limit")
            return []
        if self._tail:
            chunk = b"".join([self._buf, *self._tail, chunk])
            self._buf, self._tail, self._tail_size = b"", [], 0
        buf = self._buf + chunk if self._buf else chunk
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        out = [line for line in lines if line.strip()]
        if len(self._buf) > MAX_MESSAGE_BYTES:
            error = FramingError("NDJSON line exceeds the size limit")
            if not out:
                raise error
            # The complete lines before it still count, whatever the chunking.
            self._error = error
        return out

    def close(self) -> list[bytes]:
        """End of input: a last line without its newline still counts."""
        if self._error is not None:
            raise self._error
        rest = b"".join([self._buf, *self._tail])
        self._buf, self._tail, self._tail_size = b"", [], 0
        return [rest] if rest.strip() else []

    @property
    def pending(self) -> bool:
        return bool(self._buf.strip() or any(piece.strip() for piece in self._tail))
