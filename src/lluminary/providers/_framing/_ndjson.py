"""A newline-delimited JSON framer (Ollama): one payload per non-blank line."""

from __future__ import annotations

from lluminary.providers._framing._common import MAX_MESSAGE_BYTES, FramingError

__all__ = ["NDJSONFramer"]


class NDJSONFramer:
    __slots__ = ("_buf", "_error")

    def __init__(self) -> None:
        self._buf = b""
        self._error: FramingError | None = None

    def feed(self, chunk: bytes) -> list[bytes]:
        if self._error is not None:
            raise self._error
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
        rest, self._buf = self._buf, b""
        return [rest] if rest.strip() else []

    @property
    def pending(self) -> bool:
        return bool(self._buf.strip())
