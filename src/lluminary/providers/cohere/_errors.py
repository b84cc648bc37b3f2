"""Cohere error mapping: the generic status mapping, plus Cohere's own status codes.

Cohere's error bodies are ``{"id": …, "message": …}`` with no machine-readable
type, so the HTTP status decides, and the shared phrase check turns "too many
tokens" into ``context_length``. Two statuses are Cohere's own: 498 (an invalid
token) and 501 (a feature the model does not support), which is the caller's
mistake and not worth a retry.

After HTTP 200 there is no status, only the text: an error object in the stream,
or ``message-end``'s ``delta.error``. :func:`classify` reads that text by phrase,
so a prompt that is too long is ``context_length`` (not retryable) and a trial
key's per-minute limit is ``rate_limited``, as they would be before the stream;
anything else is a ``server`` error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

import msgspec

from lluminary.events import Error, ErrorCode
from lluminary.providers._errors import RETRYABLE_CODES, error_from_http

__all__ = ["classify", "map_error"]

_STATUS_CODES: Final[dict[int, ErrorCode]] = {
    498: "auth",
    501: "invalid_request",
}

# Cohere's own wordings: "too many tokens: total number of tokens in the prompt cannot
# exceed 4081", "You are using a Trial key, which is limited to 20 API calls / minute",
# "trial token rate limit exceeded, limit is 100000 tokens per minute".
_PHRASES: Final[tuple[tuple[re.Pattern[str], ErrorCode], ...]] = (
    # Rate limits first: a per-minute token limit must not read as a too-long prompt.
    (re.compile(r"rate limit|too many requests|limited to \d+ api calls", re.I), "rate_limited"),
    (
        re.compile(r"too many tokens|context[ _-]?(length|window)|prompt is too long|exceeds? the (max|maximum)", re.I),
        "context_length",
    ),
    (re.compile(r"invalid api (token|key)|unauthori[sz]ed", re.I), "auth"),
    (re.compile(r"timed out|timeout|deadline exceeded", re.I), "timeout"),
    (re.compile(r"overloaded|over capacity|service unavailable", re.I), "overloaded"),
)


def classify(message: str, default: ErrorCode = "server") -> ErrorCode:
    """The code of an in-band error's text (``default`` when no phrase matches)."""
    for pattern, code in _PHRASES:
        if pattern.search(message):
            return code
    return default


def map_error(
    provider: str, status: int, headers: Mapping[str, str], body: bytes, secrets: tuple[str, ...] = ()
) -> Error:
    event = error_from_http(provider, status, headers, body, secrets=secrets)
    code = _STATUS_CODES.get(status)
    if code is not None and code != event.code:
        event = msgspec.structs.replace(event, code=code, retryable=code in RETRYABLE_CODES)
    return event
