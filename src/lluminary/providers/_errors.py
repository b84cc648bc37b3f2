"""HTTP failures to typed ``error`` events: status codes, ``Retry-After`` and bodies.

Every provider's error mapper starts here and adds only what is its own (a vendor
error type, a context-length phrase). Messages are cut short and scrubbed of
anything that looks like a credential: providers echo keys back in 401 bodies
("Incorrect API key provided: sk-…"), and those bodies end up in logs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from lluminary.events import Error, ErrorCode

__all__ = [
    "RETRYABLE_CODES",
    "code_for_status",
    "error_event",
    "error_from_http",
    "parse_retry_after",
    "redact",
]

RETRYABLE_CODES: Final[frozenset[str]] = frozenset({"rate_limited", "overloaded", "server", "timeout", "connection"})

#: The longest ``Retry-After`` we believe. Anything larger is clamped, not trusted:
#: a server saying "come back in a year" must not park a request for a year.
MAX_RETRY_AFTER: Final = 3600.0

_MAX_MESSAGE: Final = 500
_STATUS_CODES: Final[dict[int, ErrorCode]] = {
    400: "invalid_request",
    401: "auth",
    402: "permission",
    403: "permission",
    404: "not_found",
    408: "timeout",
    409: "server",
    413: "context_length",
    422: "invalid_request",
    429: "rate_limited",
    499: "cancelled",
    500: "server",
    502: "server",
    503: "overloaded",
    504: "timeout",
    529: "overloaded",
}
_CONTEXT_PHRASES: Final = re.compile(
    r"context[ _-]?(length|window)|maximum context|too many tokens|prompt is too long|"
    r"input is too long|exceeds? the (max|maximum)|token limit",
    re.IGNORECASE,
)
# Things that look like secrets: OpenAI/Anthropic style keys (also partially masked
# echoes such as "sk-proj-****abcd"), Google API keys, AWS access key ids, bearer tokens.
# "sk-" must start a word ("risk-free" is no key), and a bearer token or ``key=`` value
# must hold a digit, so prose such as "Missing bearer authentication" stays readable.
_SECRET_PATTERNS: Final = re.compile(
    r"((?<![A-Za-z0-9])sk-[A-Za-z0-9_\-*]{3,}|AIza[0-9A-Za-z_\-]{10,}|(?:AKIA|ASIA)[0-9A-Z]{12,}|"
    r"(?i:bearer)\s+(?=[A-Za-z._\-~+/=]*[0-9])[A-Za-z0-9._\-~+/=]{8,}|"
    r"(?i:key=)(?=[A-Za-z._\-]*[0-9])[A-Za-z0-9._\-]{8,})"
)
_DECIMAL: Final = re.compile(r"[0-9]+(?:\.[0-9]*)?", re.ASCII)
# A run of characters a key (or a masked echo of one, ``abcd1234****wxyz``) is made of.
_TOKEN: Final = re.compile(r"[A-Za-z0-9_\-.~+/=*]{8,}")
#: A token sharing this many consecutive characters with a known secret is a partial echo of it.
_PIECE: Final = 8
_decode_any = msgspec.json.Decoder().decode


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove known secrets, partial echoes of them, and anything shaped like a credential."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
            if len(secret) >= _PIECE:
                text = _redact_pieces(text, secret)
    return _SECRET_PATTERNS.sub("[redacted]", text)


def _redact_pieces(text: str, secret: str) -> str:
    # Servers echo keys masked ("Incorrect API key provided: abcd1234****wxyz"); a key
    # without a recognisable prefix escapes the patterns, so any token holding eight
    # consecutive characters of the secret goes too. Linear in the text.
    pieces = {secret[i : i + _PIECE] for i in range(len(secret) - _PIECE + 1)}

    def scrub(match: re.Match[str]) -> str:
        token = match.group()
        hit = any(token[i : i + _PIECE] in pieces for i in range(len(token) - _PIECE + 1))
        return "[redacted]" if hit else token

    return _TOKEN.sub(scrub, text)


def code_for_status(status: int) -> ErrorCode:
    code = _STATUS_CODES.get(status)
    if code is not None:
        return code
    if status >= 500:
        return "server"
    if status == 401:
        return "auth"
    return "invalid_request"


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date).

    Returns None for anything absent or absurd (negative, NaN, infinite, unparsable);
    values above :data:`MAX_RETRY_AFTER` are clamped to it.
    """
    raw_ms = _header(headers, "retry-after-ms")
    if raw_ms is not None:
        value = _finite(raw_ms)
        if value is not None:
            return min(value / 1000.0, MAX_RETRY_AFTER)
    raw = _header(headers, "retry-after")
    if raw is None:
        return None
    value = _finite(raw)
    if value is None:
        # An HTTP date is rare (seconds are the norm): email.utils is imported for it alone.
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            return None
        value = max(0.0, when.timestamp() - time.time())
    return min(value, MAX_RETRY_AFTER)


