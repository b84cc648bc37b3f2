"""The event union, the request model, the response assembler and the codecs."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lluminary
from lluminary.errors import DecodeError
from lluminary.events import (
    ERROR_CODES,
    FINISH_REASONS,
    CacheHit,
    ChatRequest,
    Cost,
    Error,
    Event,
    Fallback,
    Finish,
    ImagePart,
    Message,
    ReasoningDelta,
    ReasoningPart,
    RefusalDelta,
    ResponseBuilder,
    Retry,
    Start,
    TextDelta,
    TextPart,
    ToolArgsDelta,
    ToolCallEnd,
    ToolCallPart,
    ToolCallStart,
    ToolResultPart,
    ToolSpec,
    Usage,
    decode_event,
    decode_events_msgpack,
    encode_event,
    encode_events_msgpack,
    encode_request,
    is_content,
    is_terminal,
)

SAMPLE: list[Event] = [
    Start(id="r1", provider="openai", model="gpt"),
    ReasoningDelta("think", signature="sig"),
    TextDelta("Hel"),
    TextDelta("lo", index=2),
    RefusalDelta("no"),
    ToolCallStart(0, "call_1", "f"),
    ToolArgsDelta(0, '{"a":'),
    ToolArgsDelta(0, "1}"),
    ToolCallEnd(0, "call_1", "f", {"a": 1}),
    Usage(10, 5, cache_read_tokens=2, cache_write_tokens=1, reasoning_tokens=3),
    Retry(1, 0.5, "rate_limited"),
    Fallback(1, "anthropic:x", "overloaded"),
    CacheHit("k"),
    Cost(0.1),
    Finish("tool_calls", "tool_calls"),
]


def test_json_wire_format_is_the_documented_one() -> None:
    assert encode_event(TextDelta("Hi")) == b'{"type":"text-delta","text":"Hi","index":0}'
    assert msgspec.json.decode(encode_event(Finish("stop", "end_turn"))) == {
        "type": "finish",
        "reason": "stop",
        "raw_reason": "end_turn",
    }
    error = msgspec.json.decode(encode_event(Error("rate_limited", "slow", True, "openai", 429, 2.0)))
    assert error == {
        "type": "error",
        "code": "rate_limited",
        "message": "slow",
        "retryable": True,
        "provider": "openai",
        "status": 429,
        "retry_after": 2.0,
    }
    usage = msgspec.json.decode(encode_event(Usage(1, 2)))
    assert set(usage) == {
        "type",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "estimated",
    }


@pytest.mark.parametrize("event", SAMPLE)
def test_every_event_round_trips_through_both_codecs(event: Event) -> None:
    assert decode_event(encode_event(event)) == event
    assert decode_events_msgpack(encode_events_msgpack([event])) == [event]


def test_required_tags() -> None:
    tags = {msgspec.json.decode(encode_event(e))["type"] for e in [*SAMPLE, Error("server", "x")]}
    assert {
        "start",
        "text-delta",
        "reasoning-delta",
        "tool-call-start",
        "tool-args-delta",
        "tool-call-end",
        "usage",
        "finish",
        "error",
    } <= tags
    assert {"stop", "length", "tool_calls", "content_filter", "other"} == FINISH_REASONS
    assert "budget_exceeded" in ERROR_CODES
    assert "cancelled" in ERROR_CODES


@pytest.mark.parametrize(
    "bad",
    [b"", b"{", b'{"type":"nope"}', b'{"type":"finish","reason":"bogus"}', b'{"type":"text-delta"}', b"\xff"],
)
def test_bad_json_is_a_typed_error(bad: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_event(bad)


def test_bad_msgpack_is_a_typed_error() -> None:
    with pytest.raises(DecodeError):
        decode_events_msgpack(b"\x93\x01")


def test_events_are_frozen() -> None:
    event = TextDelta("x")
    with pytest.raises(AttributeError):
        event.text = "y"  # type: ignore[misc]


def test_terminal_and_content_predicates() -> None:
    assert [is_terminal(e) for e in SAMPLE].count(True) == 1
    assert is_terminal(Error("timeout", "t"))
    assert is_content(TextDelta("x"))
    assert is_content(ToolCallStart(0, "a", "b"))
    assert not is_content(Usage())
    assert not is_content(Start("a", "b", "c"))


def test_response_builder_assembles_everything() -> None:
    builder = ResponseBuilder()
    for event in SAMPLE:
        builder.add(event)
    response = builder.build()
    assert response.text == "Hello"
    assert response.reasoning == "think"
    assert response.reasoning_parts == [ReasoningPart("think", signature="sig")]
    assert response.refusal == "no"
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [("call_1", "f", {"a": 1})]
    assert response.usage == Usage(10, 5, cache_read_tokens=2, cache_write_tokens=1, reasoning_tokens=3)
    assert response.finish_reason == "tool_calls"
    assert (response.id, response.provider, response.model) == ("r1", "openai", "gpt")
    message = response.message()
    assert message.role == "assistant"
    assert message.parts == [
        ReasoningPart("think", signature="sig"),
        TextPart("Hello"),
        ToolCallPart("call_1", "f", {"a": 1}),
    ]


def test_each_signed_reasoning_block_stays_separate() -> None:
    builder = ResponseBuilder()
    for event in [
        ReasoningDelta("a"),
        ReasoningDelta("b"),
        ReasoningDelta("", signature="s1"),
        ReasoningDelta("c", signature="s2"),
        ReasoningDelta("unsigned tail"),
        TextDelta("x"),
    ]:
        builder.add(event)
    response = builder.build()
    assert response.reasoning == "abcunsigned tail"
    assert response.reasoning_parts == [
        ReasoningPart("ab", signature="s1"),
        ReasoningPart("c", signature="s2"),
        ReasoningPart("unsigned tail"),
    ]
    assert response.message().parts[:3] == response.reasoning_parts


def test_redacted_reasoning_is_additive_on_the_wire() -> None:
    # Without the field, the JSON (and so the CLI, logs and cached streams) is what it always was.
    assert encode_event(ReasoningDelta("t")) == b'{"type":"reasoning-delta","text":"t","signature":null}'
    assert encode_event(ReasoningDelta("t", "s")) == b'{"type":"reasoning-delta","text":"t","signature":"s"}'
    assert decode_event(b'{"type":"reasoning-delta","text":"t","signature":null}') == ReasoningDelta("t")
    redacted = ReasoningDelta("", redacted="ZW5j")
    assert msgspec.json.decode(encode_event(redacted)) == {
        "type": "reasoning-delta",
        "text": "",
        "signature": None,
        "redacted": "ZW5j",
    }
    assert decode_event(encode_event(redacted)) == redacted
    assert decode_events_msgpack(encode_events_msgpack([redacted, ReasoningDelta("x")])) == [
        redacted,
        ReasoningDelta("x"),
    ]
    assert is_content(redacted)
    # Request cache keys of requests without it do not change either.
    plain = ChatRequest("m", [Message.assistant([ReasoningPart("t", signature="s")])])
    assert b"redacted" not in encode_request(plain)
    part = ReasoningPart("", redacted="ZW5j")
    with_part = ChatRequest("m", [Message.assistant([part])])
    assert msgspec.json.decode(encode_request(with_part), type=ChatRequest).messages[0].parts == [part]


def test_redacted_reasoning_blocks_keep_their_place() -> None:
    builder = ResponseBuilder()
    for event in [
        ReasoningDelta("", redacted="r1"),
        ReasoningDelta("a"),
        ReasoningDelta("", signature="s1"),
        ReasoningDelta("open"),
        ReasoningDelta("", redacted="r2"),
        ReasoningDelta("", redacted="r3"),
        TextDelta("x"),
    ]:
        builder.add(event)
    response = builder.build()
    assert response.reasoning == "aopen"
    assert response.reasoning_parts == [
        ReasoningPart("", redacted="r1"),
        ReasoningPart("a", signature="s1"),
        ReasoningPart("open"),
        ReasoningPart("", redacted="r2"),
        ReasoningPart("", redacted="r3"),
    ]
    assert response.message().parts == [*response.reasoning_parts, TextPart("x")]


def test_message_helpers() -> None:
    assert Message.user("hi").parts == [TextPart("hi")]
    assert Message.user([TextPart("a"), ImagePart(url="u"), TextPart("b")]).text == "ab"
    tool = Message.tool("call_1", "42", name="f")
    assert tool.role == "tool"
    assert tool.parts == [ToolResultPart("call_1", "42", name="f")]


def test_request_round_trips_and_encodes_canonically() -> None:
    request = ChatRequest(
        model="openai:gpt",
        messages=[Message.user("hi"), Message.assistant([ToolCallPart("c", "f", {"b": 1, "a": 2})])],
        tools=[ToolSpec("f", "does f", {"type": "object"})],
        temperature=0.2,
        stop=["x"],
        metadata={"tenant": "t1"},
    )
    data = encode_request(request)
    assert msgspec.json.decode(data, type=ChatRequest) == request
    assert data == encode_request(msgspec.json.decode(data, type=ChatRequest))
    assert b'"arguments":{"a":2,"b":1}' in data  # sorted keys, whatever the insertion order


@given(st.text(), st.integers(min_value=0, max_value=10**6))
def test_text_delta_round_trip_property(text: str, index: int) -> None:
    event = TextDelta(text, index)
    assert decode_event(encode_event(event)) == event


def test_public_api_is_pinned() -> None:
    assert sorted(lluminary.__all__) == sorted(
        [
            "Budget",
            "BudgetAlert",
            "Cache",
            "CacheHit",
            "ChatRequest",
            "Concurrency",
            "ConfigError",
            "Cost",
            "CostEvent",
            "DecodeError",
            "Engine",
            "Error",
            "Event",
            "EventLogger",
            "EventMap",
            "EventStream",
            "Fallback",
            "FallbackEvent",
            "Finish",
            "Handler",
            "ImagePart",
            "LLuminaryError",
            "Message",
            "Metrics",
            "MissingKeyError",
            "Operator",
            "RateLimit",
            "RateLimitWait",
            "ReasoningDelta",
            "ReasoningPart",
            "RedisRateLimitStore",
            "RefusalDelta",
            "Response",
            "ResponseBuilder",
            "ResponseFormat",
            "Retry",
            "RetryBudget",
            "RetryEvent",
            "SemanticCache",
            "Start",
            "StoreError",
            "StreamError",
            "TextDelta",
            "TextPart",
            "Timeout",
            "ToolArgsDelta",
            "ToolCall",
            "ToolCallEnd",
            "ToolCallPart",
            "ToolCallStart",
            "ToolChoice",
            "ToolResultPart",
            "ToolSpec",
            "Tracing",
            "UnknownModelError",
            "UnknownProviderError",
            "Usage",
            "__version__",
            "decode_event",
            "encode_event",
        ]
    )
    for name in lluminary.__all__:
        assert hasattr(lluminary, name), name
