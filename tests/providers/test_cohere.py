"""Cohere v2 Chat: the recorded streams, re-chunking, truncation, errors, the encoder, end to end.

The recordings are vercel/ai's ``*.chunks.jsonl`` (one SSE data payload per line);
:func:`tests.support.jsonl_to_sse` wraps them back into SSE with ``event:`` lines,
as Cohere sends them.
"""

from __future__ import annotations

import json
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
    encode_event,
)
from lluminary.providers import create_provider
from lluminary.providers.cohere import Cohere, CohereDecoder, encode_body
from tests.support import (
    FIXTURES,
    ReplayServer,
    Reply,
    check_invariants,
    cut_points,
    decode,
    jsonl_to_sse,
    split,
)

MODEL = "command-a-03-2025"


def body_of(name: str) -> bytes:
    return jsonl_to_sse(FIXTURES / "cohere" / f"{name}.chunks.jsonl", event_names=True)


TEXT = body_of("text_stream")
TOOLS = body_of("tool_call_stream")
REASONING = body_of("reasoning_stream")
RECORDINGS = {"text_stream": TEXT, "tool_call_stream": TOOLS, "reasoning_stream": REASONING}


def new_decoder() -> CohereDecoder:
    return CohereDecoder(model=MODEL, input_estimate=11, secrets=("test-key",))


def run(body: bytes | list[bytes]) -> list[Event]:
    events = decode(new_decoder, [body] if isinstance(body, bytes) else body)
    check_invariants(events)
    return events


def sse(*payloads: dict[str, Any]) -> bytes:
    return b"".join(f"event: {p.get('type', 'message')}\ndata: {json.dumps(p)}\n\n".encode() for p in payloads)


START = {"id": "msg-1", "type": "message-start", "delta": {"message": {"role": "assistant", "content": []}}}


def end(reason: str = "COMPLETE", **delta: Any) -> dict[str, Any]:
    usage = {"billed_units": {"input_tokens": 3, "output_tokens": 2}, "tokens": {"input_tokens": 9, "output_tokens": 2}}
    return {"type": "message-end", "delta": {"finish_reason": reason, "usage": usage, **delta}}


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def reasoning_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, ReasoningDelta))


# -- 1. the recordings decode to exactly the right events ------------------------------------


def test_text_stream_events_exactly() -> None:
    words = ["The", " capital", " of", " France", " is", " Paris", "."]
    assert run(TEXT) == [
        Start(id="321d178c-2c12-44d3-ae42-2f5510f6b1cc", provider="cohere", model=MODEL),
        *[TextDelta(w, 0) for w in words],
        # tokens.input_tokens 507 of which cached_tokens 448 were read from the cache.
        Usage(input_tokens=59, output_tokens=10, cache_read_tokens=448),
        Finish("stop", "COMPLETE"),
    ]


def test_tool_call_stream_events_exactly() -> None:
    events = run(TOOLS)
    assert events[0] == Start(id="2941521a-b87a-45f6-9b0d-235fd66c3025", provider="cohere", model=MODEL)
    # The tool plan is streamed as reasoning, before any call.
    assert reasoning_of(events) == (
        "I will use the weather tool to find the weather in San Francisco and the cityAttractions tool "
        "to find attractions in San Francisco."
    )
    first_call = next(i for i, e in enumerate(events) if isinstance(e, ToolCallStart))
    assert all(isinstance(e, ReasoningDelta) for e in events[1:first_call])
    calls = [e for e in events if isinstance(e, (ToolCallStart, ToolArgsDelta, ToolCallEnd))]
    fragments = ['{"', "location", '":', ' "', "San", " Francisco", '"}']
    city_fragments = ['{"', "city", '":', ' "', "San", " Francisco", '"}']
    assert calls == [
        ToolCallStart(0, "weather_e8p4pn45zt0t", "weather"),
        *[ToolArgsDelta(0, f) for f in fragments],
        ToolCallEnd(0, "weather_e8p4pn45zt0t", "weather", {"location": "San Francisco"}),
        ToolCallStart(1, "cityAttractions_pyxssbwnq9fq", "cityAttractions"),
        *[ToolArgsDelta(1, f) for f in city_fragments],
        ToolCallEnd(1, "cityAttractions_pyxssbwnq9fq", "cityAttractions", {"city": "San Francisco"}),
    ]
    assert events[-2:] == [
        Usage(input_tokens=45, output_tokens=95, cache_read_tokens=1504),
        Finish("tool_calls", "TOOL_CALL"),
    ]
    assert not any(isinstance(e, TextDelta) for e in events)