def error_event(
    code: ErrorCode,
    message: str,
    *,
    provider: str | None,
    status: int | None = None,
    retry_after: float | None = None,
    retryable: bool | None = None,
    secrets: tuple[str, ...] = (),
) -> Error:
    """Build an ``error`` event with a short, scrubbed message."""
    message = redact(message, secrets)
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 1] + "…"
    return Error(
        code=code,
        message=message,
        retryable=(code in RETRYABLE_CODES) if retryable is None else retryable,
        provider=provider,
        status=status,
        retry_after=retry_after,
    )


def error_from_http(
    provider: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    type_codes: Mapping[str, ErrorCode] | None = None,
    secrets: tuple[str, ...] = (),
) -> Error:
    """The generic mapping: status first, then the body's error ``type``/``code``, then phrases.

    ``type_codes`` maps vendor error types (``overloaded_error``, ``RESOURCE_EXHAUSTED``…)
    to codes and wins over the status, since vendors are more precise than HTTP.
    """
    code = code_for_status(status)
    message, kinds = describe_body(body)
    if type_codes:
        for kind in kinds:
            mapped = type_codes.get(kind)
            if mapped is not None:
                code = mapped
                break
    if code in ("invalid_request", "not_found") and _CONTEXT_PHRASES.search(message):
        code = "context_length"
    retryable: bool | None = None
    if "insufficient_quota" in kinds:
        # A 429 that no amount of waiting fixes: the account is out of credit.
        retryable = False
    return error_event(
        code,
        message or f"HTTP {status}",
        provider=provider,
        status=status,
        retry_after=parse_retry_after(headers),
        retryable=retryable,
        secrets=secrets,
    )


def describe_body(body: bytes) -> tuple[str, list[str]]:
    """The human message and the machine-readable error kinds found in an error body."""
    try:
        data = _decode_any(body) if body else None
    except msgspec.DecodeError:
        return body[:_MAX_MESSAGE].decode("utf-8", "replace").strip(), []
    if isinstance(data, list) and data:  # Gemini sometimes wraps the error in a list
        data = data[0]
    if not isinstance(data, dict):
        return (str(data) if data is not None else ""), []
    err: Any = data.get("error", data)
    if isinstance(err, str):
        return err, _kinds(data)
    if not isinstance(err, dict):
        return str(err), []
    message = err.get("message") or data.get("message") or ""
    return str(message), _kinds(err) + _kinds(data)


def _kinds(obj: dict[str, Any]) -> list[str]:
    return [str(obj[k]) for k in ("type", "code", "status", "__type") if isinstance(obj.get(k), (str, int))]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        for key, val in headers.items():
            if key.lower() == name:
                return val
    return value


def _finite(raw: str) -> float | None:
    # Only plain ASCII decimals: ``float`` would also take "1_000", "1e3", "inf" and
    # non-ASCII digits, none of which a server means as a delay.
    text = raw.strip()
    if not _DECIMAL.fullmatch(text):
        return None
    # A digit string too long for a float becomes inf, which the caller clamps.
    return float(text)
