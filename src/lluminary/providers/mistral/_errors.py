"""Mistral error mapping: HTTP status first, then Mistral's error ``type``, then phrases.

Mistral's error bodies come in three shapes, and we read all of them:
``{"object": "error", "message": "…", "type": "invalid_request_error", "code": "…"}``;
a bare ``{"message": "Unauthorized", "request_id": …}`` (401, 429); and request
validation failures (422), where the message, or a top-level ``detail``, is a
list of ``{"loc": [...], "msg": "…"}`` entries. The body is normalised to one
message and one type, then handed to the shared mapper, which adds the status
codes, ``Retry-After`` and the context-length phrases ("… too large for model
with 32768 maximum context length").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec

from lluminary.events import Error, ErrorCode
from lluminary.providers._errors import error_from_http

__all__ = ["TYPE_CODES", "describe", "map_error"]

#: Every vendor type we know, for in-band errors, where there is no status.
TYPE_CODES: Final[dict[str, ErrorCode]] = {
    "invalid_request_error": "invalid_request",
    "invalid_request": "invalid_request",
    "invalid_model": "not_found",
    "unknown_model": "not_found",
    "model_not_found": "not_found",
    "unauthorized": "auth",
    "authentication_error": "auth",
    "forbidden": "permission",
    "rate_limit_error": "rate_limited",
    "rate_limit_exceeded": "rate_limited",
    "service_tier_capacity_exceeded": "overloaded",
    "context_length_exceeded": "context_length",
    "internal_error": "server",
    "internal_server_error": "server",
    "server_error": "server",
    "api_error": "server",
    "timeout": "timeout",
}

# Over an HTTP status, only the types that say more than the status does win:
# a 400 for an unknown model is ``not_found``, a 429 for exhausted capacity ``overloaded``.
_PRECEDENCE: Final[dict[str, ErrorCode]] = {
    k: TYPE_CODES[k]
    for k in (
        "invalid_model",
        "unknown_model",
        "model_not_found",
        "service_tier_capacity_exceeded",
        "context_length_exceeded",
    )
}
_decode_any: Final = msgspec.json.Decoder().decode


def describe(value: Any) -> str:
    """One readable line from a message that may be a string, a ``detail`` object or a list of them."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "; ".join(filter(None, (describe(item) for item in value)))
    if isinstance(value, dict):
        if "msg" in value:
            loc = value.get("loc")
            where = ".".join(str(p) for p in loc) if isinstance(loc, list) else ""
            return f"{where}: {value['msg']}" if where else str(value["msg"])
        for key in ("message", "detail"):
            if value.get(key):
                return describe(value[key])
    return "" if value is None else str(value)


def _normalise(body: bytes) -> bytes:
    try:
        data = _decode_any(body) if body else None
    except msgspec.DecodeError:
        return body  # not JSON (a proxy's HTML page …): the shared mapper quotes it
    if not isinstance(data, dict):
        return body
    nested = data.get("error")
    err: dict[str, Any] = nested if isinstance(nested, dict) else data
    out: dict[str, Any] = {"message": describe(err.get("message") or err.get("detail") or data.get("detail"))}
    for key in ("type", "code"):
        if isinstance(err.get(key), (str, int)):
            out[key] = err[key]
    return msgspec.json.encode(out)


def map_error(
    provider: str, status: int, headers: Mapping[str, str], body: bytes, secrets: tuple[str, ...] = ()
) -> Error:
    return error_from_http(provider, status, headers, _normalise(body), type_codes=_PRECEDENCE, secrets=secrets)