def test_reasoning_stream_events_exactly() -> None:
    events = run(REASONING)
    assert events[0] == Start(id="c9117d7f-a7e4-499f-b643-a2a1e139687b", provider="cohere", model=MODEL)
    assert reasoning_of(events) == (
        "The user is asking for the sum of 2 and 2. Since this is a straightforward arithmetic problem, "
        "I don't need to use any tools. I can calculate the answer directly."
    )
    assert text_of(events) == "The answer to 2 + 2 is 4."
    # The thinking block is content index 0; the text is block 1, and says so.
    assert {e.index for e in events if isinstance(e, TextDelta)} == {1}
    last_thought = max(i for i, e in enumerate(events) if isinstance(e, ReasoningDelta))
    first_text = min(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert last_thought < first_text
    assert events[-2:] == [Usage(input_tokens=34, output_tokens=54, cache_read_tokens=1360), Finish("stop", "COMPLETE")]


# -- 2. the same events whatever the chunking ------------------------------------------------


@pytest.mark.parametrize("name", sorted(RECORDINGS))
@given(data=st.data())
def test_any_split_gives_the_same_events(name: str, data: st.DataObject) -> None:
    body = RECORDINGS[name]
    cuts = data.draw(cut_points(body))
    assert run(split(body, cuts)) == run(body)


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_byte_at_a_time_gives_the_same_events(name: str) -> None:
    body = RECORDINGS[name]
    assert run([body[i : i + 1] for i in range(len(body))]) == run(body)


# -- 3. truncation, garbage and bad tool arguments -------------------------------------------


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_truncated_at_every_offset_errors_unless_message_end_arrived(name: str) -> None:
    body = RECORDINGS[name]
    full = run(body)
    content = [e for e in full if not isinstance(e, (Usage, Finish))]
    # The end marker is complete once the message-end JSON object is.
    complete = body.rindex(b"}") + 1
    for cut in range(len(body) + 1):
        events = run(body[:cut])
        if cut >= complete:
            assert events == full, cut
            continue
        last = events[-1]
        assert isinstance(last, Error), cut
        assert last.code == "protocol"
        assert last.provider == "cohere"
        assert not last.retryable
        # What arrived before the cut is a prefix of the real stream, never a salvaged half.
        got = [e for e in events[:-1] if not isinstance(e, Usage)]
        assert got == content[: len(got)], cut


def test_cut_stream_reports_estimated_usage_before_the_error() -> None:
    events = run(TEXT[: TEXT.index(b"message-end")])
    assert isinstance(events[-1], Error)
    usage = events[-2]
    assert isinstance(usage, Usage)
    assert usage.estimated
    assert usage.input_tokens == 11  # the caller's estimate
    assert usage.output_tokens == 8  # 31 characters of text, four to a token, rounded up


@given(st.binary(max_size=300))
def test_garbage_ends_in_one_protocol_error(junk: bytes) -> None:
    events = run(junk)
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"


@pytest.mark.parametrize(
    "payload",
    [b"data: {not json}\n\n", b"data: [1, 2]\n\n", b'data: {"type": "content-delta", "index": "zero"}\n\n'],
)
def test_bad_json_is_a_protocol_error(payload: bytes) -> None:
    events = run(sse(START) + payload + sse(end()))
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"
    assert not any(isinstance(e, Finish) for e in events)


def _call(index: int, *fragments: str, ended: bool = True) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "type": "tool-call-start",
            "index": index,
            "delta": {
                "message": {
                    "tool_calls": {
                        "id": f"t{index}",
                        "type": "function",
                        "function": {"name": "weather", "arguments": ""},
                    }
                }
            },
        }
    ]
    out += [
        {
            "type": "tool-call-delta",
            "index": index,
            "delta": {"message": {"tool_calls": {"function": {"arguments": f}}}},
        }
        for f in fragments
    ]
    if ended:
        out.append({"type": "tool-call-end", "index": index})
    return out


