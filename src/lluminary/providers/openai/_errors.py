"""OpenAI error mapping: the generic status mapping plus OpenAI's error types and codes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from lluminary.events import Error, ErrorCode
from lluminary.providers._errors import error_from_http

__all__ = ["TYPE_CODES", "map_error"]

TYPE_CODES: Final[dict[str, ErrorCode]] = {
    "invalid_request_error": "invalid_request",
    "authentication_error": "auth",
    "invalid_api_key": "auth",
    "permission_error": "permission",
    "not_found_error": "not_found",
    "model_not_found": "not_found",
    "rate_limit_error": "rate_limited",
    "rate_limit_exceeded": "rate_limited",
    "insufficient_quota": "rate_limited",
    "tokens": "rate_limited",
    "context_length_exceeded": "context_length",
    "string_above_max_length": "context_length",
    "server_error": "server",
    "api_error": "server",
    "overloaded_error": "overloaded",
    "service_unavailable": "overloaded",
    "timeout": "timeout",
    "content_filter": "content_filter",
    "content_policy_violation": "content_filter",
}

# Status-level mapping wins for these generic types; the vendor ``code`` is more specific.
_PRECEDENCE: Final = ("context_length_exceeded", "model_not_found", "insufficient_quota", "invalid_api_key")


def map_error(
    provider: str, status: int, headers: Mapping[str, str], body: bytes, secrets: tuple[str, ...] = ()
) -> Error:
    specific = {k: TYPE_CODES[k] for k in _PRECEDENCE}
    event = error_from_http(provider, status, headers, body, type_codes=specific, secrets=secrets)
    return event
