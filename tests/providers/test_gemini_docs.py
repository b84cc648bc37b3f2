"""Gemini: streams written from the ``GenerateContentResponse`` reference, not recordings.

Each case is checked for the exact events in both framings (``alt=sse`` and the
JSON array ``streamGenerateContent`` sends without it), and again fed one byte
at a time, so chunking never changes the outcome.
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
from lluminary.providers.gemini import GeminiDecoder, GeminiJSONDecoder
from tests.support import check_invariants, decode

MODEL = "gemini-2.5-flash"


def sse(*responses: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(r).encode() + b"\r\n\r\n" for r in responses)


def array(*responses: dict[str, Any]) -> bytes:
    return b"[" + b",\r\n".join(json.dumps(r).encode() for r in responses) + b"]"


def both(*responses: dict[str, Any]) -> list[Event]:
    """The events of ``responses``, after checking both framings and every split agree."""
    results = []
    for factory, body in (
        (lambda: GeminiDecoder(model=MODEL, input_estimate=3), sse(*responses)),
        (lambda: GeminiJSONDecoder(model=MODEL, input_estimate=3), array(*responses)),
    ):
        whole = decode(factory, [body])
        check_invariants(whole)
        assert decode(factory, [body[i : i + 1] for i in range(len(body))]) == whole
        results.append(whole)
    assert results[0] == results[1]
    return results[0]


def response(*parts: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    out: dict[str, Any] = {"candidates": [candidate], "modelVersion": MODEL, "responseId": "resp-1"}
    if usage is not None:
        out["usageMetadata"] = usage
    return out


def test_every_part_kind_and_cumulative_usage() -> None:
    # usageMetadata is cumulative: the last one is the answer, never a sum. promptTokenCount
    # includes cachedContentTokenCount; toolUsePromptTokenCount is input on top of it;
    # thoughtsTokenCount is output on top of candidatesTokenCount.
    early = {"promptTokenCount": 120, "cachedContentTokenCount": 100, "totalTokenCount": 120}
    final = {
        "promptTokenCount": 120,
        "cachedContentTokenCount": 100,
        "toolUsePromptTokenCount": 15,
        "candidatesTokenCount": 40,
        "thoughtsTokenCount": 25,
        "totalTokenCount": 200,
    }
    events = both(
        response({"text": "Plan: run code.", "thought": True, "thoughtSignature": "c2lnLTE="}, usage=early),
        response(
            {"executableCode": {"language": "PYTHON", "code": "print(2 + 2)"}},
            {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "4\n"}},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
            {"text": "It is 4."},
            usage=early,
        ),
        response(
            {"functionCall": {"id": "fc-1", "name": "save", "args": {"value": 4}}, "thoughtSignature": "c2lnLTI="},
            {"functionCall": {"name": "notify", "args": {"to": ["a", "b"], "urgent": False}}},
            {"functionCall": {"name": "done"}},
            finish="STOP",
            usage=final,
        ),
    )
    assert events == [
        Start("resp-1", "gemini", MODEL),
        ReasoningDelta("Plan: run code.", "c2lnLTE="),
        TextDelta("It is 4."),
        ReasoningDelta("", "c2lnLTI="),
        ToolCallStart(0, "fc-1", "save"),
        ToolArgsDelta(0, '{"value":4}'),
        ToolCallEnd(0, "fc-1", "save", {"value": 4}),
        ToolCallStart(1, "gemini-call-resp-1-1", "notify"),
        ToolArgsDelta(1, '{"to":["a","b"],"urgent":false}'),
        ToolCallEnd(1, "gemini-call-resp-1-1", "notify", {"to": ["a", "b"], "urgent": False}),
        ToolCallStart(2, "gemini-call-resp-1-2", "done"),
        ToolArgsDelta(2, "{}"),
        ToolCallEnd(2, "gemini-call-resp-1-2", "done", {}),
        Usage(input_tokens=35, output_tokens=65, cache_read_tokens=100, reasoning_tokens=25),
        Finish("tool_calls", "STOP"),
    ]


@pytest.mark.parametrize(
    "raw", ["MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS", "MALFORMED_RESPONSE"]
)
def test_failed_tool_turns_end_in_a_retryable_error_after_usage(raw: str) -> None:
    usage = {"promptTokenCount": 30, "candidatesTokenCount": 0, "totalTokenCount": 30}
    candidate = {"finishReason": raw, "finishMessage": "stopped", "index": 0}
    events = both(response({"text": "Calling tools."}), {"candidates": [candidate], "usageMetadata": usage})
    assert events == [
        Start("resp-1", "gemini", MODEL),
        TextDelta("Calling tools."),
        Usage(input_tokens=30),
        Error("server", f"generation failed ({raw}): stopped", True, "gemini"),
    ]


def test_finish_reason_unspecified_is_no_finish_reason() -> None:
    # "Default value. This value is unused." A stream whose last word is that has not ended.
    events = both(response({"text": "Hi"}), response(finish="FINISH_REASON_UNSPECIFIED"))
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"
    assert TextDelta("Hi") in events


def test_a_stream_without_any_finish_reason_never_finishes() -> None:
    usage = {"promptTokenCount": 4, "candidatesTokenCount": 2, "totalTokenCount": 6}
    events = both(response({"text": "Hel"}, usage=usage), response({"text": "lo"}, usage=usage))
    assert events == [
        Start("resp-1", "gemini", MODEL),
        TextDelta("Hel"),
        TextDelta("lo"),
        Usage(input_tokens=4, output_tokens=2),
        Error("protocol", "the gemini stream ended without a finishReason (cut off?)", False, "gemini"),
    ]


@pytest.mark.parametrize("reason", ["SAFETY", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT", "IMAGE_SAFETY"])
def test_blocked_prompt_without_candidates(reason: str) -> None:
    blocked = {
        "promptFeedback": {"blockReason": reason, "blockReasonMessage": "blocked by policy"},
        "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
        "modelVersion": MODEL,
        "responseId": "resp-9",
    }
    assert both(blocked) == [
        Start("resp-9", "gemini", MODEL),
        Usage(input_tokens=8),
        Error("content_filter", f"prompt blocked ({reason}): blocked by policy", False, "gemini"),
    ]


def test_in_band_error_before_any_response() -> None:
    error = {"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED"}}
    assert both(error) == [Error("rate_limited", "Resource has been exhausted", True, "gemini", 429)]