def test_bad_tool_arguments_are_a_protocol_error_not_a_half_call() -> None:
    events = run(sse(START, *_call(0, '{"location": "San'), end("TOOL_CALL")))
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"
    assert "not valid JSON" in events[-1].message
    assert not any(isinstance(e, ToolCallEnd) for e in events)


def test_arguments_that_are_not_an_object_are_a_protocol_error() -> None:
    events = run(sse(START, *_call(0, "[1, 2]"), end("TOOL_CALL")))
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"


def test_arguments_for_a_call_that_never_started_are_a_protocol_error() -> None:
    stray = {
        "type": "tool-call-delta",
        "index": 3,
        "delta": {"message": {"tool_calls": {"function": {"arguments": "{}"}}}},
    }
    events = run(sse(START, stray, end()))
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"


def test_call_without_tool_call_end_is_closed_at_message_end() -> None:
    events = run(sse(START, *_call(0, '{"location":', ' "Oslo"}', ended=False), end("TOOL_CALL")))
    assert ToolCallEnd(0, "t0", "weather", {"location": "Oslo"}) in events
    assert events[-1] == Finish("tool_calls", "TOOL_CALL")


def test_call_without_arguments_gets_an_empty_object() -> None:
    events = run(sse(START, *_call(0), end("TOOL_CALL")))
    assert [e for e in events if isinstance(e, (ToolArgsDelta, ToolCallEnd))] == [
        ToolArgsDelta(0, "{}"),
        ToolCallEnd(0, "t0", "weather", {}),
    ]


def test_whole_call_in_tool_call_start() -> None:
    start = _call(0)[0]
    start["delta"]["message"]["tool_calls"]["function"]["arguments"] = {"location": "Rome"}
    events = run(sse(START, start, {"type": "tool-call-end", "index": 0}, end("TOOL_CALL")))
    assert ToolCallEnd(0, "t0", "weather", {"location": "Rome"}) in events


# -- in-band errors, finish reasons, usage, forward compatibility ----------------------------


@pytest.mark.parametrize(("raw", "code"), [("ERROR", "server"), ("TIMEOUT", "timeout")])
def test_failed_finish_reasons_end_in_error_with_usage_first(raw: str, code: str) -> None:
    content = {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hal"}}}}
    events = run(sse(START, content, end(raw, error="upstream model crashed")))
    assert events[-2] == Usage(input_tokens=9, output_tokens=2)
    error = events[-1]
    assert isinstance(error, Error)
    assert (error.code, error.retryable, error.provider) == (code, True, "cohere")
    assert "upstream model crashed" in error.message or raw in error.message


def test_error_object_in_the_stream() -> None:
    events = run(sse(START) + b'data: {"message": "internal server error"}\n\n' + sse(end()))
    assert isinstance(events[-1], Error)
    assert events[-1].code == "server"
    assert "internal server error" in events[-1].message


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("COMPLETE", "stop"),
        ("STOP_SEQUENCE", "stop"),
        ("MAX_TOKENS", "length"),
        ("TOOL_CALL", "tool_calls"),
        ("SOMETHING_NEW", "other"),
    ],
)
def test_finish_reasons(raw: str, reason: str) -> None:
    assert run(sse(START, end(raw)))[-1] == Finish(reason, raw)  # type: ignore[arg-type]


