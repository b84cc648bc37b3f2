"""A newline-delimited JSON framer (Ollama): one payload per non-blank line."""

from __future__ import annotations

from lluminary.providers._framing._common import MAX_MESSAGE_BYTES, FramingError

__all__ = ["NDJSONFramer"]


class NDJSONFramer:
    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        buf = self._buf + chunk if self._buf else chunk
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        if len(self._buf) > MAX_MESSAGE_BYTES:
            raise FramingError("NDJSON line exceeds the size limit")
        return [line for line in lines if line.strip()]

    def close(self) -> list[bytes]:
        """End of input: a last line without its newline still counts."""
        rest, self._buf = self._buf, b""
        return [rest] if rest.strip() else []

    @property
    def pending(self) -> bool:
        return bool(self._buf.strip())
