"""Anthropic error mapping: HTTP status plus the ``error.type`` of the body or the in-band event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from lluminary.events import Error, ErrorCode
from lluminary.providers._errors import error_from_http

__all__ = ["TYPE_CODES", "map_error"]

TYPE_CODES: Final[dict[str, ErrorCode]] = {
    "invalid_request_error": "invalid_request",
    "authentication_error": "auth",
    "billing_error": "permission",
    "permission_error": "permission",
    "not_found_error": "not_found",
    "request_too_large": "context_length",
    "rate_limit_error": "rate_limited",
    "api_error": "server",
    "timeout_error": "timeout",
    "overloaded_error": "overloaded",
}


def map_error(
    provider: str, status: int, headers: Mapping[str, str], body: bytes, secrets: tuple[str, ...] = ()
) -> Error:
    return error_from_http(provider, status, headers, body, type_codes=TYPE_CODES, secrets=secrets)
