"""OpenAI Responses API: the typed-SSE decoder, the request encoder, errors and the wire.

Recordings come from pydantic-ai cassettes (raw SSE) and vercel/ai chunk files
(one data payload per line, re-wrapped as SSE with their ``event:`` names). The
decoder is also driven with constructed streams in the documented shape for what
the recordings lack: refusals, raw reasoning text, incomplete responses, the flat
``error`` event, parallel calls, cached tokens and servers that send no deltas.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lluminary import Engine
from lluminary.errors import MissingKeyError
from lluminary.events import (
    ChatRequest,
    Error,
    Event,
    Finish,
    ImagePart,
    Message,
    ReasoningDelta,
    ReasoningPart,
    RefusalDelta,
    ResponseBuilder,
    ResponseFormat,
    Start,
    TextDelta,
    TextPart,
    ToolArgsDelta,
    ToolCallEnd,
    ToolCallPart,
    ToolCallStart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
    Usage,
    decode_event,
    encode_event,
)
from lluminary.providers import create_provider
from lluminary.providers.openai_responses import OpenAIResponses, OpenAIResponsesDecoder, encode_body
from tests.support import FIXTURES, ReplayServer, Reply, check_invariants, cut_points, decode, fixture_bytes, split

PROVIDER = "openai_responses"
NAME = "openai-responses"
DIR = FIXTURES / PROVIDER


def new_decoder() -> OpenAIResponsesDecoder:
    return OpenAIResponsesDecoder(model="fallback-model", input_estimate=9)


def run(body: bytes) -> list[Event]:
    events = decode(new_decoder, [body])
    check_invariants(events)
    return events


def sse(*payloads: dict[str, Any]) -> bytes:
    return b"".join(f"event: {p['type']}\ndata: {json.dumps(p)}\n\n".encode() for p in payloads)


def payloads(path_name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DIR / path_name).read_text().splitlines() if line.strip()]


def per_response(path_name: str) -> list[list[dict[str, Any]]]:
    """The multi-step recording concatenates several streams: one list per response.created … completed."""
    groups: list[list[dict[str, Any]]] = []
    for payload in payloads(path_name):
        if payload["type"] == "response.created":
            groups.append([])
        groups[-1].append(payload)
    return groups


def last_error(events: list[Event]) -> Error:
    last = events[-1]
    assert isinstance(last, Error), last
    return last


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def reasoning_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, ReasoningDelta))


RECORDED_SSE = [
    "text_stream.sse",
    "text_stream_background_mode.sse",
    "function_call_stream.sse",
    "function_call_stream_usage.sse",
]
MULTI = "function_call_reasoning_multi_step.chunks.jsonl"
QUOTA = "error_mid_stream_insufficient_quota.chunks.jsonl"


def all_streams() -> list[tuple[str, bytes]]:
    out = [(name, fixture_bytes(PROVIDER, name)) for name in RECORDED_SSE]
    out += [(f"{MULTI}#{i}", sse(*group)) for i, group in enumerate(per_response(MULTI))]
    out.append((QUOTA, sse(*payloads(QUOTA))))
    return out


STREAMS = all_streams()


# -- 1. the recordings ---------------------------------------------------------------------


def test_text_stream() -> None:
    resp_id = "resp_01000000000000000000000000000000000000000000000000"
    assert run(fixture_bytes(PROVIDER, "text_stream.sse")) == [
        Start(id=resp_id, provider=NAME, model="gpt-4.1-2025-04-14"),
        TextDelta("stream", 0),
        TextDelta("ed", 0),
        Usage(input_tokens=21, output_tokens=3),
        Finish("stop", "completed"),
    ]


def test_background_mode_starts_on_response_created_while_queued() -> None:
    events = run(fixture_bytes(PROVIDER, "text_stream_background_mode.sse"))
    assert events[0] == Start(
        id="resp_0da443d9ee8333600069950a0635d88196b2d9243b08e8cc01", provider=NAME, model="gpt-4o-2024-08-06"
    )
    assert [type(e) for e in events].count(Start) == 1
    assert text_of(events) == "2 + 2 equals 4."
    assert events[-2:] == [Usage(input_tokens=15, output_tokens=9), Finish("stop", "completed")]


def test_function_call_stream() -> None:
    call_id = "call_kL0PCQV7M2WMoVX8V8OtYSAL"
    events = run(fixture_bytes(PROVIDER, "function_call_stream.sse"))
    assert events[0] == Start(
        id="resp_67e554a155508191900ee113293c4c830794405d35281ae2", provider=NAME, model="gpt-4o-2024-08-06"
    )
    assert events[1] == ToolCallStart(0, call_id, "get_capital")
    assert [e.delta for e in events if isinstance(e, ToolArgsDelta)] == ['{"', "country", '":"', "France", '"}']
    assert events[-3:] == [
        ToolCallEnd(0, call_id, "get_capital", {"country": "France"}),
        Usage(input_tokens=255, output_tokens=16),
        Finish("tool_calls", "completed"),
    ]


def test_reasoning_item_signature_and_reasoning_token_usage() -> None:
    events = run(fixture_bytes(PROVIDER, "function_call_stream_usage.sse"))
    done_item = next(
        json.loads(line[6:])["item"]
        for line in fixture_bytes(PROVIDER, "function_call_stream_usage.sse").decode().splitlines()
        if line.startswith("data: ") and '"response.output_item.done"' in line and '"reasoning"' in line
    )
    # The signature is the *final* encrypted content, from output_item.done.
    assert events[1] == ReasoningDelta("", done_item["encrypted_content"])
    ends = [e for e in events if isinstance(e, ToolCallEnd)]
    assert ends == [ToolCallEnd(0, "call_CWXgs68YprAjp6t0371hiPOI", "final_result", {"result": 6666})]
    # output_tokens includes the reasoning tokens; reasoning_tokens is the breakdown.
    assert events[-2:] == [
        Usage(input_tokens=53, output_tokens=469, reasoning_tokens=448),
        Finish("tool_calls", "completed"),
    ]


def test_multi_step_recording_split_into_its_four_responses() -> None:
    # The vercel/ai recording concatenates four consecutive responses of one agent
    # loop; each response.created … response.completed is its own HTTP stream.
    groups = per_response(MULTI)
    assert len(groups) == 4
    results = [run(sse(*group)) for group in groups]
    model = "gpt-5.1-codex-max"
    assert [e.id for e in (r[0] for r in results) if isinstance(e, Start)] == [g[0]["response"]["id"] for g in groups]
    assert all(isinstance(r[0], Start) and r[0].model == model for r in results)

    first = results[0]
    summary = next(p["text"] for p in groups[0] if p["type"] == "response.reasoning_summary_text.done")
    assert reasoning_of(first) == summary
    assert summary.startswith("**Calculating step-by-step using calculator**")
    encrypted = next(
        p["item"]["encrypted_content"]
        for p in groups[0]
        if p["type"] == "response.output_item.done" and p["item"]["type"] == "reasoning"
    )
    assert [e.signature for e in first if isinstance(e, ReasoningDelta) and e.signature] == [encrypted]

    calls = [[e for e in r if isinstance(e, ToolCallEnd)] for r in results]
    assert calls == [
        [ToolCallEnd(0, "call_AB6AaRZ1FYZB2RwS6A5vbdqn", "calculator", {"a": 12, "b": 7, "op": "add"})],
        [ToolCallEnd(0, "call_Q6pW65MUgW9vF59BmItYGos3", "calculator", {"a": 19, "b": 3, "op": "multiply"})],
        [ToolCallEnd(0, "call_Zl5vIMnD7dVAjgU6FkhmiCZh", "calculator", {"a": 57, "b": 10, "op": "multiply"})],
        [],
    ]
    assert text_of(results[3]) == "The final result is **570**."
    assert [r[-2:] for r in results] == [
        [Usage(input_tokens=134, output_tokens=28), Finish("tool_calls", "completed")],
        [Usage(input_tokens=221, output_tokens=26), Finish("tool_calls", "completed")],
        [Usage(input_tokens=260, output_tokens=26), Finish("tool_calls", "completed")],
        [Usage(input_tokens=299, output_tokens=12), Finish("stop", "completed")],
    ]


def test_insufficient_quota_error_then_failed_is_one_error() -> None:
    events = run(sse(*payloads(QUOTA)))
    assert events[0] == Start(
        id="resp_05500b38c2cd9bfc00691c7c9d222481a3b595421266dab424", provider=NAME, model="gpt-5-nano-2025-08-07"
    )
    assert [type(e) for e in events] == [Start, Usage, Error]
    err = last_error(events)
    assert (err.code, err.retryable, err.status) == ("rate_limited", False, None)
    assert err.message.startswith("You exceeded your current quota")


# -- constructed streams in the documented shape --------------------------------------------


def created(resp_id: str = "resp_1", model: str = "gpt-5") -> dict[str, Any]:
    return {"type": "response.created", "response": {"id": resp_id, "model": model, "status": "in_progress"}}


def completed(input_tokens: int = 10, output_tokens: int = 5, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    usage = {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }
    return {"type": "response.completed", "response": {"id": "resp_1", "status": "completed", "usage": usage}}


def message_added(index: int = 0) -> dict[str, Any]:
    item = {"id": f"msg_{index}", "type": "message", "role": "assistant", "content": []}
    return {"type": "response.output_item.added", "output_index": index, "item": item}


def text_delta(delta: str, index: int = 0) -> dict[str, Any]:
    return {
        "type": "response.output_text.delta",
        "item_id": f"msg_{index}",
        "output_index": index,
        "content_index": 0,
        "delta": delta,
    }


def call_added(index: int, name: str, arguments: str = "") -> dict[str, Any]:
    item = {
        "id": f"fc_{index}",
        "type": "function_call",
        "call_id": f"call_{name}",
        "name": name,
        "arguments": arguments,
    }
    return {"type": "response.output_item.added", "output_index": index, "item": item}


def args_delta(index: int, delta: str) -> dict[str, Any]:
    return {
        "type": "response.function_call_arguments.delta",
        "item_id": f"fc_{index}",
        "output_index": index,
        "delta": delta,
    }


def call_done(index: int, name: str, arguments: str) -> dict[str, Any]:
    item = {
        "id": f"fc_{index}",
        "type": "function_call",
        "call_id": f"call_{name}",
        "name": name,
        "arguments": arguments,
    }
    return {"type": "response.output_item.done", "output_index": index, "item": item}


def test_cached_tokens_are_not_input_tokens() -> None:
    events = run(sse(created(), message_added(), text_delta("hi"), completed(1000, 50, cached=800, reasoning=20)))
    assert events[-2] == Usage(input_tokens=200, output_tokens=50, cache_read_tokens=800, reasoning_tokens=20)


def test_parallel_calls_interleaved_get_our_ordinals() -> None:
    body = sse(
        created(),
        message_added(0),
        text_delta("Two lookups."),
        call_added(1, "weather"),
        call_added(2, "time"),
        args_delta(2, '{"tz":'),
        args_delta(1, '{"city":"Oslo"}'),
        args_delta(2, '"UTC"}'),
        {"type": "response.function_call_arguments.done", "output_index": 2, "arguments": '{"tz":"UTC"}'},
        call_done(2, "time", '{"tz":"UTC"}'),
        call_done(1, "weather", '{"city":"Oslo"}'),
        completed(),
    )
    events = run(body)
    assert [e for e in events if isinstance(e, (ToolCallStart, ToolCallEnd))] == [
        ToolCallStart(0, "call_weather", "weather"),
        ToolCallStart(1, "call_time", "time"),
        ToolCallEnd(1, "call_time", "time", {"tz": "UTC"}),
        ToolCallEnd(0, "call_weather", "weather", {"city": "Oslo"}),
    ]
    assert events[1] == TextDelta("Two lookups.", 0)
    assert events[-1] == Finish("tool_calls", "completed")


def test_arguments_sent_only_when_done_still_arrive_once() -> None:
    body = sse(
        created(),
        call_added(0, "f"),
        {"type": "response.function_call_arguments.done", "item_id": "fc_0", "arguments": '{"x":1}'},
        call_done(0, "f", '{"x":1}'),
        completed(),
    )
    events = run(body)
    assert [e for e in events if isinstance(e, ToolArgsDelta)] == [ToolArgsDelta(0, '{"x":1}')]
    assert [e for e in events if isinstance(e, ToolCallEnd)] == [ToolCallEnd(0, "call_f", "f", {"x": 1})]


def test_a_call_seen_only_when_done_is_still_one_call() -> None:
    events = run(sse(created(), call_done(0, "f", '{"y":2}'), completed()))
    assert [type(e) for e in events[1:4]] == [ToolCallStart, ToolArgsDelta, ToolCallEnd]
    assert events[3] == ToolCallEnd(0, "call_f", "f", {"y": 2})


def test_refusal_and_raw_reasoning_text() -> None:
    body = sse(
        created(),
        {"type": "response.output_item.added", "output_index": 0, "item": {"id": "rs_0", "type": "reasoning"}},
        {"type": "response.reasoning_text.delta", "item_id": "rs_0", "output_index": 0, "delta": "raw "},
        {"type": "response.reasoning_summary_text.delta", "item_id": "rs_0", "output_index": 0, "delta": "sum"},
        message_added(1),
        {"type": "response.refusal.delta", "item_id": "msg_1", "output_index": 1, "content_index": 0, "delta": "No"},
        {"type": "response.refusal.delta", "item_id": "msg_1", "output_index": 1, "content_index": 0, "delta": "."},
        completed(),
    )
    events = run(body)
    assert events[1:5] == [ReasoningDelta("raw "), ReasoningDelta("sum"), RefusalDelta("No"), RefusalDelta(".")]


def test_items_without_deltas_give_their_text_once() -> None:
    message = {
        "type": "message",
        "id": "msg_0",
        "content": [{"type": "output_text", "text": "whole"}, {"type": "refusal", "refusal": "nope"}],
    }
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "why"}]}
    body = sse(
        created(),
        {"type": "response.output_item.done", "output_index": 0, "item": message},
        {"type": "response.output_item.done", "output_index": 1, "item": reasoning},
        completed(),
    )
    assert run(body)[1:4] == [TextDelta("whole", 0), RefusalDelta("nope"), ReasoningDelta("why")]


def test_events_keyed_only_by_item_id() -> None:
    # output_index is documented on every event; deltas that carry only the item
    # id must still reach their item: one call, and no text twice.
    def strip(payload: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in payload.items() if k != "output_index"}

    message_done = {"type": "message", "id": "msg_0", "content": [{"type": "output_text", "text": "hi"}]}
    body = sse(
        created(),
        message_added(0),
        *map(strip, [text_delta("hi", 0), call_added(1, "f"), args_delta(1, '{"k":1}')]),
        {"type": "response.output_item.done", "output_index": 0, "item": message_done},
        strip(call_done(1, "f", '{"k":1}')),
        completed(),
    )
    events = run(body)
    assert text_of(events) == "hi"
    assert [e for e in events if isinstance(e, ToolCallEnd)] == [ToolCallEnd(0, "call_f", "f", {"k": 1})]


def test_text_index_is_the_output_item() -> None:
    events = run(sse(created(), message_added(1), text_delta("a", 1), completed()))
    assert events[1] == TextDelta("a", 1)


@pytest.mark.parametrize(
    ("reason", "finish"),
    [("max_output_tokens", "length"), ("content_filter", "content_filter"), ("something_new", "other")],
)
def test_incomplete_is_a_normal_end_with_usage(reason: str, finish: str) -> None:
    incomplete = {
        "type": "response.incomplete",
        "response": {
            "id": "resp_1",
            "status": "incomplete",
            "incomplete_details": {"reason": reason},
            "usage": {"input_tokens": 7, "output_tokens": 16},
        },
    }
    events = run(sse(created(), message_added(), text_delta("partial"), incomplete))
    assert events[-2:] == [Usage(input_tokens=7, output_tokens=16), Finish(finish, reason)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("payload", "code", "retryable"),
    [
        ({"type": "error", "code": "server_error", "message": "boom", "param": None}, "server", True),
        ({"type": "error", "code": "rate_limit_exceeded", "message": "slow down", "param": None}, "rate_limited", True),
        ({"type": "error", "code": "insufficient_quota", "message": "no credit", "param": None}, "rate_limited", False),
        (
            {"type": "error", "code": "context_length_exceeded", "message": "long", "param": None},
            "context_length",
            False,
        ),
        ({"type": "error", "code": "invalid_image_url", "message": "bad", "param": "input"}, "invalid_request", False),
        ({"type": "error", "code": None, "message": "mystery", "param": None}, "server", True),
    ],
)
def test_in_band_error_event(payload: dict[str, Any], code: str, retryable: bool) -> None:
    events = run(sse(created(), message_added(), text_delta("so far"), payload))
    err = last_error(events)
    assert (err.code, err.retryable, err.status, err.provider) == (code, retryable, None, NAME)
    assert err.message == payload["message"]
    assert isinstance(events[-2], Usage)  # priced even though it failed


def test_response_failed_alone_is_an_error_with_its_usage() -> None:
    failed = {
        "type": "response.failed",
        "response": {
            "id": "resp_1",
            "status": "failed",
            "error": {"code": "server_error", "message": "The model failed."},
            "usage": {"input_tokens": 3, "output_tokens": 1},
        },
    }
    events = run(sse(created(), failed))
    assert events[-2] == Usage(input_tokens=3, output_tokens=1)
    err = last_error(events)
    assert (err.code, err.message, err.retryable) == ("server", "The model failed.", True)


def test_unknown_events_and_items_are_skipped() -> None:
    plain = sse(created(), message_added(), text_delta("ok"), completed())
    noisy = sse(
        created(),
        {"type": "response.web_search_call.searching", "output_index": 0, "item_id": "ws_0"},
        {"type": "response.output_item.added", "output_index": 0, "item": {"type": "web_search_call", "id": "ws_0"}},
        {"type": "response.future_thing.delta", "output_index": 0, "delta": {"an": "object"}, "item": [1, 2]},
        {"type": "response.output_text.annotation.added", "output_index": 0, "annotation": {"type": "url_citation"}},
        # A new item type whose fields clash with the ones we read, and an empty item.
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {"type": "future_call", "content": "text", "arguments": {"x": 1}, "summary": 3},
        },
        {"type": "response.output_item.done", "output_index": 0, "item": None},
        message_added(),
        text_delta("ok"),
        completed(),
    )
    assert run(noisy) == run(plain)


def run_resplit(body: bytes) -> list[Event]:
    """Decode ``body`` whole, then byte by byte: the events must not change."""
    events = run(body)
    assert decode(new_decoder, [body[i : i + 1] for i in range(len(body))]) == events
    return events


CUSTOM_ITEM = {"id": "ctc_1", "type": "custom_tool_call", "call_id": "call_x", "name": "run_code"}
CODE = 'print("hi")\n\tdone'


def custom_added(index: int = 0) -> dict[str, Any]:
    return {"type": "response.output_item.added", "output_index": index, "item": {**CUSTOM_ITEM, "input": ""}}


def custom_done(index: int = 0, text: str = CODE) -> dict[str, Any]:
    return {"type": "response.output_item.done", "output_index": index, "item": {**CUSTOM_ITEM, "input": text}}


def input_delta(delta: str, index: int = 0) -> dict[str, Any]:
    return {"type": "response.custom_tool_call_input.delta", "output_index": index, "item_id": "ctc_1", "delta": delta}


def input_done(text: str = CODE, index: int = 0) -> dict[str, Any]:
    return {"type": "response.custom_tool_call_input.done", "output_index": index, "item_id": "ctc_1", "input": text}


def test_custom_tool_call_streams_its_free_text_input_as_an_input_argument() -> None:
    # Streaming events reference: response.custom_tool_call_input.delta / .done; the
    # custom_tool_call item (call_id, name, input) is run by the client, like a function call.
    body = sse(
        created(),
        custom_added(),
        input_delta('print("hi")'),
        input_delta("\n\tdone"),
        input_done(),
        custom_done(),
        completed(),
    )
    assert run_resplit(body) == [
        Start("resp_1", NAME, "gpt-5"),
        ToolCallStart(0, "call_x", "run_code", "custom"),
        ToolArgsDelta(0, '{"input":"print(\\"hi\\")'),
        ToolArgsDelta(0, "\\n\\tdone"),
        ToolArgsDelta(0, '"}'),
        ToolCallEnd(0, "call_x", "run_code", {"input": CODE}, "custom"),
        Usage(input_tokens=10, output_tokens=5),
        Finish("tool_calls", "completed"),
    ]


def test_custom_tool_call_input_only_when_done() -> None:
    events = run_resplit(sse(created(), custom_added(), custom_done(), completed()))
    assert events[1:4] == [
        ToolCallStart(0, "call_x", "run_code", "custom"),
        ToolArgsDelta(0, msgspec.json.encode({"input": CODE}).decode()),
        ToolCallEnd(0, "call_x", "run_code", {"input": CODE}, "custom"),
    ]
    assert events[-1] == Finish("tool_calls", "completed")


def test_custom_tool_call_with_empty_input_and_no_done_events() -> None:
    # ``response.completed`` without the item's ``.done``: the call is still whole.
    events = run_resplit(sse(created(), custom_added(), completed()))
    assert ToolCallEnd(0, "call_x", "run_code", {"input": ""}, "custom") in events
    assert events[-1] == Finish("tool_calls", "completed")


def test_custom_tool_call_cut_by_max_output_tokens_is_never_salvaged() -> None:
    incomplete = {
        "type": "response.incomplete",
        "response": {"id": "resp_1", "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}},
    }
    events = run_resplit(sse(created(), custom_added(), input_delta("print("), incomplete))
    assert last_error(events).code == "protocol"
    assert not any(isinstance(e, ToolCallEnd) for e in events)


def test_reasoning_text_sent_only_in_the_finished_item() -> None:
    item = {
        "id": "rs_0",
        "type": "reasoning",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": "Think first."}],
    }
    body = sse(
        created(),
        {"type": "response.output_item.added", "output_index": 0, "item": {**item, "content": []}},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        message_added(1),
        text_delta("Answer", 1),
        completed(),
    )
    assert run_resplit(body)[1:3] == [ReasoningDelta("Think first."), TextDelta("Answer", 1)]


def test_built_in_tool_items_are_not_client_tool_calls() -> None:
    # Hosted tools run on OpenAI's side: their items and progress events carry nothing to run.
    def item(index: int, **fields: Any) -> list[dict[str, Any]]:
        return [
            {"type": "response.output_item.added", "output_index": index, "item": {**fields, "status": "in_progress"}},
            {"type": "response.output_item.done", "output_index": index, "item": {**fields, "status": "completed"}},
        ]

    body = sse(
        created(),
        *item(0, type="web_search_call", id="ws_0", action={"type": "search", "query": "q"}),
        {"type": "response.file_search_call.searching", "output_index": 1, "item_id": "fs_1"},
        *item(1, type="file_search_call", id="fs_1", queries=["q"], results=None),
        {"type": "response.code_interpreter_call_code.delta", "output_index": 2, "item_id": "ci_2", "delta": "1+1"},
        {"type": "response.code_interpreter_call_code.done", "output_index": 2, "item_id": "ci_2", "code": "1+1"},
        *item(2, type="code_interpreter_call", id="ci_2", code="1+1", container_id="c", outputs=None),
        {"type": "response.image_generation_call.partial_image", "output_index": 3, "item_id": "ig_3",
         "partial_image_index": 0, "partial_image_b64": "AAAA"},
        *item(3, type="image_generation_call", id="ig_3", result="AAAA"),
        {"type": "response.mcp_call_arguments.delta", "output_index": 4, "item_id": "mcp_4", "delta": '{"n":'},
        {"type": "response.mcp_call_arguments.done", "output_index": 4, "item_id": "mcp_4", "arguments": '{"n":1}'},
        *item(4, type="mcp_call", id="mcp_4", name="roll", server_label="dice", arguments='{"n":1}', output="4"),
        message_added(5),
        text_delta("Done.", 5),
        completed(),
    )  # fmt: skip
    assert run_resplit(body) == [
        Start("resp_1", NAME, "gpt-5"),
        TextDelta("Done.", 5),
        Usage(input_tokens=10, output_tokens=5),
        Finish("stop", "completed"),
    ]


# -- 2. any chunking gives the same events ----------------------------------------------------


@pytest.mark.parametrize(("name", "body"), STREAMS, ids=[name for name, _ in STREAMS])
@given(data=st.data())
def test_resplitting_changes_nothing(name: str, body: bytes, data: st.DataObject) -> None:
    cuts = data.draw(cut_points(body))
    assert decode(new_decoder, split(body, cuts)) == decode(new_decoder, [body])


def test_crlf_framing_and_byte_at_a_time_change_nothing() -> None:
    body = sse(created(), message_added(), text_delta("naïve ✓"), completed())
    expected = decode(new_decoder, [body])
    assert decode(new_decoder, [body[i : i + 1] for i in range(len(body))]) == expected
    crlf = body.replace(b"\n", b"\r\n")
    assert decode(new_decoder, [crlf[i : i + 3] for i in range(0, len(crlf), 3)]) == expected


# -- 3. truncation, garbage and bad JSON -----------------------------------------------------


def _end_marker_end(body: bytes) -> int | None:
    """Where the payload of the final response.completed / .incomplete ends, if any."""
    for marker in (b'"type": "response.completed"', b'"type":"response.completed"'):
        at = body.rfind(marker)
        if at >= 0:
            return body.index(b"\n", at)
    return None


@pytest.mark.parametrize(("name", "body"), STREAMS, ids=[name for name, _ in STREAMS])
def test_every_truncation_ends_in_one_terminal_event(name: str, body: bytes) -> None:
    end = _end_marker_end(body)
    # Every offset near the end marker, and a dense sample of the rest.
    stride = max(1, len(body) // 300)
    offsets = set(range(0, len(body) + 1, stride)) | set(range(max(0, (end or len(body)) - 400), len(body) + 1))
    for n in sorted(offsets):
        events = decode(new_decoder, [body[:n]])
        check_invariants(events)
        if end is not None and n >= end:
            assert isinstance(events[-1], Finish), n
        else:
            assert isinstance(events[-1], Error), n


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x00\xff\xfe garbage without any framing",
        b"<html><body>502 Bad Gateway</body></html>\n\n",
        b"data: {not json}\n\n",
        b'data: {"type": "response.output_text.delta", "delta": 42}\n\n',
        b'data: {"type": "response.completed", "response": "done"}\n\n',
        sse(created(), message_added()) + b"data: [1, 2\n\n" + sse(completed()),
        sse(created(), message_added(), text_delta("hi")) + b"data: [DONE]\n\n",
    ],
)
def test_garbage_and_bad_json_never_finish(body: bytes) -> None:
    events = run(body)
    assert last_error(events).code == "protocol"


@pytest.mark.parametrize("arguments", ['{"a": 1', "[1]", "null", "not json"])
def test_bad_tool_arguments_are_protocol_errors(arguments: str) -> None:
    streamed = sse(created(), call_added(0, "f"), args_delta(0, arguments), call_done(0, "f", arguments), completed())
    whole = sse(created(), call_done(0, "f", arguments), completed())
    for body in (streamed, whole):
        events = run(body)
        assert last_error(events).code == "protocol"
        assert not any(isinstance(e, ToolCallEnd) for e in events)


def test_a_call_left_open_at_completed_is_still_validated() -> None:
    events = run(sse(created(), call_added(0, "f"), args_delta(0, '{"a": 1}'), completed()))
    assert [e for e in events if isinstance(e, ToolCallEnd)] == [ToolCallEnd(0, "call_f", "f", {"a": 1})]
    assert events[-1] == Finish("tool_calls", "completed")


# -- 4. HTTP errors ----------------------------------------------------------------------------


def http_error(status: int, body: bytes, headers: dict[str, str] | None = None) -> Error:
    return OpenAIResponses(api_key="sk-test-secret-key").map_error(status, headers or {}, body)


def test_recorded_400() -> None:
    recorded = json.loads(fixture_bytes(PROVIDER, "error_400_invalid_value.json"))
    err = http_error(recorded["http_status"], json.dumps(recorded["body"]).encode())
    assert (err.code, err.status, err.retryable, err.retry_after) == ("invalid_request", 400, False, None)
    assert err.message.startswith("Invalid 'temperature'")


def _body(message: str, type_: str, code: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "code": code, "param": None}}).encode()


@pytest.mark.parametrize(
    ("status", "kind", "vendor_code", "headers", "code", "retryable", "retry_after"),
    [
        (429, "requests", "rate_limit_exceeded", {"retry-after": "20"}, "rate_limited", True, 20.0),
        (429, "insufficient_quota", "insufficient_quota", {}, "rate_limited", False, None),
        (401, "invalid_request_error", "invalid_api_key", {}, "auth", False, None),
        (404, "invalid_request_error", "model_not_found", {}, "not_found", False, None),
        (400, "invalid_request_error", "context_length_exceeded", {}, "context_length", False, None),
        (500, "server_error", None, {}, "server", True, None),
        (503, "service_unavailable", None, {"retry-after-ms": "1500"}, "overloaded", True, 1.5),
    ],
)
def test_http_error_mapping(
    status: int,
    kind: str,
    vendor_code: str | None,
    headers: dict[str, str],
    code: str,
    retryable: bool,
    retry_after: float | None,
) -> None:
    # OpenAI echoes (part of) a bad key in 401 messages; it must never come back out.
    err = http_error(status, _body("Failed, key sk-test-secret-key", kind, vendor_code), headers)
    assert (err.code, err.status, err.retryable, err.retry_after, err.provider) == (
        code,
        status,
        retryable,
        retry_after,
        NAME,
    )
    assert "sk-test-secret-key" not in err.message


def test_http_error_with_a_non_json_body() -> None:
    err = http_error(502, b"<html>Bad Gateway</html>")
    assert (err.code, err.status, err.retryable) == ("server", 502, True)


# -- 5. the request encoder ----------------------------------------------------------------------

CALC = ToolSpec(
    "calculator",
    "Basic arithmetic",
    {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]},
)


def test_encoder_full_shape() -> None:
    request = ChatRequest(
        model="openai-responses:gpt-5",
        system="Be exact.",
        messages=[
            Message.system("Extra rule."),
            Message.user(
                [
                    TextPart("What is in these?"),
                    ImagePart(url="https://example.com/a.png"),
                    ImagePart(data="aGk=", media_type="image/jpeg"),
                ]
            ),
            Message.assistant(
                [
                    ReasoningPart("thought", signature="gAAAA-encrypted"),
                    TextPart("Computing."),
                    ToolCallPart("call_1", "calculator", {"a": 1, "b": 2}),
                ]
            ),
            Message.tool("call_1", "3"),
            Message.assistant("It is 3."),
            Message.user("Thanks"),
        ],
        tools=[CALC],
        tool_choice=ToolChoice("calculator"),
        temperature=0.3,
        top_p=0.8,
        max_tokens=256,
        stop=["END"],
        seed=7,
        response_format=ResponseFormat(schema={"type": "object", "properties": {}}, name="answer"),
    )
    assert encode_body(request, "gpt-5") == {
        "model": "gpt-5",
        "input": [
            {"role": "system", "content": [{"type": "input_text", "text": "Extra rule."}]},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is in these?"},
                    {"type": "input_image", "image_url": "https://example.com/a.png"},
                    {"type": "input_image", "image_url": "data:image/jpeg;base64,aGk="},
                ],
            },
            {
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": "thought"}],
                "encrypted_content": "gAAAA-encrypted",
            },
            {"role": "assistant", "content": [{"type": "output_text", "text": "Computing."}]},
            {"type": "function_call", "call_id": "call_1", "name": "calculator", "arguments": '{"a":1,"b":2}'},
            {"type": "function_call_output", "call_id": "call_1", "output": "3"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "It is 3."}]},
            {"role": "user", "content": [{"type": "input_text", "text": "Thanks"}]},
        ],
        "stream": True,
        "store": False,
        "instructions": "Be exact.",
        "tools": [
            {
                "type": "function",
                "name": "calculator",
                "description": "Basic arithmetic",
                "parameters": CALC.parameters,
                "strict": False,
            }
        ],
        "tool_choice": {"type": "function", "name": "calculator"},
        "temperature": 0.3,
        "top_p": 0.8,
        "max_output_tokens": 256,
        # No stop, no seed: the Responses API has neither.
        "text": {
            "format": {
                "type": "json_schema",
                "name": "answer",
                "schema": {"type": "object", "properties": {}},
                "strict": True,
            }
        },
    }


@pytest.mark.parametrize(("choice", "wire"), [("auto", "auto"), ("none", "none"), ("required", "required")])
def test_tool_choice_strings(choice: Any, wire: str) -> None:
    request = ChatRequest(model="m", messages=[Message.user("hi")], tools=[CALC], tool_choice=choice)
    assert encode_body(request, "m")["tool_choice"] == wire


def test_minimal_body_json_mode_and_extra() -> None:
    plain = ChatRequest(model="m", messages=[Message.user("hi")])
    assert encode_body(plain, "m") == {
        "model": "m",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "stream": True,
        "store": False,
    }
    json_mode = msgspec.structs.replace(
        plain,
        response_format=ResponseFormat("json_object"),
        extra={"store": True, "text": {"verbosity": "low"}, "reasoning": {"effort": "low", "summary": "auto"}},
    )
    body = encode_body(json_mode, "m")
    assert body["store"] is True
    assert body["text"] == {"format": {"type": "json_object"}, "verbosity": "low"}
    assert body["reasoning"] == {"effort": "low", "summary": "auto"}


def test_reasoning_without_a_signature_is_not_sent() -> None:
    request = ChatRequest(model="m", messages=[Message.assistant([ReasoningPart("private"), TextPart("hi")])])
    assert encode_body(request, "m")["input"] == [
        {"role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}
    ]


def test_tool_loop_second_request_has_the_documented_shape() -> None:
    first = ChatRequest(model="openai-responses:gpt-4o", messages=[Message.user("Capital of France?")], tools=[CALC])
    builder = ResponseBuilder()
    for event in run(fixture_bytes(PROVIDER, "function_call_stream.sse")):
        builder.add(event)
    response = builder.build()
    assert response.finish_reason == "tool_calls"
    call = response.tool_calls[0]
    second = msgspec.structs.replace(
        first, messages=[*first.messages, response.message(), Message.tool(call.id, "Paris")]
    )
    assert encode_body(second, "gpt-4o")["input"][1:] == [
        {
            "type": "function_call",
            "call_id": "call_kL0PCQV7M2WMoVX8V8OtYSAL",
            "name": "get_capital",
            "arguments": '{"country":"France"}',
        },
        {"type": "function_call_output", "call_id": "call_kL0PCQV7M2WMoVX8V8OtYSAL", "output": "Paris"},
    ]


def test_reasoning_loop_sends_the_encrypted_content_back() -> None:
    group = per_response(MULTI)[0]
    builder = ResponseBuilder()
    for event in run(sse(*group)):
        builder.add(event)
    message = builder.build().message()
    items = encode_body(ChatRequest(model="m", messages=[Message.user("go"), message]), "m")["input"]
    encrypted = next(
        p["item"]["encrypted_content"]
        for p in group
        if p["type"] == "response.output_item.done" and p["item"]["type"] == "reasoning"
    )
    assert items[1]["type"] == "reasoning"
    assert items[1]["encrypted_content"] == encrypted
    assert items[1]["summary"][0]["text"].startswith("**Calculating")
    assert items[2]["type"] == "function_call"
    assert items[2]["call_id"] == "call_AB6AaRZ1FYZB2RwS6A5vbdqn"


# -- the provider ------------------------------------------------------------------------------


def test_provider_request_and_key_handling() -> None:
    provider = create_provider(NAME, env={"OPENAI_API_KEY": "sk-from-env-123456"})
    assert isinstance(provider, OpenAIResponses)
    http = provider.build_request(ChatRequest(model="m", messages=[Message.user("hi")]), "gpt-5")
    assert http.url == "https://api.openai.com/v1/responses"
    assert http.headers["authorization"] == "Bearer sk-from-env-123456"
    assert "sk-from-env-123456" not in repr(provider) + repr(http) + http.url
    with pytest.raises(MissingKeyError):
        create_provider(NAME, env={})
    compatible = create_provider(NAME, base_url="http://localhost:8000/v1", env={})
    assert isinstance(compatible, OpenAIResponses)
    http = compatible.build_request(ChatRequest(model="m", messages=[]), "m")
    assert http.url == "http://localhost:8000/v1/responses"
    assert "authorization" not in http.headers


# -- 6. end to end over a real socket ------------------------------------------------------------


@asynccontextmanager
async def engine_for(server: ReplayServer) -> AsyncIterator[Engine]:
    provider = create_provider(NAME, api_key="test-key", base_url=server.url)
    async with Engine(providers={NAME: provider}) as engine:
        yield engine


def request_for() -> ChatRequest:
    return ChatRequest(
        model=f"{NAME}:gpt-4o", messages=[Message.user("Capital of France?")], tools=[CALC], max_tokens=50
    )


@pytest.mark.parametrize("name", ["text_stream.sse", "function_call_stream.sse"])
async def test_end_to_end_matches_the_decoder(name: str) -> None:
    body = fixture_bytes(PROVIDER, name)
    async with ReplayServer([Reply(body, chunk_size=13)]) as server, engine_for(server) as engine:
        events = [e async for e in engine.stream(request_for())]
    estimate = OpenAIResponses().input_estimate(request_for())
    assert events == decode(lambda: OpenAIResponsesDecoder(model="gpt-4o", input_estimate=estimate), [body])
    check_invariants(events)
    seen = server.requests[0]
    assert (seen.method, seen.path, seen.query) == ("POST", "/responses", "")
    assert seen.headers["Authorization"] == "Bearer test-key"
    sent = seen.json()
    assert sent["model"] == "gpt-4o"
    assert sent["stream"] is True
    assert sent["store"] is False
    assert sent["max_output_tokens"] == 50
    assert sent["input"] == [{"role": "user", "content": [{"type": "input_text", "text": "Capital of France?"}]}]
    assert all("test-key" not in msgspec.json.encode(e).decode() for e in events)


async def test_end_to_end_in_band_quota_error() -> None:
    body = sse(*payloads(QUOTA))
    async with ReplayServer([Reply(body)]) as server, engine_for(server) as engine:
        events = [e async for e in engine.stream(request_for())]
    err = last_error(events)
    assert (err.code, err.retryable, err.status) == ("rate_limited", False, None)


async def test_end_to_end_http_429_carries_retry_after() -> None:
    reply = Reply(
        _body("Rate limit reached", "requests", "rate_limit_exceeded"),
        status=429,
        headers={"content-type": "application/json", "retry-after": "3"},
    )
    async with ReplayServer([reply]) as server, engine_for(server) as engine:
        events = [e async for e in engine.stream(request_for())]
    assert len(events) == 1
    err = last_error(events)
    assert (err.code, err.status, err.retry_after, err.retryable) == ("rate_limited", 429, 3.0, True)


async def test_end_to_end_cut_before_completed_is_an_error() -> None:
    body = fixture_bytes(PROVIDER, "text_stream.sse")
    cut = body.rfind(b"event: response.completed")
    async with ReplayServer([Reply(body, cut_after=cut)]) as server, engine_for(server) as engine:
        events = [e async for e in engine.stream(request_for())]
    check_invariants(events)
    assert text_of(events) == "streamed"
    assert last_error(events).code in ("connection", "protocol")


def test_a_custom_tool_call_and_its_result_go_back_as_custom_items() -> None:
    # Decoded from the stream, assembled into the assistant turn, sent with the result:
    # the API pairs a custom_tool_call with a custom_tool_call_output (a function_call
    # carrying {"input": …} would be a call of a different kind to a tool it does not know).
    builder = ResponseBuilder()
    for event in run_resplit(
        sse(created(), custom_added(), input_delta(CODE), input_done(), custom_done(), completed())
    ):
        builder.add(event)
    turn = builder.build().message()
    assert turn.parts == [ToolCallPart("call_x", "run_code", {"input": CODE}, "custom")]
    request = ChatRequest(
        model="openai-responses:gpt-5",
        messages=[
            Message.user("Run it"),
            turn,
            Message("tool", [ToolResultPart("call_x", "hi\ndone")]),
            Message("assistant", [ToolCallPart("call_f", "calculator", {"a": 1})]),
            Message("tool", [ToolResultPart("call_f", "1")]),
        ],
    )
    items = encode_body(request, "gpt-5")["input"]
    assert items[1:] == [
        {"type": "custom_tool_call", "call_id": "call_x", "name": "run_code", "input": CODE},
        {"type": "custom_tool_call_output", "call_id": "call_x", "output": "hi\ndone"},
        {"type": "function_call", "call_id": "call_f", "name": "calculator", "arguments": '{"a":1}'},
        {"type": "function_call_output", "call_id": "call_f", "output": "1"},
    ]


def test_the_kind_of_a_call_is_left_out_of_the_json_unless_it_is_custom() -> None:
    plain = msgspec.json.decode(encode_event(ToolCallEnd(0, "c", "f", {})))
    assert "kind" not in plain
    custom = ToolCallStart(0, "c", "run_code", "custom")
    assert decode_event(encode_event(custom)) == custom
    assert msgspec.json.decode(encode_event(custom))["kind"] == "custom"
