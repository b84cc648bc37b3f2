"""Bedrock error mapping: HTTP failures and in-stream exception frames to typed ``error`` events.

AWS names every error by its shape ("ThrottlingException", "ValidationException"
…), and that name is more precise than the status: a 400 may be a validation
error or a quota, a 403 a denied permission or a bad signature. The name comes
in the ``x-amzn-ErrorType`` header (``ThrottlingException:http://internal.amazon.com/…``)
and/or the body's ``__type`` (sometimes namespaced, ``com.amazon.coral.service#…``);
after HTTP 200 it is the ``:exception-type`` header of an exception frame, in
lower camel case (``throttlingException``). We map by name first, then status.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

import msgspec

from lluminary.events import Error, ErrorCode
from lluminary.providers._errors import code_for_status, error_event, parse_retry_after

__all__ = ["TYPE_CODES", "error_type", "exception_event", "map_error"]

#: Error shape names, lower-cased, to our codes.
TYPE_CODES: Final[dict[str, ErrorCode]] = {
    "throttlingexception": "rate_limited",
    "toomanyrequestsexception": "rate_limited",
    "servicequotaexceededexception": "rate_limited",
    "modelstreamerrorexception": "server",
    "modelerrorexception": "server",
    "internalserverexception": "server",
    "internalfailure": "server",
    "serviceunavailableexception": "overloaded",
    "serviceunavailable": "overloaded",
    "modelnotreadyexception": "overloaded",
    "validationexception": "invalid_request",
    "serializationexception": "invalid_request",
    "modeltimeoutexception": "timeout",
    "accessdeniedexception": "permission",
    "resourcenotfoundexception": "not_found",
    "unrecognizedclientexception": "auth",
    "invalidsignatureexception": "auth",
    "incompletesignatureexception": "auth",
    "missingauthenticationtokenexception": "auth",
    "expiredtokenexception": "auth",
    "invalidclienttokenid": "auth",
    "signaturedoesnotmatch": "auth",
}

# A quota is not a burst: waiting a few seconds does not lift it, so retrying is pointless.
_NOT_RETRYABLE: Final = frozenset({"servicequotaexceededexception"})
# Bedrock's wordings for an over-long prompt ("Input is too long for requested model",
# Anthropic's "prompt is too long: … tokens > … maximum", "too many input tokens" …).
_TOO_LONG: Final = re.compile(
    r"(input|prompt)( is)? too long|too many (input )?tokens|context[ _-]?(length|window)|maximum context",
    re.IGNORECASE,
)


class _ErrorBody(msgspec.Struct, gc=False):
    message: str | None = None
    Message: str | None = None  # some AWS front ends capitalise it
    type_: str | None = msgspec.field(default=None, name="__type")
    originalMessage: str | None = None  # noqa: N815 - the wire name


_decode_body: Final = msgspec.json.Decoder(_ErrorBody).decode


def _short_name(raw: str) -> str:
    """``com.amazon.coral.service#ThrottlingException:http://…`` → ``ThrottlingException``."""
    return raw.split(":", 1)[0].rsplit("#", 1)[-1].strip()


def _body(body: bytes) -> tuple[str, _ErrorBody | None]:
    try:
        parsed = _decode_body(body) if body.strip() else None
    except (msgspec.DecodeError, msgspec.ValidationError):
        return body[:500].decode("utf-8", "replace").strip(), None
    if parsed is None:
        return "", None
    message = parsed.message or parsed.Message or ""
    if parsed.originalMessage and parsed.originalMessage != message:
        message = f"{message}: {parsed.originalMessage}" if message else parsed.originalMessage
    return message, parsed


def error_type(headers: Mapping[str, str], body: bytes) -> str | None:
    """The AWS error shape name, from ``x-amzn-ErrorType`` or the body's ``__type``."""
    raw = headers.get("x-amzn-ErrorType")
    if raw is None:
        raw = next((v for k, v in headers.items() if k.lower() == "x-amzn-errortype"), None)
    if not raw:
        _, parsed = _body(body)
        raw = parsed.type_ if parsed is not None else None
    return _short_name(raw) if raw else None


def _code(kind: str | None, fallback: ErrorCode, message: str) -> tuple[ErrorCode, bool | None]:
    code = TYPE_CODES.get(kind.lower(), fallback) if kind else fallback
    if code in ("invalid_request", "not_found") and _TOO_LONG.search(message):
        code = "context_length"
    retryable = False if kind and kind.lower() in _NOT_RETRYABLE else None
    return code, retryable


def map_error(
    provider: str, status: int, headers: Mapping[str, str], body: bytes, secrets: tuple[str, ...] = ()
) -> Error:
    """An HTTP error response (status ≥ 400) as one ``error`` event."""
    message, _ = _body(body)
    kind = error_type(headers, body)
    code, retryable = _code(kind, code_for_status(status), message)
    return error_event(
        code,
        message or kind or f"HTTP {status}",
        provider=provider,
        status=status,
        retry_after=parse_retry_after(headers),
        retryable=retryable,
        secrets=secrets,
    )


def exception_event(provider: str, kind: str | None, payload: bytes, secrets: tuple[str, ...] = ()) -> Error:
    """An exception frame (``:message-type: exception``) received after HTTP 200.

    There is no HTTP status to report: the response was a 200. A payload that is
    not JSON still gives a typed error with its text, never a ``protocol`` error,
    since the frame itself was well formed.
    """
    name = _short_name(kind) if kind else None
    message, _ = _body(payload)
    code, retryable = _code(name, "server", message)
    return error_event(code, message or name or "exception", provider=provider, retryable=retryable, secrets=secrets)
