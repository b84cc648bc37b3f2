"""The shared HTTP error mapping: status codes, ``Retry-After``, bodies and redaction.

Every provider's error mapper starts from :func:`error_from_http`; the provider
test files check each vendor's recorded error bodies on top of this. Here: the
status table, every form a ``Retry-After`` can take (and the absurd ones a
server may send), error bodies that are not what we expect, and keys echoed
back in messages.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from lluminary.providers import parse_retry_after, redact
from lluminary.providers._errors import MAX_RETRY_AFTER, code_for_status, error_event, error_from_http

KEY = "sk-test-canary1234"


def http_date(delta: timedelta) -> str:
    return format_datetime(datetime.now(UTC) + delta, usegmt=True)


# -- status codes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "invalid_request"),
        (401, "auth"),
        (402, "permission"),
        (403, "permission"),
        (404, "not_found"),
        (408, "timeout"),
        (413, "context_length"),
        (418, "invalid_request"),
        (422, "invalid_request"),
        (429, "rate_limited"),
        (500, "server"),
        (502, "server"),
        (503, "overloaded"),
        (504, "timeout"),
        (529, "overloaded"),
        (599, "server"),
    ],
)
def test_status_codes(status: int, code: str) -> None:
    assert code_for_status(status) == code
    event = error_from_http("p", status, {}, b"")
    assert (event.code, event.status, event.provider) == (code, status, "p")
    assert event.message == f"HTTP {status}"


@pytest.mark.parametrize(
    ("status", "retryable"), [(400, False), (401, False), (404, False), (429, True), (500, True), (503, True)]
)
def test_retryable_follows_the_code(status: int, retryable: bool) -> None:
    assert error_from_http("p", status, {}, b"").retryable is retryable


# -- Retry-After -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"Retry-After": "7"}, 7.0),
        ({"RETRY-AFTER": " 7 "}, 7.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),  # the precise one wins
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),  # a bad ms value falls back
        ({}, None),
        ({"x-ratelimit-reset-requests": "1s"}, None),
    ],
)
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_retry_after_from_the_header_types_transports_use() -> None:
    assert parse_retry_after(CIMultiDict({"Retry-After": "3"})) == 3.0  # aiohttp
    assert parse_retry_after(httpx.Headers({"Retry-After-Ms": "250"})) == 0.25  # httpx


@pytest.mark.parametrize(
    "value",
    ["-5", "-0.1", "inf", "-inf", "nan", "NaN", "1e3", "1e400", "1_000", "0x10", "\u0661\u0662", "", " ", "soon"],
)
def test_absurd_retry_after_values_are_ignored(value: str) -> None:
    assert parse_retry_after({"retry-after": value}) is None
    assert parse_retry_after({"retry-after-ms": value}) is None


@pytest.mark.parametrize("value", [str(10**9), "9" * 400])
def test_huge_retry_after_values_are_clamped(value: str) -> None:
    assert parse_retry_after({"retry-after": value}) == MAX_RETRY_AFTER
    assert parse_retry_after({"retry-after-ms": value}) == MAX_RETRY_AFTER


def test_retry_after_as_an_http_date() -> None:
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    ahead = parse_retry_after({"retry-after": http_date(timedelta(seconds=120))})
    assert ahead is not None
    assert 110.0 <= ahead <= 120.0
    far = parse_retry_after({"retry-after": http_date(timedelta(days=365))})
    assert far == MAX_RETRY_AFTER
    # Dates without a zone, or not dates at all, are not trusted.
    assert parse_retry_after({"retry-after": "Sun, 06 Nov 1994 08:49:37"}) is None
    assert parse_retry_after({"retry-after": "Mon, 99 Foo 2020 99:99:99 GMT"}) is None


@given(st.text(max_size=40), st.text(max_size=40))
def test_retry_after_never_raises_and_stays_in_bounds(seconds: str, millis: str) -> None:
    value = parse_retry_after({"retry-after": seconds, "retry-after-ms": millis})
    assert value is None or 0.0 <= value <= MAX_RETRY_AFTER


def test_retry_after_is_carried_by_the_error() -> None:
    event = error_from_http("p", 429, {"retry-after": "7"}, b'{"error": {"message": "slow down"}}')
    assert (event.code, event.retryable, event.retry_after, event.status) == ("rate_limited", True, 7.0, 429)


# -- bodies ------------------------------------------------------------------------------


def test_json_error_body_gives_the_message() -> None:
    body = b'{"error": {"message": "Invalid model", "type": "invalid_request_error"}}'
    assert error_from_http("p", 400, {}, body).message == "Invalid model"


def test_a_bare_message_body() -> None:
    assert error_from_http("p", 400, {}, b'{"message": "bad thing"}').message == "bad thing"


def test_a_string_error_body() -> None:
    # Ollama's shape: {"error": "…"}
    assert error_from_http("p", 404, {}, b'{"error": "model not found"}').message == "model not found"


def test_a_list_wrapped_body() -> None:
    # Gemini sometimes wraps the error object in a list.
    body = b'[{"error": {"code": 429, "message": "Quota", "status": "RESOURCE_EXHAUSTED"}}]'
    event = error_from_http("p", 429, {}, body, type_codes={"RESOURCE_EXHAUSTED": "rate_limited"})
    assert (event.code, event.message) == ("rate_limited", "Quota")


@pytest.mark.parametrize("body", [b"<html><body>502 Bad Gateway</body></html>", b"\xff\xfe garbage", b"[]", b"42"])
def test_bodies_that_are_not_error_objects_do_not_crash(body: bytes) -> None:
    event = error_from_http("p", 502, {}, body)
    assert event.code == "server"
    assert event.status == 502
    assert event.message


def test_vendor_types_win_over_the_status() -> None:
    body = b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'
    event = error_from_http("p", 500, {}, body, type_codes={"overloaded_error": "overloaded"})
    assert (event.code, event.retryable) == ("overloaded", True)


@pytest.mark.parametrize(
    "message",
    [
        "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.",
        "prompt is too long: 208310 tokens > 200000 maximum",
        "input is too long for requested model",
        "Request exceeds the context window",
    ],
)
def test_context_length_phrases(message: str) -> None:
    body = msgspec.json.encode({"error": {"message": message, "type": "invalid_request_error"}})
    assert error_from_http("p", 400, {}, body).code == "context_length"
    # A rate limit that mentions tokens is still a rate limit.
    assert error_from_http("p", 429, {}, body).code == "rate_limited"


def test_insufficient_quota_is_not_worth_retrying() -> None:
    body = b'{"error": {"message": "You exceeded your current quota", "type": "insufficient_quota"}}'
    event = error_from_http("p", 429, {"retry-after": "1"}, body)
    assert (event.code, event.retryable) == ("rate_limited", False)


# -- redaction -----------------------------------------------------------------------------


def test_a_key_echoed_in_a_401_body_is_redacted() -> None:
    body = b'{"error": {"message": "Incorrect API key provided: sk-test-canary1234. You can find your API key at https://platform.openai.com/account/api-keys.", "type": "invalid_request_error", "code": "invalid_api_key"}}'  # noqa: E501
    event = error_from_http("openai", 401, {}, body, secrets=(KEY,))
    assert (event.code, event.retryable, event.status) == ("auth", False, 401)
    assert KEY not in event.message
    assert "canary1234" not in event.message
    assert "Incorrect API key provided" in event.message


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-abc123DEF456",
        "sk-proj-****abcd",
        "sk-ant-api03-abcdefgh",
        "AIzaSyA1234567890abcdefg",
        "AKIAIOSFODNN7EXAMPLE",
        "Bearer abcdefgh12345678",
        "key=abcdefgh12345678",
    ],
)
def test_credential_shapes_are_redacted(secret: str) -> None:
    assert secret not in redact(f"failed with {secret} here")
    assert "[redacted]" in redact(f"failed with {secret} here")


@pytest.mark.parametrize(
    "text",
    [
        "Missing bearer or basic authentication in header",
        "Missing bearer authentication in header",
        "a risk-free, task-based retry",
        "the key=value pairs were malformed",
    ],
)
def test_prose_is_not_mistaken_for_a_credential(text: str) -> None:
    assert redact(text) == text


def test_explicit_secrets_are_redacted_whatever_their_shape() -> None:
    assert redact("token was hunter2-xyz", ("hunter2-xyz",)) == "token was [redacted]"
    # Too short to be a key: replacing it would mangle ordinary words.
    assert redact("the cat sat", ("at",)) == "the cat sat"
    assert redact("nothing secret here") == "nothing secret here"


def test_error_event_shortens_long_messages_and_redacts() -> None:
    event = error_event("server", f"{KEY} " + "x" * 2000, provider="p", secrets=(KEY,))
    assert len(event.message) == 500
    assert event.message.endswith("…")
    assert KEY not in event.message
    assert event.retryable is True
    assert error_event("server", "m", provider="p", retryable=False).retryable is False
