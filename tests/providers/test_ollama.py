"""Ollama: the NDJSON decoder, the request encoder, error mapping, host handling and the wire.

The recordings are Ollama's own documentation examples (there is no public
recording of the native API; see tests/fixtures/SOURCES.md), so the decoder is
also driven with constructed streams in the documented shape: thinking, several
tool calls with and without ids, missing counts, in-band errors.
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
from lluminary.errors import ConfigError
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
    ToolSpec,
    Usage,
)
from lluminary.providers import HttpRequest, HttpResponse, create_provider, estimate_tokens
from lluminary.providers.ollama import Ollama, OllamaDecoder, encode_body, normalize_host
from lluminary.providers.ollama._errors import classify
from tests.support import ReplayServer, Reply, check_invariants, cut_points, decode, fixture_bytes, split

PROVIDER = "ollama"
INPUT_ESTIMATE = 11
NDJSON = {"content-type": "application/x-ndjson"}
STREAMS = [
    "chat_stream_text.docs.ndjson",
    "chat_stream_tool_call.docs.ndjson",
    "generate_stream_text.docs.ndjson",
    "generate_stream_midstream_error.docs.ndjson",
]


def new_decoder() -> OllamaDecoder:
    return OllamaDecoder(model="fallback-model", input_estimate=INPUT_ESTIMATE)


def run(body: bytes) -> list[Event]:
    events = decode(new_decoder, [body])
    check_invariants(events)
    return events


def ndjson(*lines: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def chunk(content: str = "", **message: Any) -> dict[str, Any]:
    return {"model": "qwen3", "message": {"role": "assistant", "content": content, **message}, "done": False}


def done(reason: str | None = "stop", **counts: int) -> dict[str, Any]:
    line: dict[str, Any] = {"model": "qwen3", "message": {"role": "assistant", "content": ""}, "done": True}
    if reason is not None:
        line["done_reason"] = reason
    return {**line, **counts}


# -- 1. the recordings ------------------------------------------------------------------


def test_chat_text_docs_example() -> None:
    assert run(fixture_bytes(PROVIDER, "chat_stream_text.docs.ndjson")) == [
        Start(id="", provider="ollama", model="llama3.2"),
        TextDelta("The"),
        Usage(input_tokens=26, output_tokens=282),
        # This docs example predates done_reason: a bare ``done: true`` is a normal stop.
        Finish("stop", None),
    ]


def test_chat_tool_call_docs_example_finishes_with_tool_calls() -> None:
    assert run(fixture_bytes(PROVIDER, "chat_stream_tool_call.docs.ndjson")) == [
        Start(id="", provider="ollama", model="llama3.2"),
        ToolCallStart(0, "call_0", "get_weather"),
        ToolArgsDelta(0, '{"city":"Tokyo"}'),
        ToolCallEnd(0, "call_0", "get_weather", {"city": "Tokyo"}),
        Usage(input_tokens=169, output_tokens=15),
        # Ollama says "stop" after tool calls; the calls decide the reason.
        Finish("tool_calls", "stop"),
    ]


def test_generate_docs_example_reads_response_and_estimates_usage() -> None:
    events = run(fixture_bytes(PROVIDER, "generate_stream_text.docs.ndjson"))
    text = "That's a fantastic question!"
    assert events[0] == Start(id="", provider="ollama", model="gemma4")
    assert [e.text for e in events if isinstance(e, TextDelta)] == [
        "That",
        "'",
        "s",
        " a",
        " fantastic",
        " question",
        "!",
    ]
    # No eval counts in this example: our own estimate, marked as such.
    assert events[-2:] == [
        Usage(input_tokens=INPUT_ESTIMATE, output_tokens=estimate_tokens(len(text)), estimated=True),
        Finish("stop", "stop"),
    ]


def test_generate_docs_midstream_error_is_a_typed_error_after_the_text() -> None:
    events = run(fixture_bytes(PROVIDER, "generate_stream_midstream_error.docs.ndjson"))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == " Yes.Ican"
    assert isinstance(events[-2], Usage)
    assert events[-2].estimated
    assert events[-1] == Error(
        code="server",
        message="an error was encountered while running the model",
        retryable=False,
        provider="ollama",
    )


# -- constructed streams in the documented shape -----------------------------------------


def test_thinking_text_and_counts() -> None:
    body = ndjson(
        chunk(thinking="Let me "),
        chunk(thinking="think."),
        chunk("Hello"),
        chunk(" there"),
        done(prompt_eval_count=12, eval_count=40),
    )
    assert run(body)[1:] == [
        ReasoningDelta("Let me "),
        ReasoningDelta("think."),
        TextDelta("Hello"),
        TextDelta(" there"),
        Usage(input_tokens=12, output_tokens=40),
        Finish("stop", "stop"),
    ]


def test_generate_thinking_field_is_reasoning() -> None:
    body = ndjson(
        {"model": "qwen3", "response": "", "thinking": "hmm", "done": False},
        {"model": "qwen3", "response": "ok", "done": True, "done_reason": "stop", "eval_count": 3},
    )
    events = run(body)
    assert events[1:3] == [ReasoningDelta("hmm"), TextDelta("ok")]


def test_parallel_tool_calls_use_ids_when_sent_and_ordinals_otherwise() -> None:
    calls = [
        {"id": "call_abc", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}},
        {"function": {"index": 1, "name": "get_time", "arguments": {"tz": "CET", "utc": False}}},
    ]
    body = ndjson(
        chunk("Checking."),
        chunk(tool_calls=calls),
        chunk(tool_calls=[{"function": {"name": "noop", "arguments": {}}}]),
        done(prompt_eval_count=5, eval_count=9),
    )
    events = run(body)
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    ends = [e for e in events if isinstance(e, ToolCallEnd)]
    assert starts == [
        ToolCallStart(0, "call_abc", "get_weather"),
        ToolCallStart(1, "call_1", "get_time"),
        ToolCallStart(2, "call_2", "noop"),
    ]
    assert [e.arguments for e in ends] == [{"city": "Paris"}, {"tz": "CET", "utc": False}, {}]
    assert events[-1] == Finish("tool_calls", "stop")


def test_tool_call_in_the_done_line_and_string_arguments() -> None:
    final = done(prompt_eval_count=5, eval_count=9)
    final["message"]["tool_calls"] = [{"function": {"name": "f", "arguments": '{"x": 1}'}}]
    events = run(ndjson(final))
    assert [e for e in events if isinstance(e, ToolCallEnd)] == [ToolCallEnd(0, "call_0", "f", {"x": 1})]
    assert events[-1] == Finish("tool_calls", "stop")


@pytest.mark.parametrize(
    ("raw", "reason"), [("stop", "stop"), ("length", "length"), ("load", "other"), ("unload", "other")]
)
def test_done_reasons(raw: str, reason: str) -> None:
    assert run(ndjson(chunk("x"), done(raw, prompt_eval_count=1, eval_count=1)))[-1] == Finish(reason, raw)  # type: ignore[arg-type]


def test_a_missing_prompt_count_is_estimated() -> None:
    # A fully cached prompt has no prompt_eval_count; the output count is still real.
    usage = run(ndjson(chunk("hi"), done(eval_count=4)))[-2]
    assert usage == Usage(input_tokens=INPUT_ESTIMATE, output_tokens=4, estimated=True)


@pytest.mark.parametrize(
    ("text", "code", "retryable"),
    [
        ("an error was encountered while running the model", "server", False),
        ("server busy, please try again.  maximum pending requests exceeded", "overloaded", True),
        ("model 'nope' not found, try pulling it first", "not_found", False),
        ("input length exceeds the context length", "context_length", False),
        ("timed out waiting for llama runner to start", "timeout", True),
        ("you (user) have reached your hourly rate limit, please try again later", "rate_limited", True),
    ],
)
def test_in_band_error_classification(text: str, code: str, retryable: bool) -> None:
    assert classify(text) == (code, retryable)
    events = run(ndjson(chunk("partial"), {"error": text}))
    assert isinstance(events[-1], Error)
    assert (events[-1].code, events[-1].retryable, events[-1].status) == (code, retryable, None)


def test_error_as_first_line_has_no_start() -> None:
    events = run(ndjson({"error": "model failed"}))
    assert len(events) == 1
    assert isinstance(events[0], Error)
    assert events[0].code == "server"


# -- 2. any chunking gives the same events ------------------------------------------------


@pytest.mark.parametrize("name", STREAMS)
@given(data=st.data())
def test_resplitting_changes_nothing(name: str, data: st.DataObject) -> None:
    body = fixture_bytes(PROVIDER, name)
    cuts = data.draw(cut_points(body))
    assert decode(new_decoder, split(body, cuts)) == decode(new_decoder, [body])


def test_byte_at_a_time_changes_nothing() -> None:
    body = ndjson(chunk(thinking="é"), chunk("naïve ✓"), done(prompt_eval_count=1, eval_count=2))
    assert decode(new_decoder, [body[i : i + 1] for i in range(len(body))]) == decode(new_decoder, [body])


# -- 3. truncation, garbage and bad JSON ---------------------------------------------------


@pytest.mark.parametrize("name", STREAMS)
def test_every_truncation_ends_in_one_terminal_event(name: str) -> None:
    body = fixture_bytes(PROVIDER, name)
    last_line_end = body.rstrip().rfind(b"}") + 1  # the done (or error) line, newline optional
    ends_normally = b'"done":true' in body
    for n in range(len(body) + 1):
        events = decode(new_decoder, [body[:n]])
        check_invariants(events)
        last = events[-1]
        if n >= last_line_end:
            assert isinstance(last, Finish) == ends_normally, n
            if not ends_normally:
                assert isinstance(last, Error)
                assert last.code == "server"
        else:
            assert isinstance(last, Error), n
            assert last.code == "protocol", n


@pytest.mark.parametrize(
    "body",
    [
        b"\x00\xff\xfe garbage\n",
        b"<html>502 Bad Gateway</html>\n",
        b'{"model": "x", "message": {"content": "hi"\n',
        b"[1, 2, 3]\n",
        b'{"done": "yes"}\n',
        ndjson(chunk("fine")) + b"not json at all\n" + ndjson(done()),
    ],
)
def test_garbage_and_bad_json_are_protocol_errors(body: bytes) -> None:
    events = run(body)
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"
    assert not any(isinstance(e, Finish) for e in events)


@pytest.mark.parametrize("arguments", ['{"city": "Par', "[1, 2]", '"just a string"', "42"])
def test_tool_arguments_that_are_not_a_json_object_are_protocol_errors(arguments: str) -> None:
    body = ndjson(chunk(tool_calls=[{"function": {"name": "f", "arguments": arguments}}]), done())
    events = run(body)
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"
    assert not any(isinstance(e, ToolCallEnd) for e in events)


def test_empty_body_and_lines_without_done_never_finish() -> None:
    assert [type(e) for e in run(b"")] == [Error]
    events = run(ndjson(chunk("a"), chunk("b")))
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"
    assert isinstance(events[-2], Usage)
    assert events[-2].estimated


def test_nothing_is_read_after_the_done_line() -> None:
    body = ndjson(chunk("a"), done(prompt_eval_count=1, eval_count=1)) + b"trailing garbage"
    events = run(body)
    assert events[-1] == Finish("stop", "stop")


# -- 4. HTTP errors ------------------------------------------------------------------------


def http_error(status: int, body: bytes, headers: dict[str, str] | None = None) -> Error:
    return Ollama(api_key="sk-secret-key-123").map_error(status, headers or {}, body)


def test_documented_error_body() -> None:
    body = fixture_bytes(PROVIDER, "error_body.docs.json")
    err = http_error(500, body)
    assert (err.code, err.status, err.retryable, err.message) == (
        "server",
        500,
        True,
        "the model failed to generate a response",
    )


@pytest.mark.parametrize(
    ("status", "text", "headers", "code", "retryable", "retry_after"),
    [
        (404, "model 'llama9' not found, try pulling it first", {}, "not_found", False, None),
        (400, "invalid options: num_ctx", {}, "invalid_request", False, None),
        (400, "input length exceeds the context length", {}, "context_length", False, None),
        (401, "unauthorized", {}, "auth", False, None),
        (429, "too many requests", {"retry-after": "7"}, "rate_limited", True, 7.0),
        (500, "llama runner process has terminated", {}, "server", True, None),
        (503, "server busy, please try again.  maximum pending requests exceeded", {}, "overloaded", True, None),
    ],
)
def test_http_error_mapping(
    status: int, text: str, headers: dict[str, str], code: str, retryable: bool, retry_after: float | None
) -> None:
    err = http_error(status, json.dumps({"error": text}).encode(), headers)
    assert (err.code, err.status, err.retryable, err.retry_after, err.provider) == (
        code,
        status,
        retryable,
        retry_after,
        "ollama",
    )


def test_http_error_never_echoes_the_key() -> None:
    err = http_error(401, b'{"error": "invalid key sk-secret-key-123"}')
    assert "sk-secret-key-123" not in err.message
    assert err.code == "auth"


# -- 5. the request encoder ------------------------------------------------------------------

WEATHER = ToolSpec(
    "get_weather",
    "Weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
TIME = ToolSpec("get_time", "The time", {"type": "object", "properties": {}})


def test_encoder_full_shape() -> None:
    request = ChatRequest(
        model="ollama:llava",
        system="Be terse.",
        messages=[
            Message.user([TextPart("What is this?"), ImagePart(data="aGVsbG8=", media_type="image/png")]),
            Message.assistant(
                [
                    ReasoningPart("Looks like a word."),
                    TextPart("Let me check."),
                    ToolCallPart("call_0", "get_weather", {"city": "Tokyo"}),
                ]
            ),
            Message.tool("call_0", '{"temp": 21}'),
            Message.user([ImagePart(url="data:image/jpeg;base64,/9j/4AAQ")]),
        ],
        tools=[WEATHER],
        temperature=0.2,
        top_p=0.9,
        max_tokens=128,
        stop=["\n\n"],
        seed=42,
        response_format=ResponseFormat(schema={"type": "object"}),
        extra={"options": {"num_ctx": 8192}, "think": True, "keep_alive": "5m"},
    )
    assert encode_body(request, "llava") == {
        "model": "llava",
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "What is this?", "images": ["aGVsbG8="]},
            {
                "role": "assistant",
                "content": "Let me check.",
                "thinking": "Looks like a word.",
                "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Tokyo"}}}],
            },
            # The result names its tool, looked up from the call it answers.
            {"role": "tool", "content": '{"temp": 21}', "tool_name": "get_weather"},
            {"role": "user", "content": "", "images": ["/9j/4AAQ"]},
        ],
        "stream": True,
        "tools": [{"type": "function", "function": {"name": "get_weather", **_spec(WEATHER)}}],
        "options": {
            "temperature": 0.2,
            "top_p": 0.9,
            "num_predict": 128,
            "stop": ["\n\n"],
            "seed": 42,
            "num_ctx": 8192,
        },
        "format": {"type": "object"},
        "think": True,
        "keep_alive": "5m",
    }


def _spec(tool: ToolSpec) -> dict[str, Any]:
    return {"description": tool.description, "parameters": tool.parameters}


def test_encoder_minimal_and_json_mode() -> None:
    plain = encode_body(ChatRequest(model="ollama:m", messages=[Message.user("hi")]), "m")
    assert plain == {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    json_mode = ChatRequest(
        model="ollama:m", messages=[Message.user("hi")], response_format=ResponseFormat("json_object")
    )
    assert encode_body(json_mode, "m")["format"] == "json"
    text = ChatRequest(model="ollama:m", messages=[Message.user("hi")], response_format=ResponseFormat("text"))
    assert "format" not in encode_body(text, "m")


def test_extra_options_merge_and_system_messages() -> None:
    request = ChatRequest(
        model="ollama:m",
        messages=[Message.system("rules"), Message.user("hi")],
        temperature=0.5,
        extra={"options": {"temperature": 0.1, "num_ctx": 4096}},
    )
    body = encode_body(request, "m")
    assert body["options"] == {"temperature": 0.1, "num_ctx": 4096}
    assert body["messages"][0] == {"role": "system", "content": "rules"}


@pytest.mark.parametrize(
    ("choice", "names"),
    [
        (None, ["get_weather", "get_time"]),
        ("auto", ["get_weather", "get_time"]),
        ("none", []),
        (ToolChoice("get_time"), ["get_time"]),
    ],
)
def test_tool_choice_is_expressed_through_the_tool_list(choice: Any, names: list[str]) -> None:
    request = ChatRequest(model="ollama:m", messages=[Message.user("hi")], tools=[WEATHER, TIME], tool_choice=choice)
    body = encode_body(request, "m")
    assert [t["function"]["name"] for t in body.get("tools", [])] == names


def test_image_urls_cannot_be_encoded() -> None:
    request = ChatRequest(model="ollama:m", messages=[Message.user([ImagePart(url="https://example.com/cat.png")])])
    with pytest.raises(ConfigError, match="base64"):
        encode_body(request, "m")


def test_tool_loop_second_request_has_the_documented_shape() -> None:
    first = ChatRequest(model="ollama:llama3.2", messages=[Message.user("Weather in Tokyo?")], tools=[WEATHER])
    assert encode_body(first, "llama3.2")["tools"][0]["function"]["name"] == "get_weather"
    builder = ResponseBuilder()
    for event in run(fixture_bytes(PROVIDER, "chat_stream_tool_call.docs.ndjson")):
        builder.add(event)
    response = builder.build()
    assert response.finish_reason == "tool_calls"
    call = response.tool_calls[0]
    second = msgspec.structs.replace(
        first, messages=[*first.messages, response.message(), Message.tool(call.id, "22°C and sunny")]
    )
    messages = encode_body(second, "llama3.2")["messages"]
    assert messages[1:] == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Tokyo"}}}],
        },
        {"role": "tool", "content": "22°C and sunny", "tool_name": "get_weather"},
    ]


# -- the host and the provider -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("", "http://127.0.0.1:11434"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:11435", "http://127.0.0.1:11435"),
        ("::", "http://127.0.0.1:11434"),
        ("gpu-box", "http://gpu-box:11434"),
        ("gpu-box:8080", "http://gpu-box:8080"),
        ("[::1]:9000", "http://[::1]:9000"),
        ("http://gpu-box:8080/", "http://gpu-box:8080"),
        ("https://ollama.example.com", "https://ollama.example.com"),
        ("https://proxy.example.com/ollama/", "https://proxy.example.com/ollama"),
    ],
)
def test_ollama_host_normalisation(value: str, url: str) -> None:
    assert normalize_host(value) == url


@pytest.mark.parametrize("value", ["ftp://host", "host:notaport"])
def test_bad_hosts_are_config_errors(value: str) -> None:
    with pytest.raises(ConfigError):
        normalize_host(value)


def test_from_env_reads_ollama_host_and_needs_no_key() -> None:
    provider = create_provider("ollama", env={"OLLAMA_HOST": "0.0.0.0:9999"})
    assert isinstance(provider, Ollama)
    assert provider.base_url == "http://127.0.0.1:9999"
    request = provider.build_request(ChatRequest(model="ollama:m", messages=[Message.user("hi")]), "m")
    assert request.url == "http://127.0.0.1:9999/api/chat"
    assert "authorization" not in request.headers
    default = create_provider("ollama", env={})
    assert isinstance(default, Ollama)
    assert default.base_url == "http://127.0.0.1:11434"
    explicit = create_provider("ollama", base_url="http://other:1", env={"OLLAMA_HOST": "ignored"})
    assert isinstance(explicit, Ollama)
    assert explicit.base_url == "http://other:1"


def test_key_is_sent_as_bearer_and_never_shown() -> None:
    provider = Ollama(api_key="sk-hosted-ollama-key", base_url="https://ollama.example.com")
    request = provider.build_request(ChatRequest(model="ollama:m", messages=[Message.user("hi")]), "m")
    assert request.headers["authorization"] == "Bearer sk-hosted-ollama-key"
    assert "sk-hosted-ollama-key" not in repr(provider) + repr(request) + request.url


class _NoNetwork:
    """A transport that fails the test if anything tries to send."""

    @asynccontextmanager
    async def open(self, request: HttpRequest) -> AsyncIterator[HttpResponse]:
        raise AssertionError("no request should be sent")
        yield  # pragma: no cover

    async def aclose(self) -> None:
        pass


async def test_an_image_url_ends_as_one_error_without_network() -> None:
    request = ChatRequest(model="ollama:m", messages=[Message.user([ImagePart(url="https://x.test/a.png")])])
    events = [e async for e in Ollama().stream(request, "m", _NoNetwork())]
    assert len(events) == 1
    assert isinstance(events[0], Error)
    assert (events[0].code, events[0].retryable, events[0].provider) == ("invalid_request", False, "ollama")


# -- 6. end to end over a real socket ------------------------------------------------------------


@asynccontextmanager
async def engine_for(server: ReplayServer, api_key: str | None = "test-key") -> AsyncIterator[Engine]:
    provider = create_provider("ollama", api_key=api_key, base_url=server.url)
    async with Engine(providers={"ollama": provider}) as engine:
        yield engine


def request_for(model: str = "ollama:llama3.2") -> ChatRequest:
    return ChatRequest(model=model, messages=[Message.user("Weather in Tokyo?")], tools=[WEATHER], max_tokens=64)


@pytest.mark.parametrize("name", ["chat_stream_tool_call.docs.ndjson", "generate_stream_midstream_error.docs.ndjson"])
async def test_end_to_end_matches_the_decoder(name: str) -> None:
    body = fixture_bytes(PROVIDER, name)
    async with ReplayServer([Reply(body, headers=NDJSON, chunk_size=7)]) as server, engine_for(server) as engine:
        events = [e async for e in engine.stream(request_for())]
    expected = decode(
        lambda: OllamaDecoder(model="llama3.2", input_estimate=Ollama().input_estimate(request_for())), [body]
    )
    assert events == expected
    check_invariants(events)
    seen = server.requests[0]
    assert (seen.method, seen.path) == ("POST", "/api/chat")
    assert seen.headers["Authorization"] == "Bearer test-key"
    assert seen.headers["Content-Type"] == "application/json"
    sent = seen.json()
    assert sent["model"] == "llama3.2"
    assert sent["stream"] is True
    assert sent["options"] == {"num_predict": 64}
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert all("test-key" not in msgspec.json.encode(e).decode() for e in events)


async def test_end_to_end_without_a_key_sends_no_authorization() -> None:
    body = fixture_bytes(PROVIDER, "chat_stream_text.docs.ndjson")
    async with ReplayServer([Reply(body, headers=NDJSON)]) as server, engine_for(server, api_key=None) as engine:
        response = await engine.complete(request_for())
    assert response.text == "The"
    assert response.finish_reason == "stop"
    assert "Authorization" not in server.requests[0].headers


async def test_end_to_end_http_404_is_one_not_found_error() -> None:
    body = b'{"error":"model \'llama9\' not found, try pulling it first"}'
    reply = Reply(body, status=404, headers={"content-type": "application/json"})
    async with ReplayServer([reply]) as server, engine_for(server) as engine:
        events = [e async for e in engine.stream(request_for("ollama:llama9"))]
    assert len(events) == 1
    assert isinstance(events[0], Error)
    assert (events[0].code, events[0].status, events[0].retryable) == ("not_found", 404, False)


async def test_end_to_end_cut_connection_is_an_error_not_a_finish() -> None:
    body = fixture_bytes(PROVIDER, "chat_stream_tool_call.docs.ndjson")
    reply = Reply(body, headers=NDJSON, cut_after=len(body) - 20)
    async with ReplayServer([reply]) as server, engine_for(server) as engine:
        events = [e async for e in engine.stream(request_for())]
    check_invariants(events)
    assert isinstance(events[-1], Error)
    assert events[-1].code in ("connection", "protocol")
    assert any(isinstance(e, ToolCallEnd) for e in events)  # what arrived whole is kept
