"""OpenAI Responses error mapping: HTTP errors, the ``error`` event and ``response.failed``.

Before the stream starts, errors are the same JSON bodies as Chat Completions
(``{"error": {"message", "type", "code", "param"}}``), so the OpenAI mapping is
reused as is. After HTTP 200 only a ``code`` is left (``server_error``,
``rate_limit_exceeded``, ``insufficient_quota``, ``invalid_prompt``, the image
errors …); :func:`in_band_error` maps it. ``insufficient_quota`` is
``rate_limited`` but not retryable: waiting does not add credit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from lluminary.events import Error, ErrorCode
from lluminary.providers._errors import error_event
from lluminary.providers.openai._errors import TYPE_CODES as _CHAT_CODES
from lluminary.providers.openai._errors import map_error as _openai_map_error

__all__ = ["CODES", "in_band_error", "map_error"]

#: Codes of ``response.error`` and of the ``error`` event, on top of the Chat ones.
CODES: Final[dict[str, ErrorCode]] = {
    **_CHAT_CODES,
    "server_error": "server",
    "rate_limit_exceeded": "rate_limited",
    "invalid_prompt": "invalid_request",
    "vector_store_timeout": "timeout",
    "image_content_policy_violation": "content_filter",
    "content_filter": "content_filter",
}
_NOT_RETRYABLE: Final = frozenset({"insufficient_quota"})


def map_error(
    provider: str, status: int, headers: Mapping[str, str], body: bytes, secrets: tuple[str, ...] = ()
) -> Error:
    return _openai_map_error(provider, status, headers, body, secrets)


def in_band_error(provider: str, code: str | None, message: str | None, secrets: tuple[str, ...] = ()) -> Error:
    """An error reported inside a 200 stream; unknown codes are ``server`` errors."""
    kind = code or ""
    # The many image codes (``invalid_image_url``, ``image_too_large`` …) all mean a bad input.
    mapped: ErrorCode = CODES.get(kind) or ("invalid_request" if "image" in kind else "server")
    return error_event(
        mapped,
        message or kind or "the response failed",
        provider=provider,
        retryable=False if kind in _NOT_RETRYABLE else None,
        secrets=secrets,
    )
