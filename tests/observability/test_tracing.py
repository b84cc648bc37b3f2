"""The Tracing operator: GenAI span attributes for every provider, content only on opt-in, endings.

Every provider's recording is replayed over real loopback HTTP; the spans go to
an in-memory exporter and are checked against the events the consumer saw.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from lluminary import Engine, Retry
from lluminary.engine import EventStream
from lluminary.events import (
    BudgetAlert,
    CacheHit,
    ChatRequest,
    Cost,
    Error,
    Event,
    Fallback,
    Finish,
    Message,
    RateLimitWait,
    ReasoningDelta,
    Start,
    TextDelta,
    ToolCallEnd,
    Usage,
    is_content,
)
from lluminary.observability import PROVIDER_NAMES, Tracing
from lluminary.providers import create_provider
from tests.observability.helpers import CASES, Case, only_span, request, run, scripted, tracing
from tests.support import ReplayServer, Reply, check_invariants, fixture_bytes

PROMPT = "Which city hosts canary-prompt-4417? Answer briefly."
SYSTEM = "You are terse: canary-system-9031."
OPENAI_TEXT = fixture_bytes("openai_chat", "text_stream_include_usage.sse")


def content_of(events: list[Event]) -> tuple[list[str], list[str]]:
    """The conversation text a span must not hold without capture_content.

    Whole texts (prompt, system prompt, the answer, tool arguments), which must
    appear nowhere, not even in the serialized span; and the single deltas of at
    least five characters, which must appear in no value (a delta such as
    "response." may well spell part of an attribute *name*).
    """
    whole = [PROMPT, SYSTEM, "canary-prompt-4417", "canary-system-9031"]
    pieces: list[str] = []
    for kind in (TextDelta, ReasoningDelta):
        deltas = [e.text for e in events if isinstance(e, kind)]
        if "".join(deltas).strip():
            whole.append("".join(deltas).strip())
        pieces += [d.strip() for d in deltas if len(d.strip()) >= 5]
    for call in (e for e in events if isinstance(e, ToolCallEnd)):
        whole.append(json.dumps(call.arguments))
        pieces += [v for v in call.arguments.values() if isinstance(v, str) and len(v) >= 3]
    return whole, pieces


def values_of(span: ReadableSpan) -> list[str]:
    """Every string a span carries: name, status, attribute and event values."""
    out = [span.name, span.status.description or ""]
    bags = [span.attributes or {}] + [event.attributes or {} for event in span.events]
    for bag in bags:
        for value in bag.values():
            out += [str(v) for v in value] if isinstance(value, tuple) else [str(value)]
    out += [event.name for event in span.events]
    return out


def assert_no_content(span: ReadableSpan, whole: list[str], pieces: list[str] | None = None) -> None:
    values = values_of(span)
    serialized = span.to_json()
    for text in [*whole, *(pieces or [])]:
        assert not any(text in value for value in values), f"{text!r} leaked into the span"
    for text in whole:
        assert json.dumps(text)[1:-1] not in serialized, f"{text!r} leaked into the serialized span"


@pytest.mark.parametrize("case", CASES, ids=[c.provider for c in CASES])
async def test_genai_attributes_for_every_provider(case: Case) -> None:
    provider, exporter = tracing()
    body = case.body()
    reply = Reply(body, chunk_size=61, headers={"content-type": case.content_type})
    req = ChatRequest(
        model=f"{case.provider}:{case.model}",
        messages=[Message.user(PROMPT)],
        system=SYSTEM,
        temperature=0.25,
        top_p=0.5,
        max_tokens=200,
    )
    seen: dict[bool, list[Event]] = {}
    async with ReplayServer([reply]) as server:
        for capture in (False, True):
            base = case.configured(server)
            operators = [Tracing(provider, capture_content=capture, servers={case.provider: base})]
            engine = Engine(operators, providers={case.provider: base})
            async with engine, engine.stream(req) as stream:
                seen[capture] = [event async for event in stream]
        port = server.port
    events = seen[False]
    check_invariants(events)
    assert isinstance(events[-1], Finish)
    assert seen[True] == events  # tracing, with or without content, leaves the stream as it was
    plain, captured = exporter.get_finished_spans()

    start = next(e for e in events if isinstance(e, Start))
    usage = [e for e in events if isinstance(e, Usage)][-1]
    for span in (plain, captured):
        attrs = span.attributes or {}
        assert span.name == f"chat {case.model}"
        assert span.kind is SpanKind.CLIENT
        assert span.status.status_code is StatusCode.UNSET
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.provider.name"] == case.system == PROVIDER_NAMES[case.provider]
        assert attrs["gen_ai.request.model"] == case.model
        assert attrs["gen_ai.response.model"] == start.model
        if start.id:
            assert attrs["gen_ai.response.id"] == start.id
        assert (
            attrs["gen_ai.usage.input_tokens"]
            == usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
        )
        assert attrs["gen_ai.usage.output_tokens"] == usage.output_tokens
        reason = events[-1].reason
        assert attrs["gen_ai.response.finish_reasons"] == ("tool_call" if reason == "tool_calls" else reason,)
        assert (attrs["gen_ai.request.temperature"], attrs["gen_ai.request.top_p"]) == (0.25, 0.5)
        assert attrs["gen_ai.request.max_tokens"] == 200
        assert (attrs["server.address"], attrs["server.port"]) == ("127.0.0.1", port)
        assert "error.type" not in attrs
        assert not span.events  # nothing but the attribute marks the first chunk; no retry or other event here
        ttfc = attrs["gen_ai.response.time_to_first_chunk"]
        assert isinstance(ttfc, float)
        assert 0 < ttfc < 30
        assert attrs["lluminary.response.chunks"] == sum(1 for e in events if is_content(e))

    for span in (plain, captured):
        for secret in ("sk-canary-obs-123456", *(v for k, v in case.env.items() if k != "AWS_REGION")):
            assert secret not in span.to_json()
    whole, pieces = content_of(events)
    assert_no_content(plain, whole, pieces)
    with pytest.raises(AssertionError, match="leaked"):
        assert_no_content(captured, whole, pieces)  # the check does see content where there is some
    for key in ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"):
        assert key not in (plain.attributes or {})

    attrs = captured.attributes or {}
    inputs = json.loads(str(attrs["gen_ai.input.messages"]))
    assert inputs == [{"role": "user", "parts": [{"type": "text", "content": PROMPT}]}]
    assert json.loads(str(attrs["gen_ai.system_instructions"])) == [{"type": "text", "content": SYSTEM}]
    (output,) = json.loads(str(attrs["gen_ai.output.messages"]))
    assert output["role"] == "assistant"
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    parts = output["parts"]
    if text:
        assert {"type": "text", "content": text} in parts
    calls = [e for e in events if isinstance(e, ToolCallEnd)]
    assert [p for p in parts if p["type"] == "tool_call"] == [
        {"type": "tool_call", "id": c.id, "name": c.name, "arguments": c.arguments} for c in calls
    ]
    assert text or calls, "every recording used here produces text or a tool call"


async def test_retries_are_span_events_of_one_request_span() -> None:
    provider, exporter = tracing()
    replies = [
        Reply(b'{"error": {"message": "slow down"}}', status=429, headers={"retry-after": "0"}),
        Reply(OPENAI_TEXT),
    ]
    async with ReplayServer(replies) as server:
        openai = create_provider("openai", api_key="sk-test", base_url=server.url + "/v1")
        async with Engine([Tracing(provider), Retry(base_delay=0)], providers={"openai": openai}) as engine:
            events = [e async for e in engine.stream(request("openai:gpt-4o-mini"))]
    assert isinstance(events[-1], Finish)
    span = only_span(exporter)
    retries = [e for e in span.events if e.name == "lluminary.retry"]
    assert [dict(e.attributes or {}) for e in retries] == [
        {"lluminary.retry.attempt": 1, "lluminary.retry.delay": 0.0, "error.type": "rate_limited"}
    ]
    assert span.status.status_code is StatusCode.UNSET
    assert (span.attributes or {})["gen_ai.response.finish_reasons"] == ("stop",)


async def test_http_error_sets_error_status_and_type() -> None:
    provider, exporter = tracing()
    reply = Reply(
        b'{"error": {"message": "model not found"}}', status=404, headers={"content-type": "application/json"}
    )
    async with ReplayServer([reply]) as server:
        openai = create_provider("openai", api_key="sk-test", base_url=server.url + "/v1")
        async with Engine([Tracing(provider)], providers={"openai": openai}) as engine:
            events = [e async for e in engine.stream(request("openai:gpt-nope"))]
    assert isinstance(events[-1], Error)
    span = only_span(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "model not found"
    assert (span.attributes or {})["error.type"] == "not_found"
    assert "gen_ai.response.finish_reasons" not in (span.attributes or {})


async def test_consumer_stopping_early_ends_the_span_once(caplog: pytest.LogCaptureFixture) -> None:
    provider, exporter = tracing()
    async with ReplayServer([Reply(OPENAI_TEXT, chunk_size=40)]) as server:
        openai = create_provider("openai", api_key="sk-test", base_url=server.url + "/v1")
        engine = Engine([Tracing(provider)], providers={"openai": openai})
        async with engine, engine.stream(request("openai:gpt-4o-mini")) as stream:
            async for event in stream:
                if isinstance(event, TextDelta):
                    break
    span = only_span(exporter)
    attrs = span.attributes or {}
    assert attrs["error.type"] == "cancelled"
    assert span.status.status_code is StatusCode.UNSET  # the consumer chose to stop: nothing failed
    assert attrs["lluminary.response.chunks"] == 1
    assert span.end_time is not None
    assert "ended span" not in caplog.text


async def test_task_cancellation_ends_the_span_as_cancelled() -> None:
    provider, exporter = tracing()
    stall = OPENAI_TEXT.index(b'"content":"The"') + 200  # the first text arrives, then the server stalls
    async with ReplayServer([Reply(OPENAI_TEXT, stall_after=stall)]) as server:
        openai = create_provider("openai", api_key="sk-test", base_url=server.url + "/v1")
        async with Engine([Tracing(provider)], providers={"openai": openai}) as engine:
            got: list[Event] = []
            with anyio.CancelScope() as scope:
                async with engine.stream(request("openai:gpt-4o-mini")) as stream:
                    async for event in stream:
                        got.append(event)
                        if isinstance(event, TextDelta):
                            scope.cancel()  # lands on the next read, which waits on the stalled server
            server.release_stalls()
    assert scope.cancelled_caught
    assert any(isinstance(e, TextDelta) for e in got)
    assert not any(isinstance(e, Finish) for e in got)
    span = only_span(exporter)
    assert (span.attributes or {})["error.type"] == "cancelled"
    assert span.status.status_code is StatusCode.UNSET


async def test_operator_events_and_cached_usage() -> None:
    provider, exporter = tracing()
    events: list[Event] = [
        Start("resp-1", "openai", "m-2024"),
        RateLimitWait(0.25, "tenant:acme"),
        Fallback(1, "anthropic:claude-haiku", "overloaded"),
        CacheHit("key-derived-from-canary-prompt", similarity=0.93),
        ReasoningDelta("thinking about canary-prompt"),
        TextDelta("hello there canary"),
        Usage(10, 5, cache_read_tokens=90, cache_write_tokens=3, reasoning_tokens=2),
        Cost(0.5, estimated=True),
        BudgetAlert("acme", "day", 0.8, 8.0, 10.0),
        Finish("tool_calls"),
    ]
    assert await run(scripted(events), [Tracing(provider)]) == events
    span = only_span(exporter)
    attrs = span.attributes or {}
    assert attrs["gen_ai.usage.input_tokens"] == 103  # ours excludes the cache; the spec's includes it
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 90
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == 3
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 2
    assert attrs["gen_ai.response.finish_reasons"] == ("tool_call",)
    assert (attrs["lluminary.cost.usd"], attrs["lluminary.cost.estimated"], attrs["lluminary.cache.hit"]) == (
        0.5,
        True,
        True,
    )
    by_name = {e.name: dict(e.attributes or {}) for e in span.events}
    assert by_name["lluminary.fallback"] == {
        "lluminary.fallback.attempt": 1,
        "lluminary.fallback.model": "anthropic:claude-haiku",
        "error.type": "overloaded",
    }
    assert by_name["lluminary.cache_hit"] == {"lluminary.cache.kind": "semantic", "lluminary.cache.similarity": 0.93}
    assert by_name["lluminary.rate_limit_wait"] == {"lluminary.rate_limit.delay": 0.25}
    assert by_name["lluminary.budget_alert"]["lluminary.budget.threshold"] == 0.8
    assert attrs["lluminary.response.chunks"] == 2
    assert_no_content(span, ["canary", "key-derived"])


async def test_an_exception_below_is_recorded_and_propagates() -> None:
    provider, exporter = tracing()

    async def broken(req: ChatRequest) -> AsyncIterator[Event]:
        yield Start("r", "openai", "m")
        raise RuntimeError("operator bug")

    with pytest.raises(RuntimeError, match="operator bug"):
        await run(broken, [Tracing(provider)])
    span = only_span(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "RuntimeError"
    assert [e.name for e in span.events] == ["exception"]


async def test_a_handler_failing_when_called_still_ends_the_span() -> None:
    provider, exporter = tracing()

    def refuses(req: ChatRequest) -> AsyncIterator[Event]:
        raise LookupError("no such route")

    with pytest.raises(LookupError):
        await run(refuses, [Tracing(provider)])
    span = only_span(exporter)
    assert (span.attributes or {})["error.type"] == "LookupError"
    assert span.status.status_code is StatusCode.ERROR


async def test_a_stream_without_terminal_event_is_a_protocol_error() -> None:
    provider, exporter = tracing()
    events = await run(scripted([Start("r", "openai", "m"), TextDelta("x")]), [Tracing(provider)])
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"  # EventStream's verdict
    span = only_span(exporter)
    assert (span.attributes or {})["error.type"] == "protocol"
    assert span.status.status_code is StatusCode.ERROR


async def test_the_span_is_current_below_and_only_below() -> None:
    provider, exporter = tracing()
    inside: list[Any] = []
    outside: list[Any] = []

    async def inner(req: ChatRequest) -> AsyncIterator[Event]:
        for event in (Start("r", "openai", "m"), TextDelta("a"), Usage(1, 1), Finish("stop")):
            inside.append(trace.get_current_span().get_span_context())
            yield event

    handler = Tracing(provider)(inner)
    async with EventStream(handler(request())) as stream:
        async for _ in stream:
            outside.append(trace.get_current_span().get_span_context())
    span = only_span(exporter)
    assert span.context is not None
    assert {(c.trace_id, c.span_id) for c in inside} == {(span.context.trace_id, span.context.span_id)}
    assert not any(c.is_valid for c in outside)  # the consumer's context is left as it was


async def test_works_without_an_sdk_and_keeps_the_stream_unchanged() -> None:
    events: list[Event] = [Start("r", "openai", "m"), TextDelta("hi"), Usage(1, 1), Finish("stop")]
    assert await run(scripted(events), [Tracing(trace.NoOpTracerProvider())]) == events


def test_repr() -> None:
    assert repr(Tracing(trace.NoOpTracerProvider(), capture_content=True)) == "Tracing(capture_content=True)"


def test_the_default_runtime_context_is_switched_through_its_context_var() -> None:
    # Per event the span becomes current and is undone again: with OpenTelemetry's
    # default runtime context that is its ContextVar's set/reset, not the API's calls.
    from opentelemetry import context

    from lluminary.engine.operators._tracing import _context_switch

    attach, detach = _context_switch(context)
    var = context._RUNTIME_CONTEXT._current_context  # type: ignore[attr-defined]
    assert attach == var.set
    assert detach == var.reset
    marker = context.set_value("lluminary.test", 1)
    token = attach(marker)
    assert context.get_value("lluminary.test") == 1
    detach(token)
    assert context.get_value("lluminary.test") is None


def test_another_runtime_context_goes_through_the_api() -> None:
    import types

    from opentelemetry import context

    from lluminary.engine.operators._tracing import _context_switch

    class Other:
        _current_context = None

    other = types.ModuleType("otel_context_stand_in")
    other._RUNTIME_CONTEXT = Other()  # type: ignore[attr-defined]
    other.attach = context.attach  # type: ignore[attr-defined]
    other.detach = context.detach  # type: ignore[attr-defined]
    assert _context_switch(other) == (context.attach, context.detach)
