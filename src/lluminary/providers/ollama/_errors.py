"""Ollama error mapping, for HTTP errors and for the in-band ``{"error": "..."}`` line.

Ollama's error body is always ``{"error": "<text>"}`` with no machine-readable
type, so before HTTP has answered we trust the status (404 is an unknown model,
400 a bad request, 503 a busy server …) and the shared context-length phrases.

After HTTP 200 there is no status at all, only the text of a last NDJSON line.
We classify it by phrase and otherwise call it a ``server`` error that is *not*
retryable: mid-stream failures of a local runner (a crashed or out-of-memory
model, a bad template) repeat on every attempt, and some output may already have
gone downstream. Only texts that say the server is busy, rate limited or timed
out are marked retryable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from lluminary.events import Error, ErrorCode
from lluminary.providers._errors import error_from_http

__all__ = ["classify", "map_error"]

_PHRASES: Final[tuple[tuple[re.Pattern[str], ErrorCode, bool], ...]] = (
    (re.compile(r"context (length|window|size)|too long|exceeds? .*(context|limit)", re.I), "context_length", False),
    (re.compile(r"model .*not found|not found, try pulling|no such model", re.I), "not_found", False),
    (re.compile(r"server busy|too many (concurrent )?requests|maximum pending requests", re.I), "overloaded", True),
    # Cloud models answer 429 "when a rate limit is exceeded" (docs/api/errors); the same
    # text can come as the last NDJSON line once the stream has started.
    (re.compile(r"rate limit", re.I), "rate_limited", True),
    (re.compile(r"timed out|timeout|deadline exceeded", re.I), "timeout", True),
    (re.compile(r"unauthori[sz]ed|invalid api key|authentication", re.I), "auth", False),
)


def classify(message: str) -> tuple[ErrorCode, bool]:
    """The code and retryability of an in-band error line's text."""
    for pattern, code, retryable in _PHRASES:
        if pattern.search(message):
            return code, retryable
    return "server", False


def map_error(
    provider: str, status: int, headers: Mapping[str, str], body: bytes, secrets: tuple[str, ...] = ()
) -> Error:
    return error_from_http(provider, status, headers, body, secrets=secrets)