def test_done_before_message_end_is_a_cut_stream() -> None:
    events = run(sse(START) + b"data: [DONE]\n\n")
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"


def test_done_after_message_end_is_ignored() -> None:
    assert run(sse(START, end()) + b"data: [DONE]\n\n")[-1] == Finish("stop", "COMPLETE")


def test_billed_units_are_the_fallback_for_usage() -> None:
    message_end = {
        "type": "message-end",
        "delta": {
            "finish_reason": "COMPLETE",
            "usage": {"billed_units": {"input_tokens": 12.0, "output_tokens": 7.0}, "cached_tokens": 4},
        },
    }
    assert run(sse(START, message_end))[-2] == Usage(input_tokens=12, output_tokens=7, cache_read_tokens=4)


def test_missing_usage_is_estimated() -> None:
    content = {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "12345678"}}}}
    events = run(sse(START, content, {"type": "message-end", "delta": {"finish_reason": "COMPLETE"}}))
    assert events[-2] == Usage(input_tokens=11, output_tokens=2, estimated=True)


def test_unknown_and_skipped_events_change_nothing() -> None:
    extra = sse(
        {
            "type": "citation-start",
            "index": 0,
            "delta": {"message": {"citations": {"start": 1, "end": 3, "text": "Paris", "sources": []}}},
        },
        {"type": "citation-end", "index": 0},
        {"type": "debug", "prompt": "<BOS>…"},
        {"type": "something-new", "delta": "a shape we have never seen", "index": "x"},
    )
    cut = TEXT.index(b"event: content-end")
    assert run(TEXT[:cut] + extra + TEXT[cut:]) == run(TEXT)


# -- 4. HTTP errors ---------------------------------------------------------------------------


def provider() -> Cohere:
    return Cohere(api_key="test-key-0123456789")


def test_recorded_404_maps_to_not_found() -> None:
    fixture = json.loads((FIXTURES / "cohere" / "error_404_model_not_found.json").read_text())
    error = provider().map_error(fixture["http_status"], {}, json.dumps(fixture["body"]).encode())
    assert (error.code, error.status, error.retryable, error.retry_after) == ("not_found", 404, False, None)
    assert error.message.startswith("model 'nonexistent' not found")
    assert error.provider == "cohere"


@pytest.mark.parametrize(
    ("status", "headers", "body", "code", "retryable", "retry_after"),
    [
        (
            429,
            {"Retry-After": "7"},
            {"id": "x", "message": "You are using a Trial key, which is limited"},
            "rate_limited",
            True,
            7.0,
        ),
        (500, {}, {"message": "internal server error"}, "server", True, None),
        (503, {"retry-after": "2"}, {"message": "service unavailable"}, "overloaded", True, 2.0),
        (529, {}, {"message": "overloaded"}, "overloaded", True, None),
        (504, {}, {"message": "gateway timeout"}, "timeout", True, None),
        (401, {}, {"message": "invalid api token"}, "auth", False, None),
        (498, {}, {"message": "invalid token"}, "auth", False, None),
        (402, {}, {"message": "Please add a payment method"}, "permission", False, None),
        (400, {}, {"message": "too many tokens: size limit exceeded by 1024 tokens"}, "context_length", False, None),
        (422, {}, {"message": "invalid request: stream must be a boolean"}, "invalid_request", False, None),
        (501, {}, {"message": "model does not support tools"}, "invalid_request", False, None),
    ],
)
def test_http_errors(
    status: int, headers: dict[str, str], body: dict[str, Any], code: str, retryable: bool, retry_after: float | None
) -> None:
    error = provider().map_error(status, headers, json.dumps(body).encode())
    assert (error.code, error.status, error.retryable, error.retry_after) == (code, status, retryable, retry_after)
    assert error.message == body["message"]


