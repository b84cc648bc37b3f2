"""Cohere error mapping: the generic status mapping, plus Cohere's own status codes.

Cohere's error bodies are ``{"id": …, "message": …}`` with no machine-readable
type, so the HTTP status decides, and the shared phrase check turns "too many
tokens" into ``context_length``. Two statuses are Cohere's own: 498 (an invalid
token) and 501 (a feature the model does not support), which is the caller's
mistake and not worth a retry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import msgspec

from lluminary.events import Error, ErrorCode
from lluminary.providers._errors import RETRYABLE_CODES, error_from_http

__all__ = ["map_error"]

_STATUS_CODES: Final[dict[int, ErrorCode]] = {
    498: "auth",
    501: "invalid_request",
}


def map_error(
    provider: str, status: int, headers: Mapping[str, str], body: bytes, secrets: tuple[str, ...] = ()
) -> Error:
    event = error_from_http(provider, status, headers, body, secrets=secrets)
    code = _STATUS_CODES.get(status)
    if code is not None and code != event.code:
        event = msgspec.structs.replace(event, code=code, retryable=code in RETRYABLE_CODES)
    return event
