"""Gemini error mapping: ``google.rpc.Status`` bodies to typed ``error`` events.

Wire facts this relies on. Every Gemini error body is
``{"error": {"code": <HTTP status>, "message": …, "status": <canonical code name>,
"details": [{"@type": …}, …]}}``, occasionally wrapped in a one-element JSON
array. The canonical ``status`` name (``RESOURCE_EXHAUSTED``, ``UNAVAILABLE`` …)
is more precise than the HTTP status and wins over it. Two kinds of ``details``
matter: ``google.rpc.RetryInfo`` carries ``retryDelay``, a protobuf Duration in
its JSON form (``"34.4s"``), used when no ``Retry-After`` header came; and
``google.rpc.ErrorInfo`` carries a ``reason`` such as ``API_KEY_INVALID``, which
Gemini sends with a plain ``400 INVALID_ARGUMENT`` for a bad key, so without it a
wrong key would look like a malformed request. The same object can arrive
in-band, as an SSE ``data:`` payload after HTTP 200; the decoder maps it here too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from lluminary.events import Error, ErrorCode
from lluminary.providers._errors import (
    MAX_RETRY_AFTER,
    code_for_status,
    error_event,
    error_from_http,
    parse_retry_after,
)

__all__ = ["REASON_CODES", "STATUS_CODES", "ErrorStatus", "error_from_status", "map_error", "parse_duration"]

#: Canonical ``google.rpc.Code`` names, as Gemini puts them in ``error.status``.
STATUS_CODES: Final[dict[str, ErrorCode]] = {
    "INVALID_ARGUMENT": "invalid_request",
    "OUT_OF_RANGE": "invalid_request",
    "ALREADY_EXISTS": "invalid_request",
    "UNIMPLEMENTED": "invalid_request",
    # Gemini uses it for account state ("free tier is not available in your
    # country, enable billing"): nothing the request itself can fix.
    "FAILED_PRECONDITION": "permission",
    "UNAUTHENTICATED": "auth",
    "PERMISSION_DENIED": "permission",
    "NOT_FOUND": "not_found",
    "RESOURCE_EXHAUSTED": "rate_limited",
    "ABORTED": "server",
    "INTERNAL": "server",
    "UNKNOWN": "server",
    "DATA_LOSS": "server",
    "UNAVAILABLE": "overloaded",
    "DEADLINE_EXCEEDED": "timeout",
    "CANCELLED": "cancelled",
}

#: ``google.rpc.ErrorInfo.reason`` values that say more than the status does.
REASON_CODES: Final[dict[str, ErrorCode]] = {
    "API_KEY_INVALID": "auth",
    "ACCESS_TOKEN_EXPIRED": "auth",
    "API_KEY_SERVICE_BLOCKED": "permission",
    "SERVICE_DISABLED": "permission",
    "CONSUMER_SUSPENDED": "permission",
}

# "The input token count (1234567) exceeds the maximum number of tokens allowed (1048576)."
_CONTEXT: Final = re.compile(r"input token count|exceeds the max(imum)? number of tokens|context (window|length)", re.I)
# A missing key comes back as 403 PERMISSION_DENIED "Method doesn't allow unregistered callers".
_NO_KEY: Final = re.compile(r"unregistered callers", re.I)
_DURATION: Final = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)s\s*")


class _Detail(msgspec.Struct, gc=False):
    type: str = msgspec.field(name="@type", default="")
    retry_delay: Any = msgspec.field(name="retryDelay", default=None)
    reason: str | None = None


class ErrorStatus(msgspec.Struct, gc=False):
    """The ``error`` object (a ``google.rpc.Status``), with only the fields we read."""

    code: int | None = None
    message: str = ""
    status: str = ""
    details: list[_Detail] | None = None


class _Envelope(msgspec.Struct, gc=False):
    error: ErrorStatus | None = None


_decode_body: Final = msgspec.json.Decoder(_Envelope | list[_Envelope]).decode


def parse_duration(value: Any) -> float | None:
    """Seconds from a protobuf Duration: ``"34.4s"``, or ``{"seconds": 34, "nanos": …}``."""
    seconds: float | None = None
    if isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match is not None:
            seconds = float(match.group(1))
    elif isinstance(value, dict):
        whole, nanos = value.get("seconds", 0), value.get("nanos", 0)
        try:
            seconds = float(whole) + float(nanos) / 1e9
        except (TypeError, ValueError):
            return None
    if seconds is None or not seconds >= 0:  # also rejects NaN
        return None
    return min(seconds, MAX_RETRY_AFTER)


def error_from_status(
    provider: str,
    status: ErrorStatus,
    *,
    http_status: int | None = None,
    retry_after: float | None = None,
    secrets: tuple[str, ...] = (),
) -> Error:
    """Map one ``google.rpc.Status``; ``retry_after`` (from headers) wins over ``RetryInfo``."""
    number = http_status if http_status is not None else status.code
    code: ErrorCode = code_for_status(number) if number is not None else "server"
    code = STATUS_CODES.get(status.status, code)
    for detail in status.details or ():
        if detail.reason is not None and detail.reason in REASON_CODES:
            code = REASON_CODES[detail.reason]
        if retry_after is None and detail.type.endswith("google.rpc.RetryInfo"):
            retry_after = parse_duration(detail.retry_delay)
    message = status.message or status.status or f"HTTP {number}"
    if code == "invalid_request" and _CONTEXT.search(message):
        code = "context_length"
    elif code == "permission" and _NO_KEY.search(message):
        code = "auth"
    return error_event(
        code,
        message,
        provider=provider,
        status=number,
        retry_after=retry_after,
        secrets=secrets,
    )


def map_error(
    provider: str, status: int, headers: Mapping[str, str], body: bytes, secrets: tuple[str, ...] = ()
) -> Error:
    """An HTTP error response. Bodies that are not a Status (an HTML proxy page…) get the generic mapping."""
    try:
        envelope = _decode_body(body)
    except msgspec.DecodeError:
        envelope = None
    if isinstance(envelope, list):
        envelope = envelope[0] if envelope else None
    if envelope is None or envelope.error is None:
        return error_from_http(provider, status, headers, body, type_codes=STATUS_CODES, secrets=secrets)
    return error_from_status(
        provider, envelope.error, http_status=status, retry_after=parse_retry_after(headers), secrets=secrets
    )