def test_the_key_is_scrubbed_from_error_messages() -> None:
    body = b'{"message": "invalid api token: test-key-0123456789"}'
    error = provider().map_error(401, {}, body)
    assert "test-key-0123456789" not in error.message
    assert "[redacted]" in error.message


def test_non_json_error_body() -> None:
    error = provider().map_error(502, {}, b"<html>Bad Gateway</html>")
    assert (error.code, error.retryable) == ("server", True)
    assert "Bad Gateway" in error.message


# -- 5. the request encoder -------------------------------------------------------------------

WEATHER = ToolSpec("weather", "Weather for a place", {"type": "object", "properties": {"location": {"type": "string"}}})
CLOCK = ToolSpec("clock", "The time")


def test_full_request_body() -> None:
    request = ChatRequest(
        model=f"cohere:{MODEL}",
        system="Be brief.",
        messages=[
            Message.user("Hi"),
            Message.assistant("Hello! How can I help?"),
            Message.user(
                [
                    TextPart("What is in these?"),
                    ImagePart(url="https://example.com/a.png"),
                    ImagePart(data="QUJD", media_type="image/jpeg"),
                ]
            ),
        ],
        tools=[WEATHER, CLOCK],
        tool_choice="required",
        temperature=0.3,
        top_p=0.9,
        max_tokens=256,
        stop=["\n\n", "END"],
        seed=42,
        response_format=ResponseFormat("json_schema", schema={"type": "object"}),
        extra={"thinking": {"type": "enabled", "token_budget": 512}, "strict_tools": True},
    )
    assert encode_body(request, MODEL) == {
        "model": MODEL,
        "stream": True,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in these?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
                ],
            },
        ],
        "tools": [
            {
                "type": "function",
                "function": {"name": "weather", "description": "Weather for a place", "parameters": WEATHER.parameters},
            },
            {
                "type": "function",
                "function": {
                    "name": "clock",
                    "description": "The time",
                    "parameters": {"type": "object", "properties": {}},
                },
            },
        ],
        "tool_choice": "REQUIRED",
        "temperature": 0.3,
        "p": 0.9,
        "max_tokens": 256,
        "stop_sequences": ["\n\n", "END"],
        "seed": 42,
        "response_format": {"type": "json_object", "json_schema": {"type": "object"}},
        "thinking": {"type": "enabled", "token_budget": 512},
        "strict_tools": True,
    }


@pytest.mark.parametrize(
    ("choice", "expected", "tools"),
    [
        ("auto", None, ["weather", "clock"]),
        (None, None, ["weather", "clock"]),
        ("none", "NONE", ["weather", "clock"]),
        ("required", "REQUIRED", ["weather", "clock"]),
        (ToolChoice("clock"), "REQUIRED", ["clock"]),  # one named tool: offer only that one
    ],
)
def test_tool_choice(choice: Any, expected: str | None, tools: list[str]) -> None:
    body = encode_body(
        ChatRequest(model="m", messages=[Message.user("x")], tools=[WEATHER, CLOCK], tool_choice=choice), "m"
    )
    assert body.get("tool_choice") == expected
    assert [t["function"]["name"] for t in body["tools"]] == tools


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (ResponseFormat("json_object"), {"type": "json_object"}),
        (ResponseFormat("text"), {"type": "text"}),
        (ResponseFormat("json_schema"), {"type": "json_object"}),
    ],
)
def test_response_formats(fmt: ResponseFormat, expected: dict[str, Any]) -> None:
    assert (
        encode_body(ChatRequest(model="m", messages=[Message.user("x")], response_format=fmt), "m")["response_format"]
        == expected
    )


def test_plain_request_has_no_optional_fields() -> None:
    assert encode_body(ChatRequest(model="m", messages=[Message.user("x")]), "m") == {
        "model": "m",
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }


