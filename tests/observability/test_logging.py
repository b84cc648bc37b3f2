"""Structured logging: request ids on every line of a request, secrets redacted, both formats."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog

from lluminary import Engine, Retry
from lluminary.engine import EventStream
from lluminary.events import ChatRequest, Event, Finish, Start, TextDelta, Usage
from lluminary.observability import REDACTED, Logging, Tracing, configure_logging, is_secret_name
from lluminary.providers import create_provider
from tests.observability.helpers import only_span, request, run, tracing
from tests.support import ReplayServer, Reply, fixture_bytes

pytestmark = pytest.mark.usefixtures("restore_logging")

OPENAI_TEXT = fixture_bytes("openai_chat", "text_stream_include_usage.sse")


def json_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def chatty_inner(log: Any) -> Any:
    """An inner handler that logs, as a provider or store below the operator would."""

    async def handler(req: ChatRequest) -> AsyncIterator[Event]:
        log.info("inner.start")
        try:
            for event in (Start("r", "openai", "m"), TextDelta("hi"), Usage(3, 1), Finish("stop")):
                yield event
        finally:
            log.info("inner.closed")  # cleanup, run when the stream is closed after its terminal event

    return handler


async def test_every_line_of_a_request_carries_its_id() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    inner_log = structlog.get_logger("lluminary.test.inner")
    consumer_log = structlog.get_logger("lluminary.test.consumer")

    composed = Logging()(chatty_inner(inner_log))
    async with EventStream(composed(request(metadata={"request_id": "req-42"}))) as stream:
        async for _ in stream:
            consumer_log.info("consumer.saw")
    await run(chatty_inner(inner_log), [Logging()])  # a second request, with a generated id

    lines = json_lines(out)
    by_event: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_event.setdefault(line["event"], []).append(line)
    summaries = by_event["llm.request"]
    generated = summaries[1]["request_id"]
    assert [line["request_id"] for line in by_event["inner.start"]] == ["req-42", generated]
    assert [line["request_id"] for line in by_event["inner.closed"]] == ["req-42", generated]
    assert summaries[0]["request_id"] == "req-42"
    assert summaries[0]["outcome"] == "finish"
    assert (summaries[0]["input_tokens"], summaries[0]["output_tokens"]) == (3, 1)
    assert summaries[0]["level"] == "info"
    assert summaries[0]["logger"] == "lluminary"
    assert len(generated) == 32
    # The consumer's own lines, between events, are not part of the request.
    assert all("request_id" not in line for line in by_event["consumer.saw"])
    assert all("timestamp" in line for line in lines)


async def test_retries_are_logged_and_lines_carry_the_trace_id() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    provider, exporter = tracing()
    replies = [
        Reply(b'{"error": {"message": "slow down"}}', status=429, headers={"retry-after": "0"}),
        Reply(OPENAI_TEXT),
    ]
    async with ReplayServer(replies) as server:
        openai = create_provider("openai", api_key="sk-live-abcdef123456", base_url=server.url + "/v1")
        operators = [Tracing(provider), Logging(), Retry(base_delay=0)]
        async with Engine(operators, providers={"openai": openai}) as engine:  # type: ignore[arg-type]
            events = [e async for e in engine.stream(request("openai:gpt-4o-mini"))]
    assert isinstance(events[-1], Finish)
    span = only_span(exporter)
    assert span.context is not None
    lines = json_lines(out)
    (retry,) = [line for line in lines if line["event"] == "llm.retry"]
    (summary,) = [line for line in lines if line["event"] == "llm.request"]
    assert retry["level"] == "warning"
    assert (retry["attempt"], retry["error_type"]) == (1, "rate_limited")
    assert summary["retries"] == 1
    assert summary["response_model"] == "gpt-4o-mini-2024-07-18"
    assert summary["duration_ms"] >= summary["ttfc_ms"] > 0
    for line in (retry, summary):
        assert line["trace_id"] == format(span.context.trace_id, "032x")
        assert line["request_id"] == summary["request_id"]
    assert "sk-live-abcdef123456" not in out.getvalue()


async def test_failed_requests_log_a_warning() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    reply = Reply(b'{"error": {"message": "nope"}}', status=404, headers={"content-type": "application/json"})
    async with ReplayServer([reply]) as server:
        openai = create_provider("openai", api_key="sk-test", base_url=server.url + "/v1")
        async with Engine([Logging()], providers={"openai": openai}) as engine:
            [_ async for _ in engine.stream(request("openai:gpt-4o-mini"))]
    (summary,) = [line for line in json_lines(out) if line["event"] == "llm.request"]
    assert summary["level"] == "warning"
    assert (summary["outcome"], summary["error_type"], summary["error_message"]) == ("error", "not_found", "nope")


def test_keys_are_redacted_by_name_and_by_shape() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    log = structlog.get_logger("lluminary.test")
    log.info(
        "calling provider",
        api_key="plain-words-but-a-key",
        headers={
            "Authorization": "Bearer abcdef0123456789",
            "x-goog-api-key": "AIzaSyA-1234567890abcdef",
            "X-Api-Key": "anything at all",
            "content-type": "application/json",
        },
        pairs=[("authorization", "Basic dXNlcjpwYXNz"), ("accept", "text/event-stream")],
        nested={"config": {"client_secret": "s3cr3t-value", "password": "hunter2", "region": "us-east-1"}},
        note="the server echoed sk-proj-abcdef123456 back",
        max_tokens=64,
        input_tokens=7,
    )
    logging.getLogger("aiohttp.client").warning("sent Authorization: Bearer tok3n0123456789")
    try:
        raise ValueError("Incorrect API key provided: sk-ant-api03-abcdef123456")
    except ValueError:
        log.exception("request failed")

    text = out.getvalue()
    for secret in (
        "plain-words-but-a-key",
        "abcdef0123456789",
        "AIzaSyA-1234567890abcdef",
        "anything at all",
        "dXNlcjpwYXNz",
        "s3cr3t-value",
        "hunter2",
        "sk-proj-abcdef123456",
        "tok3n0123456789",
        "sk-ant-api03-abcdef123456",
    ):
        assert secret not in text, secret
    first, foreign, failed = json_lines(out)
    assert first["api_key"] == REDACTED
    assert first["headers"] == {
        "Authorization": REDACTED,
        "x-goog-api-key": REDACTED,
        "X-Api-Key": REDACTED,
        "content-type": "application/json",
    }
    assert first["pairs"] == [["authorization", REDACTED], ["accept", "text/event-stream"]]
    assert first["nested"] == {"config": {"client_secret": REDACTED, "password": REDACTED, "region": "us-east-1"}}
    assert (first["max_tokens"], first["input_tokens"]) == (64, 7)  # counts are not credentials
    assert first["note"] == "the server echoed [redacted] back"
    assert foreign["logger"] == "aiohttp.client"
    assert foreign["level"] == "warning"
    assert "ValueError: Incorrect API key provided: [redacted]" in failed["exception"]


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("Authorization", True),
        ("proxy-authorization", True),
        ("x-api-key", True),
        ("X-Goog-Api-Key", True),
        ("openai_api_key", True),
        ("refresh_token", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("token", True),
        ("max_tokens", False),
        ("output_tokens", False),
        ("cache_key", False),
        ("model", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_console_format_in_a_terminal_or_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setenv("LLUMINARY_LOG_FORMAT", "console")
    configure_logging(stream=out)
    structlog.get_logger("lluminary.test").info("hello", api_key="sk-zzz-abcdef123456", tokens_seen=3)
    line = out.getvalue().strip()
    assert "hello" in line
    assert "tokens_seen=3" in line
    assert "api_key=[redacted]" in line
    assert "abcdef123456" not in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_json_chosen_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLUMINARY_LOG_FORMAT", raising=False)
    out = io.StringIO()  # not a TTY: production
    configure_logging(stream=out, level="WARNING")
    log = structlog.get_logger("lluminary.test")
    log.info("dropped: below the level")
    log.warning("kept", n=1)
    (line,) = json_lines(out)
    assert (line["event"], line["n"], line["level"]) == ("kept", 1, "warning")


def test_reconfiguring_replaces_our_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(json=True, stream=first)
    configure_logging(json=True, stream=second)
    ours = [h for h in logging.getLogger().handlers if h.get_name() == "lluminary"]
    assert len(ours) == 1
    structlog.get_logger("x").info("once")
    assert first.getvalue() == ""
    assert [line["event"] for line in json_lines(second)] == ["once"]
