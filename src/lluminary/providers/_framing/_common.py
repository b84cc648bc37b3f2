"""What framers share: their error type and the bound on a half-received message."""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_MESSAGE_BYTES", "FramingError"]

#: The most bytes a framer holds for one unfinished line or message. Real provider
#: messages are a few KiB; this bound turns a garbage stream without separators
#: into an error instead of unbounded memory growth.
MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024


class FramingError(Exception):
    """The bytes cannot be framed (a message too large, a bad frame, …)."""