def test_tool_loop_second_request_has_the_documented_shape() -> None:
    first = ChatRequest(model=f"cohere:{MODEL}", messages=[Message.user("Weather and sights in SF?")], tools=[WEATHER])
    builder = ResponseBuilder()
    for event in run(TOOLS):
        builder.add(event)
    response = builder.build()
    assert response.finish_reason == "tool_calls"
    assert len(response.tool_calls) == 2
    second = msgspec.structs.replace(
        first,
        messages=[
            *first.messages,
            response.message(),
            Message.tool("weather_e8p4pn45zt0t", '{"temperature": 18}'),
            Message.tool("cityAttractions_pyxssbwnq9fq", "Golden Gate Bridge"),
        ],
    )
    messages = encode_body(second, MODEL)["messages"]
    assert messages[1] == {
        "role": "assistant",
        "tool_plan": response.reasoning,
        "tool_calls": [
            {
                "id": "weather_e8p4pn45zt0t",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"location":"San Francisco"}'},
            },
            {
                "id": "cityAttractions_pyxssbwnq9fq",
                "type": "function",
                "function": {"name": "cityAttractions", "arguments": '{"city":"San Francisco"}'},
            },
        ],
    }
    assert response.reasoning.startswith("I will use the weather tool")
    assert messages[2:] == [
        {
            "role": "tool",
            "tool_call_id": "weather_e8p4pn45zt0t",
            "content": [{"type": "document", "document": {"data": '{"temperature": 18}'}}],
        },
        {
            "role": "tool",
            "tool_call_id": "cityAttractions_pyxssbwnq9fq",
            "content": [{"type": "document", "document": {"data": "Golden Gate Bridge"}}],
        },
    ]


def test_assistant_with_text_and_calls_and_tool_results_inside_a_user_turn() -> None:
    request = ChatRequest(
        model="m",
        messages=[
            Message.assistant([ReasoningPart("thinking"), TextPart("Let me look."), ToolCallPart("c1", "clock", {})]),
            Message.user([ToolResultPart("c1", "12:00"), TextPart("And now?")]),
            Message.assistant([ReasoningPart("only thoughts"), TextPart("It is noon.")]),
        ],
    )
    assert encode_body(request, "m")["messages"] == [
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_plan": "thinking",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "clock", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "document", "document": {"data": "12:00"}}]},
        {"role": "user", "content": "And now?"},
        {"role": "assistant", "content": "It is noon."},  # no field for reasoning without tool calls
    ]


# -- provider construction --------------------------------------------------------------------


def test_key_from_either_environment_variable() -> None:
    for env in ({"CO_API_KEY": "k1"}, {"COHERE_API_KEY": "k1"}, {"CO_API_KEY": "k1", "COHERE_API_KEY": "other"}):
        made = create_provider("cohere", env=env)
        assert isinstance(made, Cohere)
        assert made.api_key is not None
        assert made.api_key.get() == "k1"
    explicit = create_provider("cohere", api_key="k2", env={"CO_API_KEY": "k1"})
    assert isinstance(explicit, Cohere)
    assert explicit.api_key is not None
    assert explicit.api_key.get() == "k2"
    with pytest.raises(MissingKeyError, match="CO_API_KEY"):
        create_provider("cohere", env={})


def test_request_url_headers_and_repr() -> None:
    made = Cohere(api_key="test-key-0123456789", base_url="https://cohere.example/")
    http = made.build_request(ChatRequest(model="m", messages=[Message.user("x")]), "m")
    assert http.url == "https://cohere.example/v2/chat"
    assert http.headers["authorization"] == "Bearer test-key-0123456789"
    assert http.headers["accept"] == "text/event-stream"
    assert "test-key" not in repr(made)
    assert "test-key" not in repr(http)
    assert "test-key" not in http.url
    assert Cohere(api_key="k").base_url == "https://api.cohere.com"


