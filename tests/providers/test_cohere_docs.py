"""Cohere v2 Chat: streams written from the streaming reference, not recordings.

Every documented event type appears here, with the ``event:`` line Cohere sends
and the data object. Each case is checked for the exact events, then fed one
byte at a time, so chunking never changes the outcome.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lluminary.events import (
    Error,
    Event,
    Finish,
    ReasoningDelta,
    Start,
    TextDelta,
    ToolArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from lluminary.providers.cohere import CohereDecoder
from lluminary.providers.cohere._errors import classify
from tests.support import check_invariants, decode

START = {
    "id": "5a2f5c33-0cf7-4b3e-9c53-0c2b1f9a7d1e",
    "type": "message-start",
    "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}},
}
START_EVENT = Start("5a2f5c33-0cf7-4b3e-9c53-0c2b1f9a7d1e", "cohere", "command-a-03-2025")


def new_decoder() -> CohereDecoder:
    return CohereDecoder(model="command-a-03-2025", input_estimate=5)


def sse(*payloads: dict[str, Any]) -> bytes:
    out = []
    for p in payloads:
        name = f"event: {p['type']}\n" if "type" in p else ""
        out.append(f"{name}data: {json.dumps(p)}\n\n")
    return "".join(out).encode()


def run(*payloads: dict[str, Any]) -> list[Event]:
    body = sse(*payloads)
    events = decode(new_decoder, [body])
    check_invariants(events)
    assert decode(new_decoder, [body[i : i + 1] for i in range(len(body))]) == events
    return events


def content(kind: str, index: int, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "index": index, "delta": {"message": {"content": fields}}}


def end(reason: str | None, **delta: Any) -> dict[str, Any]:
    return {"type": "message-end", "delta": {"finish_reason": reason, **delta}}


def test_thinking_text_citations_debug_and_usage() -> None:
    usage = {
        "billed_units": {"input_tokens": 8, "output_tokens": 20},
        "tokens": {"input_tokens": 400, "output_tokens": 24},
        "cached_tokens": 380,
    }
    citation = {
        "start": 0,
        "end": 5,
        "text": "Paris",
        "sources": [{"type": "document", "id": "doc:0", "document": {"id": "doc:0", "text": "Paris is…"}}],
        "type": "TEXT_CONTENT",
    }
    events = run(
        START,
        content("content-start", 0, type="thinking", thinking=""),
        content("content-delta", 0, thinking="The user asks"),
        content("content-delta", 0, thinking=" for a capital."),
        {"type": "content-end", "index": 0},
        content("content-start", 1, type="text", text=""),
        content("content-delta", 1, text="Paris"),
        {"type": "citation-start", "index": 0, "delta": {"message": {"citations": citation}}},
        {"type": "citation-end", "index": 0},
        content("content-delta", 1, text=" it is."),
        {"type": "content-end", "index": 1},
        {"type": "debug", "prompt": "<BOS_TOKEN>…"},
        end("COMPLETE", usage=usage),
    )
    assert events == [
        START_EVENT,
        ReasoningDelta("The user asks"),
        ReasoningDelta(" for a capital."),
        TextDelta("Paris", 1),
        TextDelta(" it is.", 1),
        # tokens.input_tokens includes the cached part; billed units are what is charged.
        Usage(input_tokens=20, output_tokens=24, cache_read_tokens=380),
        Finish("stop", "COMPLETE"),
    ]


def test_tool_plan_and_two_calls() -> None:
    def call_start(index: int, id: str, name: str) -> dict[str, Any]:
        call = {"id": id, "type": "function", "function": {"name": name, "arguments": ""}}
        return {"type": "tool-call-start", "index": index, "delta": {"message": {"tool_calls": call}}}

    def call_delta(index: int, fragment: str) -> dict[str, Any]:
        call = {"function": {"arguments": fragment}}
        return {"type": "tool-call-delta", "index": index, "delta": {"message": {"tool_calls": call}}}

    events = run(
        START,
        {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will look"}}},
        {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": " both up."}}},
        call_start(0, "get_weather_a1", "get_weather"),
        call_delta(0, '{\n    "location": "'),
        call_delta(0, 'Toronto"\n}'),
        {"type": "tool-call-end", "index": 0},
        call_start(1, "get_time_b2", "get_time"),
        {"type": "tool-call-end", "index": 1},
        end("TOOL_CALL", usage={"billed_units": {"input_tokens": 30, "output_tokens": 12}}),
    )
    assert events == [
        START_EVENT,
        ReasoningDelta("I will look"),
        ReasoningDelta(" both up."),
        ToolCallStart(0, "get_weather_a1", "get_weather"),
        ToolArgsDelta(0, '{\n    "location": "'),
        ToolArgsDelta(0, 'Toronto"\n}'),
        ToolCallEnd(0, "get_weather_a1", "get_weather", {"location": "Toronto"}),
        ToolCallStart(1, "get_time_b2", "get_time"),
        ToolArgsDelta(1, "{}"),
        ToolCallEnd(1, "get_time_b2", "get_time", {}),
        Usage(input_tokens=30, output_tokens=12),
        Finish("tool_calls", "TOOL_CALL"),
    ]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("COMPLETE", "stop"), ("STOP_SEQUENCE", "stop"), ("MAX_TOKENS", "length"), ("TOOL_CALL", "tool_calls")],
)
def test_normal_finish_reasons(raw: str, reason: str) -> None:
    usage = {"billed_units": {"input_tokens": 2, "output_tokens": 1}, "tokens": {"input_tokens": 9, "output_tokens": 1}}
    events = run(START, content("content-delta", 0, text="A"), end(raw, usage=usage))
    assert events == [START_EVENT, TextDelta("A"), Usage(input_tokens=9, output_tokens=1), Finish(reason, raw)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "detail", "code", "retryable"),
    [
        ("ERROR", "internal server error", "server", True),
        ("ERROR", "too many tokens: total number of tokens in the prompt cannot exceed 4081", "context_length", False),
        ("TIMEOUT", "generation timed out", "timeout", True),
        ("TIMEOUT", None, "timeout", True),
        ("ERROR", None, "server", True),
    ],
)
def test_failed_finish_reasons_are_typed_errors_after_usage(
    raw: str, detail: str | None, code: str, retryable: bool
) -> None:
    extra = {"error": detail} if detail else {}
    usage = {"tokens": {"input_tokens": 9, "output_tokens": 1}}
    events = run(START, content("content-delta", 0, text="A"), end(raw, usage=usage, **extra))
    message = f"Cohere: {detail or f'the generation ended with finish_reason {raw}'}"
    assert events == [
        START_EVENT,
        TextDelta("A"),
        Usage(input_tokens=9, output_tokens=1),
        Error(code, message, retryable, "cohere"),  # type: ignore[arg-type]
    ]


@pytest.mark.parametrize(
    ("message", "code", "retryable"),
    [
        ("too many tokens: size limit exceeded by 1024 tokens", "context_length", False),
        ("You are using a Trial key, which is limited to 20 API calls / minute.", "rate_limited", True),
        ("trial token rate limit exceeded, limit is 100000 tokens per minute", "rate_limited", True),
        ("rate limit exceeded: too many tokens per minute", "rate_limited", True),
        ("internal server error", "server", True),
    ],
)
def test_error_object_in_the_stream_is_classified_by_its_text(message: str, code: str, retryable: bool) -> None:
    events = run(START, content("content-delta", 0, text="A"), {"id": "e-1", "message": message})
    assert events == [
        START_EVENT,
        TextDelta("A"),
        Usage(input_tokens=5, output_tokens=1, estimated=True),
        Error(code, message, retryable, "cohere"),  # type: ignore[arg-type]
    ]
    assert classify(message) == code


def test_usage_counts_fall_back_one_by_one() -> None:
    usage = {"billed_units": {"input_tokens": 7, "output_tokens": 3}, "tokens": {"output_tokens": 4}}
    assert run(START, end("COMPLETE", usage=usage))[-2] == Usage(input_tokens=7, output_tokens=4)


def test_message_end_alone_after_start_is_a_finish_and_a_cut_before_it_is_not() -> None:
    assert run(START, end("COMPLETE"))[-1] == Finish("stop", "COMPLETE")
    events = run(START, content("content-delta", 0, text="A"), {"type": "content-end", "index": 0})
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"
