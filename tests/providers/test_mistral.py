"""Mistral: the recorded streams, re-chunking, truncation, errors, the encoder, end to end.

``text_stream`` and ``tool_call_stream`` are vercel/ai ``*.chunks.jsonl`` recordings:
one data payload per line, with the SSE framing and the final ``data: [DONE]``
stripped by the recorder, so :func:`body_of` wraps them back and appends the
``[DONE]`` that Mistral sends. ``thinking_stream.sse`` is a raw body and has its own.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lluminary import Engine
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
from lluminary.providers.mistral import Mistral, MistralDecoder, encode_body, tool_call_id
from tests.support import (
    FIXTURES,
    ReplayServer,
    Reply,
    check_invariants,
    cut_points,
    decode,
    fixture_bytes,
    jsonl_to_sse,
    split,
)

DONE = b"data: [DONE]\n\n"


def body_of(name: str) -> bytes:
    body = jsonl_to_sse(FIXTURES / "mistral" / f"{name}.chunks.jsonl", event_names=False)
    # The recorder dropped the end marker; add it only if it is really missing.
    return body if body.endswith(DONE) else body + DONE


TEXT = body_of("text_stream")
TOOLS = body_of("tool_call_stream")
THINKING = fixture_bytes("mistral", "thinking_stream.sse")
RECORDINGS = {"text_stream": TEXT, "tool_call_stream": TOOLS, "thinking_stream": THINKING}


def new_decoder() -> MistralDecoder:
    return MistralDecoder(model="mistral-small-latest", input_estimate=11, secrets=("test-key",))


def run(body: bytes | list[bytes]) -> list[Event]:
    events = decode(new_decoder, [body] if isinstance(body, bytes) else body)
    check_invariants(events)
    return events


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "mistral-large-latest",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
        **extra,
    }


USAGE = {"prompt_tokens": 20, "total_tokens": 25, "completion_tokens": 5}


def sse(*payloads: dict[str, Any], done: bool = True) -> bytes:
    return b"".join(f"data: {json.dumps(p)}\n\n".encode() for p in payloads) + (DONE if done else b"")


def call(id: str | None, name: str | None, arguments: Any, index: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"function": {"name": name, "arguments": arguments}}
    if id is not None:
        out["id"] = id
    if index is not None:
        out["index"] = index
    return out


def of(events: list[Event], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def assert_error(events: list[Event], code: str) -> Error:
    last = events[-1]
    assert isinstance(last, Error), last
    assert last.code == code
    assert last.provider == "mistral"
    assert not of(events, Finish)
    return last


# -- 1. the recordings decode to exactly the right events ------------------------------------


def test_text_stream_events_exactly() -> None:
    words = ["Hello", ", ", "world!", " This", " is a test", " response."]
    assert run(TEXT) == [
        Start(id="5319bd0299614c679a0068a4f2c8ffd0", provider="mistral", model="mistral-small-latest"),
        *[TextDelta(w, 0) for w in words],
        Usage(input_tokens=13, output_tokens=8),  # from the chunk that carries finish_reason
        Finish("stop", "stop"),
    ]


def test_tool_call_stream_events_exactly() -> None:
    assert run(TOOLS) == [
        Start(id="b3999b8c93e04e11bcbff7bcab829667", provider="mistral", model="mistral-small-latest"),
        ToolCallStart(0, "gSIMJiOkT", "weather"),
        ToolArgsDelta(0, '{"location": "San Francisco"}'),
        ToolCallEnd(0, "gSIMJiOkT", "weather", {"location": "San Francisco"}),
        Usage(input_tokens=124, output_tokens=22),
        Finish("tool_calls", "tool_calls"),
    ]


def test_a_whole_tool_call_ends_in_its_own_chunk_not_at_done() -> None:
    events = new_decoder().feed(TOOLS[: -len(DONE)])
    assert of(events, ToolCallEnd) == [ToolCallEnd(0, "gSIMJiOkT", "weather", {"location": "San Francisco"})]
    assert not of(events, Finish)


def test_thinking_stream_events_exactly() -> None:
    events = run(THINKING)
    assert events[0] == Start(
        id="9f9d90210f194076abeee223863eaaf0", provider="mistral", model="magistral-medium-latest"
    )
    reasoning = "".join(e.text for e in of(events, ReasoningDelta))
    assert reasoning.startswith("Okay, the user is asking how to cross the street. I know that crossing the street")
    assert reasoning.endswith("Let me compile this information into a clear and concise response.")
    assert len(of(events, ReasoningDelta)) == 57  # 58 thinking chunks, the last one empty
    steps = (
        "1. Look both ways to check for oncoming traffic.\n2. Use a crosswalk if one is available.\n"
        "3. Obey any traffic signals or signs that may be present.\n"
        "4. Proceed with caution until you have safely reached the other side.\n"
    )
    intro = "To cross the street safely, follow these steps:\n\n"
    text = "".join(e.text for e in of(events, TextDelta))
    outro = "By following these steps, you can ensure a safe crossing."
    assert text == f"{intro}{steps}\n```markdown\n{intro}{steps}```\n\n{outro}"
    kinds = [type(e) for e in events if isinstance(e, (ReasoningDelta, TextDelta))]
    assert kinds == sorted(kinds, key=lambda k: k is TextDelta)  # all thinking comes first
    assert events[-2:] == [Usage(input_tokens=10, output_tokens=232), Finish("stop", "stop")]


# -- 2. the same events whatever the chunking ------------------------------------------------


@pytest.mark.parametrize("name", sorted(RECORDINGS))
@given(data=st.data())
def test_any_split_gives_the_same_events(name: str, data: st.DataObject) -> None:
    body = RECORDINGS[name]
    assert run(split(body, data.draw(cut_points(body)))) == run(body)


@pytest.mark.parametrize("name", ["text_stream", "tool_call_stream"])
def test_byte_at_a_time_gives_the_same_events(name: str) -> None:
    body = RECORDINGS[name]
    assert run([body[i : i + 1] for i in range(len(body))]) == run(body)


# -- 3. truncation, garbage and bad tool arguments -------------------------------------------


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_truncated_stream_errors_unless_done_arrived(name: str) -> None:
    body = RECORDINGS[name]
    full = run(body)
    content = [e for e in full if not isinstance(e, (Usage, Finish))]
    complete = body.rindex(b"[DONE]") + len(b"[DONE]")
    # Every offset of the short recordings; for the 40 KB one a dense sample plus every offset
    # around the last chunk and the end marker.
    offsets = (
        range(len(body) + 1)
        if len(body) < 8000
        else sorted({*range(0, len(body), 11), *range(len(body) - 700, len(body) + 1)})
    )
    for cut in offsets:
        events = run(body[:cut])
        if cut >= complete:
            assert events == full, cut
            continue
        error = assert_error(events, "protocol")
        assert not error.retryable
        got = [e for e in events[:-1] if not isinstance(e, Usage)]
        assert got == content[: len(got)], cut  # a prefix of the real stream, nothing salvaged


def test_cut_after_finish_reason_but_before_done_is_still_an_error() -> None:
    events = run(TEXT[: -len(DONE)])
    assert_error(events, "protocol")
    assert events[-2] == Usage(input_tokens=13, output_tokens=8)  # the usage that did arrive is kept


@given(st.binary(max_size=300))
def test_garbage_ends_in_one_protocol_error(junk: bytes) -> None:
    assert_error(run(junk), "protocol")


@pytest.mark.parametrize(
    "payload", [b"data: {not json}\n\n", b"data: [1]\n\n", b'data: {"choices": [{"index": "zero"}]}\n\n']
)
def test_bad_json_is_a_protocol_error(payload: bytes) -> None:
    assert_error(run(sse(chunk({"content": "Hi"})).replace(DONE, payload + DONE)), "protocol")


def test_bad_tool_arguments_are_a_protocol_error_not_a_half_call() -> None:
    events = run(sse(chunk({"tool_calls": [call("abcDEF123", "weather", '{"location": "Par')]}, "tool_calls")))
    error = assert_error(events, "protocol")
    assert "not valid JSON" in error.message
    assert not of(events, ToolCallEnd)


def test_arguments_before_a_name_are_a_protocol_error() -> None:
    assert_error(run(sse(chunk({"tool_calls": [call(None, None, '{"a": 1}', index=0)]}))), "protocol")


# -- Mistral's own tool-call shapes ------------------------------------------------------------


def test_arguments_as_a_json_object() -> None:
    events = run(sse(chunk({"tool_calls": [call("abcDEF123", "weather", {"location": "Paris"})]}, "tool_calls")))
    assert [e for e in events if isinstance(e, (ToolCallStart, ToolArgsDelta, ToolCallEnd))] == [
        ToolCallStart(0, "abcDEF123", "weather"),
        ToolArgsDelta(0, '{"location":"Paris"}'),
        ToolCallEnd(0, "abcDEF123", "weather", {"location": "Paris"}),
    ]


def test_parallel_whole_calls_in_one_delta_without_index() -> None:
    calls = [call("aaaaaaaa1", "weather", '{"city": "Oslo"}'), call("bbbbbbbb2", "clock", "{}")]
    events = run(sse(chunk({"tool_calls": calls}, "tool_calls", usage=USAGE)))
    assert of(events, ToolCallEnd) == [
        ToolCallEnd(0, "aaaaaaaa1", "weather", {"city": "Oslo"}),
        ToolCallEnd(1, "bbbbbbbb2", "clock", {}),
    ]


def test_whole_calls_in_successive_chunks_at_the_same_index() -> None:
    first = chunk({"tool_calls": [call("aaaaaaaa1", "weather", '{"city": "Oslo"}', index=0)]})
    second = chunk({"tool_calls": [call("bbbbbbbb2", "weather", '{"city": "Rome"}', index=0)]}, "tool_calls")
    assert [(e.index, e.id, e.arguments) for e in of(run(sse(first, second)), ToolCallEnd)] == [
        (0, "aaaaaaaa1", {"city": "Oslo"}),
        (1, "bbbbbbbb2", {"city": "Rome"}),
    ]


def test_fragmented_call_ends_when_the_choice_finishes() -> None:
    parts = [
        chunk({"tool_calls": [call("abcDEF123", "weather", "", index=0)]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Oslo"}'}}]}),
        chunk(None, "tool_calls", usage=USAGE),
    ]
    events = run(sse(*parts))
    assert of(events, ToolArgsDelta) == [ToolArgsDelta(0, '{"city":'), ToolArgsDelta(0, ' "Oslo"}')]
    assert of(events, ToolCallEnd) == [ToolCallEnd(0, "abcDEF123", "weather", {"city": "Oslo"})]
    assert events[-2:] == [Usage(input_tokens=20, output_tokens=5), Finish("tool_calls", "tool_calls")]


def test_text_and_a_tool_call_in_one_chunk_keep_both() -> None:
    events = run(
        sse(chunk({"content": "Let me check.", "tool_calls": [call("abcDEF123", "clock", "{}")]}, "tool_calls"))
    )
    assert of(events, TextDelta) == [TextDelta("Let me check.", 0)]
    assert of(events, ToolCallEnd) == [ToolCallEnd(0, "abcDEF123", "clock", {})]


def test_empty_opening_fragment_starts_no_call() -> None:
    events = run(
        sse(chunk({"content": "", "tool_calls": [{"index": 0, "function": {"name": "", "arguments": ""}}]}, "stop"))
    )
    assert not of(events, ToolCallStart)
    assert events[-1] == Finish("stop", "stop")


# -- content parts, finish reasons, usage, in-band errors -------------------------------------


def test_content_parts_thinking_text_and_unknown_types() -> None:
    content = [
        {
            "type": "thinking",
            "thinking": [{"type": "text", "text": "Hmm. "}, {"type": "reference", "reference_ids": [1]}],
        },
        {"type": "thinking", "thinking": "A plain string, too."},
        {"type": "reference", "reference_ids": [1, 2]},
        {"type": "text", "text": "Answer."},
        {"type": "image_url", "image_url": {"url": "https://x"}},
    ]
    events = run(sse(chunk({"content": content}, "stop")))
    assert of(events, ReasoningDelta) == [ReasoningDelta("Hmm. "), ReasoningDelta("A plain string, too.")]
    assert of(events, TextDelta) == [TextDelta("Answer.", 0)]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("model_length", "length"),
        ("tool_calls", "tool_calls"),
        ("something_new", "other"),
    ],
)
def test_finish_reasons(raw: str, reason: str) -> None:
    assert run(sse(chunk(None, raw, usage=USAGE)))[-1] == Finish(reason, raw)  # type: ignore[arg-type]


def test_finish_reason_error_ends_in_error_after_usage() -> None:
    events = run(sse(chunk({"content": "Hal"}), chunk(None, "error", usage=USAGE)))
    error = assert_error(events, "server")
    assert error.retryable
    assert events[-2] == Usage(input_tokens=20, output_tokens=5)


def test_done_without_a_finish_reason() -> None:
    assert run(sse(chunk({"content": "Hi"})))[-1] == Finish("other", None)


def test_cached_prompt_tokens_are_not_input_tokens() -> None:
    usage = {**USAGE, "prompt_tokens_details": {"cached_tokens": 16}}
    assert run(sse(chunk(None, "stop", usage=usage)))[-2] == Usage(
        input_tokens=4, output_tokens=5, cache_read_tokens=16
    )


def test_missing_usage_is_estimated() -> None:
    assert run(sse(chunk({"content": "12345"}, "stop")))[-2] == Usage(input_tokens=11, output_tokens=2, estimated=True)


@pytest.mark.parametrize(
    ("payload", "code", "text"),
    [
        (
            {"object": "error", "message": "Internal error", "type": "internal_error", "param": None, "code": "1000"},
            "server",
            "Internal error",
        ),
        ({"error": {"message": "slow down", "type": "rate_limit_error"}}, "rate_limited", "slow down"),
        (
            {
                "object": "error",
                "message": {"detail": [{"loc": ["body"], "msg": "bad"}]},
                "type": "invalid_request_error",
            },
            "invalid_request",
            "body: bad",
        ),
        ({"message": "Service unavailable"}, "server", "Service unavailable"),
        # Error glossary: ``code`` is the machine-readable reason, finer than ``type``.
        (
            {"object": "error", "message": "Unknown model", "type": "invalid_request_error", "code": "unknown_model"},
            "not_found",
            "Unknown model",
        ),
        ({"object": "error", "message": "oops", "type": "server_error", "param": None, "code": None}, "server", "oops"),
        ({"error": {"message": "gone", "type": "invalid_request_error", "code": "unknown_model"}}, "not_found", "gone"),
    ],
)
def test_in_band_errors(payload: dict[str, Any], code: str, text: str) -> None:
    events = run(sse(chunk({"content": "Hi"}), payload))
    assert text in assert_error(events, code).message
    assert of(events, TextDelta) == [TextDelta("Hi", 0)]


def test_unknown_fields_and_empty_chunks_change_nothing() -> None:
    noisy = TEXT.replace(b'"logprobs":null', b'"logprobs":null,"p":"abcdef","new_field":{"x":[1]}')
    assert noisy != TEXT
    assert run(b": keep-alive\n\n" + noisy.replace(DONE, b'data: {"id": "x", "choices": []}\n\n' + DONE)) == run(TEXT)


# -- 4. HTTP errors ---------------------------------------------------------------------------


def provider() -> Mistral:
    return Mistral(api_key="test-key-0123456789")


@pytest.mark.parametrize(
    ("status", "headers", "body", "code", "retryable", "retry_after", "text"),
    [
        (401, {}, {"message": "Unauthorized", "request_id": "r1"}, "auth", False, None, "Unauthorized"),
        (
            429,
            {"Retry-After": "12"},
            {"message": "Requests rate limit exceeded"},
            "rate_limited",
            True,
            12.0,
            "Requests rate limit exceeded",
        ),
        (
            429,
            {},
            {
                "object": "error",
                "message": "Service tier capacity exceeded for this model.",
                "type": "service_tier_capacity_exceeded",
                "param": None,
                "code": "3505",
            },
            "overloaded",
            True,
            None,
            "capacity exceeded",
        ),
        (
            400,
            {},
            {
                "object": "error",
                "message": "Prompt contains 40000 tokens and 0 draft tokens, too large for "
                "model with 32768 maximum context length",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            },
            "context_length",
            False,
            None,
            "32768 maximum context length",
        ),
        (
            400,
            {},
            {
                "object": "error",
                "message": "Invalid model: mistral-huge",
                "type": "invalid_model",
                "param": None,
                "code": "1500",
            },
            "not_found",
            False,
            None,
            "Invalid model",
        ),
        (
            400,
            {},
            {
                "object": "error",
                "message": "Unknown model: mistral-huge",
                "type": "invalid_request_error",
                "param": "model",
                "code": "unknown_model",
            },
            "not_found",
            False,
            None,
            "Unknown model",
        ),
        (
            422,
            {},
            {
                "object": "error",
                "message": {
                    "detail": [{"type": "missing", "loc": ["body", "messages"], "msg": "Field required", "input": {}}]
                },
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            },
            "invalid_request",
            False,
            None,
            "body.messages: Field required",
        ),
        (
            422,
            {},
            {"detail": [{"loc": ["body", "temperature"], "msg": "Input should be a valid number"}]},
            "invalid_request",
            False,
            None,
            "body.temperature: Input should be a valid number",
        ),
        (
            500,
            {},
            {"object": "error", "message": "Internal server error", "type": "internal_server_error"},
            "server",
            True,
            None,
            "Internal server error",
        ),
        (503, {"retry-after": "1"}, {"message": "Service unavailable"}, "overloaded", True, 1.0, "unavailable"),
        (504, {}, {"message": "upstream timeout"}, "timeout", True, None, "upstream timeout"),
    ],
)
def test_http_errors(
    status: int,
    headers: dict[str, str],
    body: dict[str, Any],
    code: str,
    retryable: bool,
    retry_after: float | None,
    text: str,
) -> None:
    error = provider().map_error(status, headers, json.dumps(body).encode())
    assert (error.code, error.status, error.retryable, error.retry_after) == (code, status, retryable, retry_after)
    assert text in error.message
    assert error.provider == "mistral"


def test_the_key_is_scrubbed_and_non_json_bodies_are_quoted() -> None:
    error = provider().map_error(401, {}, b'{"message": "bad key test-key-0123456789"}')
    assert "test-key-0123456789" not in error.message
    html = provider().map_error(502, {}, b"<html>Bad Gateway</html>")
    assert (html.code, html.retryable) == ("server", True)
    assert "Bad Gateway" in html.message


# -- 5. the request encoder -------------------------------------------------------------------

WEATHER = ToolSpec("weather", "Weather for a place", {"type": "object", "properties": {"city": {"type": "string"}}})


def test_full_request_body() -> None:
    request = ChatRequest(
        model="mistral:mistral-large-latest",
        system="Be brief.",
        messages=[
            Message.user("Hi"),
            Message.assistant("Hello!"),
            Message.user(
                [
                    TextPart("What is this?"),
                    ImagePart(url="https://example.com/a.png"),
                    ImagePart(data="QUJD", media_type="image/jpeg"),
                ]
            ),
        ],
        tools=[WEATHER],
        tool_choice="required",
        temperature=0.2,
        top_p=0.95,
        max_tokens=100,
        stop=["END"],
        seed=7,
        response_format=ResponseFormat("json_schema", schema={"type": "object"}, name="answer"),
        extra={"safe_prompt": True, "parallel_tool_calls": False},
    )
    assert encode_body(request, "mistral-large-latest") == {
        "model": "mistral-large-latest",
        "stream": True,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": "https://example.com/a.png"},
                    {"type": "image_url", "image_url": "data:image/jpeg;base64,QUJD"},
                ],
            },
        ],
        "tools": [
            {
                "type": "function",
                "function": {"name": "weather", "description": "Weather for a place", "parameters": WEATHER.parameters},
            }
        ],
        "tool_choice": "any",
        "temperature": 0.2,
        "top_p": 0.95,
        "max_tokens": 100,
        "stop": ["END"],
        "random_seed": 7,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "answer", "strict": True, "schema": {"type": "object"}},
        },
        "safe_prompt": True,
        "parallel_tool_calls": False,
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "any"),
        (ToolChoice("weather"), {"type": "function", "function": {"name": "weather"}}),
    ],
)
def test_tool_choice(choice: Any, expected: Any) -> None:
    request = ChatRequest(model="m", messages=[Message.user("x")], tools=[WEATHER], tool_choice=choice)
    assert encode_body(request, "m")["tool_choice"] == expected


def test_plain_request_has_no_openai_only_fields() -> None:
    body = encode_body(
        ChatRequest(model="m", messages=[Message.user("x")], response_format=ResponseFormat("json_object")), "m"
    )
    assert body == {
        "model": "m",
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_object"},
    }


def test_tool_call_ids_are_made_valid_for_mistral() -> None:
    assert tool_call_id("gSIMJiOkT") == "gSIMJiOkT"
    made = tool_call_id("call_abc123XYZ")
    assert re.fullmatch(r"[A-Za-z0-9]{9}", made)
    assert made == tool_call_id("call_abc123XYZ")
    assert made != tool_call_id("toolu_01A")
    request = ChatRequest(
        model="m",
        messages=[
            Message.user("time?"),
            Message.assistant([ReasoningPart("think"), ToolCallPart("call_abc123XYZ", "clock", {"tz": "UTC"})]),
            Message.tool("call_abc123XYZ", "12:00"),
            Message.user([ToolResultPart("other", "x", name="explicit"), TextPart("thanks")]),
        ],
    )
    assert encode_body(request, "m")["messages"][1:] == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": made, "type": "function", "function": {"name": "clock", "arguments": '{"tz":"UTC"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": made, "content": "12:00", "name": "clock"},
        {"role": "tool", "tool_call_id": tool_call_id("other"), "content": "x", "name": "explicit"},
        {"role": "user", "content": "thanks"},
    ]


def test_tool_loop_second_request_has_the_documented_shape() -> None:
    first = ChatRequest(
        model="mistral:mistral-small-latest", messages=[Message.user("Weather in SF?")], tools=[WEATHER]
    )
    builder = ResponseBuilder()
    for event in run(TOOLS):
        builder.add(event)
    response = builder.build()
    second = msgspec.structs.replace(
        first, messages=[*first.messages, response.message(), Message.tool("gSIMJiOkT", '{"temperature": 18}')]
    )
    assert encode_body(second, "mistral-small-latest")["messages"] == [
        {"role": "user", "content": "Weather in SF?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "gSIMJiOkT",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"location":"San Francisco"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "gSIMJiOkT", "content": '{"temperature": 18}', "name": "weather"},
    ]


def test_request_url_headers_and_repr() -> None:
    made = Mistral(api_key="test-key-0123456789")
    http = made.build_request(ChatRequest(model="m", messages=[Message.user("x")]), "m")
    assert http.url == "https://api.mistral.ai/v1/chat/completions"
    assert http.headers["authorization"] == "Bearer test-key-0123456789"
    assert "test-key" not in repr(made)
    assert "test-key" not in repr(http)
    env_made = create_provider("mistral", env={"MISTRAL_API_KEY": "k1"})
    assert isinstance(env_made, Mistral)
    assert env_made.api_key is not None
    assert env_made.api_key.get() == "k1"


# -- 6. end to end over loopback HTTP ---------------------------------------------------------


def engine_for(server: ReplayServer) -> Engine:
    return Engine(providers={"mistral": create_provider("mistral", api_key="test-key", base_url=server.url + "/v1")})


async def collect(engine: Engine, request: ChatRequest) -> list[Event]:
    async with engine.stream(request) as stream:
        return [event async for event in stream]


@pytest.mark.parametrize("name", sorted(RECORDINGS))
async def test_end_to_end(name: str) -> None:
    body = RECORDINGS[name]
    request = ChatRequest(model="mistral:mistral-small-latest", messages=[Message.user("Hello")], seed=3)
    async with ReplayServer([Reply(body, chunk_size=101)]) as server, engine_for(server) as engine:
        events = await collect(engine, request)
    estimate = Mistral(api_key="x").input_estimate(request)
    assert events == decode(lambda: MistralDecoder(model="mistral-small-latest", input_estimate=estimate), [body])
    seen = server.requests[0]
    assert (seen.method, seen.path, seen.query) == ("POST", "/v1/chat/completions", "")
    assert seen.headers["Authorization"] == "Bearer test-key"
    assert seen.json() == {
        "model": "mistral-small-latest",
        "stream": True,
        "random_seed": 3,
        "messages": [{"role": "user", "content": "Hello"}],
    }
    assert not any(b"test-key" in encode_event(e) for e in events)


async def test_end_to_end_tool_loop() -> None:
    first = ChatRequest(
        model="mistral:mistral-small-latest", messages=[Message.user("Weather in SF?")], tools=[WEATHER]
    )
    async with ReplayServer([Reply(TOOLS), Reply(TEXT, chunk_size=5)]) as server, engine_for(server) as engine:
        response = await engine.complete(first)
        follow = [*first.messages, response.message(), Message.tool(response.tool_calls[0].id, "18 C")]
        final = await engine.complete(msgspec.structs.replace(first, messages=follow))
    assert final.text == "Hello, world! This is a test response."
    sent = server.requests[1].json()["messages"]
    assert sent[1]["tool_calls"][0]["id"] == "gSIMJiOkT"
    assert sent[2] == {"role": "tool", "tool_call_id": "gSIMJiOkT", "content": "18 C", "name": "weather"}


async def test_end_to_end_http_error() -> None:
    reply = Reply(
        b'{"message": "Requests rate limit exceeded"}',
        status=429,
        headers={"content-type": "application/json", "retry-after": "2"},
    )
    async with ReplayServer([reply]) as server, engine_for(server) as engine:
        events = await collect(engine, ChatRequest(model="mistral:m", messages=[Message.user("x")]))
    assert len(events) == 1
    error = events[0]
    assert isinstance(error, Error)
    assert (error.code, error.status, error.retry_after, error.retryable) == ("rate_limited", 429, 2.0, True)