# -- 6. end to end over loopback HTTP ---------------------------------------------------------


def engine_for(server: ReplayServer) -> Engine:
    return Engine(providers={"cohere": create_provider("cohere", api_key="test-key", base_url=server.url)})


async def collect(engine: Engine, request: ChatRequest) -> list[Event]:
    async with engine.stream(request) as stream:
        return [event async for event in stream]


@pytest.mark.parametrize("name", sorted(RECORDINGS))
async def test_end_to_end(name: str) -> None:
    body = RECORDINGS[name]
    request = ChatRequest(model=f"cohere:{MODEL}", messages=[Message.user("Hello")], tools=[WEATHER])
    async with ReplayServer([Reply(body, chunk_size=97)]) as server, engine_for(server) as engine:
        events = await collect(engine, request)
    estimate = Cohere(api_key="x").input_estimate(request)
    expected = decode(lambda: CohereDecoder(model=MODEL, input_estimate=estimate), [body])
    assert events == expected
    seen = server.requests[0]
    assert (seen.method, seen.path, seen.query) == ("POST", "/v2/chat", "")
    assert seen.headers["Authorization"] == "Bearer test-key"
    assert seen.headers["Content-Type"] == "application/json"
    sent = seen.json()
    assert sent["model"] == MODEL
    assert sent["stream"] is True
    assert sent["messages"] == [{"role": "user", "content": "Hello"}]
    assert sent["tools"][0]["function"]["name"] == "weather"
    assert not any(b"test-key" in encode_event(e) for e in events)


async def test_end_to_end_tool_loop() -> None:
    replies = [Reply(TOOLS, chunk_size=64), Reply(TEXT)]
    first = ChatRequest(model=f"cohere:{MODEL}", messages=[Message.user("Weather in SF?")], tools=[WEATHER])
    async with ReplayServer(replies) as server, engine_for(server) as engine:
        response = await engine.complete(first)
        second = msgspec.structs.replace(
            first,
            messages=[
                *first.messages,
                response.message(),
                *[Message.tool(c.id, "sunny") for c in response.tool_calls],
            ],
        )
        final = await engine.complete(second)
    assert final.text == "The capital of France is Paris."
    assert final.finish_reason == "stop"
    sent = server.requests[1].json()["messages"]
    assert sent[1]["role"] == "assistant"
    assert [c["id"] for c in sent[1]["tool_calls"]] == [
        "weather_e8p4pn45zt0t",
        "cityAttractions_pyxssbwnq9fq",
    ]
    assert sent[1]["tool_plan"] == response.reasoning
    assert sent[2] == {
        "role": "tool",
        "tool_call_id": "weather_e8p4pn45zt0t",
        "content": [{"type": "document", "document": {"data": "sunny"}}],
    }


async def test_end_to_end_http_error() -> None:
    reply = Reply(
        b'{"id": "r", "message": "rate limit exceeded for test-key"}',
        status=429,
        headers={"content-type": "application/json", "retry-after": "3"},
    )
    async with ReplayServer([reply]) as server, engine_for(server) as engine:
        events = await collect(engine, ChatRequest(model=f"cohere:{MODEL}", messages=[Message.user("x")]))
    assert len(events) == 1
    error = events[0]
    assert isinstance(error, Error)
    assert (error.code, error.status, error.retry_after, error.retryable) == ("rate_limited", 429, 3.0, True)
    assert "test-key" not in error.message


async def test_end_to_end_cut_connection_is_an_error() -> None:
    cut = TEXT.index(b"Paris")
    async with ReplayServer([Reply(TEXT, cut_after=cut)]) as server, engine_for(server) as engine:
        events = await collect(engine, ChatRequest(model=f"cohere:{MODEL}", messages=[Message.user("x")]))
    check_invariants(events)
    assert isinstance(events[-1], Error)
    assert events[-1].code in {"connection", "protocol"}
    assert "Paris" not in text_of(events)
