"""OpenAI Chat Completions: recordings, re-splits, truncation, pitfalls, errors, encoder, end to end.

The decoder is driven from bytes alone: the recorded streams in
``tests/fixtures/openai_chat`` and streams built here from the documented chunk
shapes (``chat.completion.chunk`` objects in ``data:`` lines, ``data: [DONE]`` at
the end). The end-to-end tests send the same bytes through a real loopback HTTP
server and both transports.
"""

from __future__ import annotations

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
    ToolSpec,
    Usage,
    encode_event,
)
from lluminary.providers import HttpxTransport, create_provider
from lluminary.providers.openai import OpenAIChat, OpenAIChatDecoder, encode_body
from tests.support import ReplayServer, Reply, check_invariants, cut_points, decode, fixture_bytes, split

KEY = "sk-test-canary1234"
DONE = b"data: [DONE]\n\n"


def decoder() -> OpenAIChatDecoder:
    return OpenAIChatDecoder(model="gpt-4o-mini", input_estimate=12, secrets=(KEY,))


def run(body: bytes | list[bytes]) -> list[Event]:
    events = decode(decoder, [body] if isinstance(body, bytes) else body)
    check_invariants(events)
    return events


def sse(*chunks: dict[str, Any], done: bool = True) -> bytes:
    out = b"".join(b"data: " + msgspec.json.encode(c) + b"\n\n" for c in chunks)
    return out + (DONE if done else b"")


def chunk(
    delta: dict[str, Any] | None = None,
    finish: str | None = None,
    *,
    index: int = 0,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``chat.completion.chunk`` with one choice, as the API reference documents it."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": index, "delta": delta or {}, "logprobs": None, "finish_reason": finish}],
        "usage": usage,
    }


def usage_chunk(usage: dict[str, Any]) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m", "choices": [], "usage": usage}


def call(index: int, *, id: str | None = None, name: str | None = None, args: str | None = None) -> dict[str, Any]:
    fn: dict[str, Any] = {}
    if name is not None:
        fn["name"] = name
    if args is not None:
        fn["arguments"] = args
    out: dict[str, Any] = {"index": index, "function": fn}
    if id is not None:
        out |= {"id": id, "type": "function"}
    return out


USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
START = Start("chatcmpl-1", "openai", "gpt-4o-mini-2024-07-18")

# -- the recordings ----------------------------------------------------------------------

TEXT_ID = "chatcmpl-Dx0Xq5Xx9rHB2ehcHZCRDsnuymUXc"
TOOL_ID = "chatcmpl-Dx0XpqH8w09uBXwq1zFGYdETjtnEl"
CALL_ID = "call_ZR5UUuTt3pf61kjwAJIYdVMj"
EXPECTED: dict[str, list[Event]] = {
    "text_stream_include_usage.sse": [
        Start(TEXT_ID, "openai", "gpt-4o-mini-2024-07-18"),
        *(TextDelta(t) for t in ["The", " capital", " of", " the", " UK", " is", " London", "."]),
        Usage(input_tokens=78, output_tokens=9),
        Finish("stop", "stop"),
    ],
    "text_stream_moderation_extension.sse": [
        Start("chatcmpl-E4Rjs6IxaJVge9Ntk5keJsaeDy6vS", "openai", "gpt-5-2025-08-07"),
        TextDelta("Paris"),
        TextDelta("."),
        Usage(input_tokens=13, output_tokens=11),
        Finish("stop", "stop"),
    ],
    "tool_call_stream_include_usage.sse": [
        Start(TOOL_ID, "openai", "gpt-4o-mini-2024-07-18"),
        ToolCallStart(0, CALL_ID, "get_capital"),
        *(ToolArgsDelta(0, d) for d in ['{"', "country", '":"', "UK", '"}']),
        ToolCallEnd(0, CALL_ID, "get_capital", {"country": "UK"}),
        Usage(input_tokens=53, output_tokens=15),
        Finish("tool_calls", "tool_calls"),
    ],
}
RECORDINGS = sorted(EXPECTED)


def body_of(name: str) -> bytes:
    return fixture_bytes("openai_chat", name)


@pytest.mark.parametrize("name", RECORDINGS)
def test_recording_decodes_to_exactly_the_right_events(name: str) -> None:
    assert run(body_of(name)) == EXPECTED[name]


@pytest.mark.parametrize("name", RECORDINGS)
@given(data=st.data())
def test_recording_split_anywhere_gives_the_same_events(name: str, data: st.DataObject) -> None:
    body = body_of(name)
    assert run(split(body, data.draw(cut_points(body)))) == EXPECTED[name]


@pytest.mark.parametrize("name", RECORDINGS)
def test_recording_fed_one_byte_at_a_time(name: str) -> None:
    body = body_of(name)
    assert run([body[i : i + 1] for i in range(len(body))]) == EXPECTED[name]


@pytest.mark.parametrize("name", RECORDINGS)
def test_recording_cut_at_every_byte_ends_in_one_error_unless_done_arrived(name: str) -> None:
    body = body_of(name)
    complete = body.index(b"data: [DONE]") + len(b"data: [DONE]")
    full = EXPECTED[name]
    content = [e for e in full if not isinstance(e, (Usage, Finish))]
    for n in range(len(body) + 1):
        events = run(body[:n])
        if n >= complete:
            assert events == full, n
            continue
        last = events[-1]
        assert isinstance(last, Error), n
        assert (last.code, last.retryable, last.provider) == ("protocol", False, "openai"), n
        # What came before the error is a prefix of the real stream, never invented.
        got = [e for e in events[:-1] if not isinstance(e, Usage)]
        assert got == content[: len(got)], n


@pytest.mark.parametrize("name", RECORDINGS)
@given(data=st.data())
def test_corrupted_recording_ends_cleanly_however_it_is_split(name: str, data: st.DataObject) -> None:
    # Decoders never raise or hang: any bytes end in exactly one terminal event
    # (``run`` checks the invariants), and the split still does not matter.
    body = body_of(name)
    at = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    junk = data.draw(st.binary(min_size=1, max_size=8))
    corrupted = body[:at] + junk + body[at + len(junk) :]
    assert run(split(corrupted, data.draw(cut_points(corrupted)))) == run(corrupted)


@given(st.binary(max_size=300))
def test_random_bytes_never_raise(body: bytes) -> None:
    events = run(body)
    assert isinstance(events[-1], Error)


def test_moderation_extension_chunk_is_tolerated() -> None:
    # The recording's last chunk before [DONE] has choices: [] and a big unknown
    # "moderation" object; it must neither fail nor add events.
    body = body_of("text_stream_moderation_extension.sse")
    without = body.replace(body.split(b"\n\n")[-3] + b"\n\n", b"")
    assert b"moderation" in body
    assert b"moderation" not in without
    assert run(body) == run(without)


# -- garbage, bad JSON and cuts ---------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"data: {not json}\n\n" + DONE,
        b"data: [1, 2]\n\n" + DONE,
        b'data: {"choices": "nope"}\n\n' + DONE,
        b"\x00\xff\xfe garbage without any structure\n\n",
        b"<html>502 Bad Gateway</html>",
        b"event: \xff\n\n",
    ],
)
def test_garbage_is_a_protocol_error(body: bytes) -> None:
    events = run(body)
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"
    assert not any(isinstance(e, Finish) for e in events)


def test_no_done_means_no_finish() -> None:
    # Every chunk arrived, finish_reason too; only [DONE] is missing (the openai SDK
    # ends such a stream quietly). It is a protocol error, after usage.
    events = run(sse(chunk({"content": "Hi"}), chunk(finish="stop"), usage_chunk(USAGE), done=False))
    assert events == [
        START,
        TextDelta("Hi"),
        Usage(input_tokens=10, output_tokens=5),
        Error("protocol", "the stream ended before the provider's end marker", provider="openai"),
    ]


def test_bad_tool_argument_json_is_a_protocol_error_never_a_half_call() -> None:
    body = sse(
        chunk({"tool_calls": [call(0, id="call_1", name="run", args="")]}),
        chunk({"tool_calls": [call(0, args='{"command": "rm -rf /tmp/x')]}),
        chunk(finish="tool_calls"),
    )
    events = run(body)
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"
    assert "run" in events[-1].message
    assert not any(isinstance(e, ToolCallEnd) for e in events)


def test_done_with_whitespace_and_after_done_is_ignored() -> None:
    events = run(sse(chunk({"content": "ok"}), chunk(finish="stop"), done=False) + b"data: [DONE] \n\ndata: junk\n\n")
    assert [type(e) for e in events] == [Start, TextDelta, Usage, Finish]


# -- documented shapes and the pitfalls ------------------------------------------------------


def test_in_band_error_after_200() -> None:
    error = {"error": {"message": "The server had an error while processing your request.", "type": "server_error"}}
    events = run(sse(chunk({"content": "Par"}), error, done=False))
    assert events[:2] == [START, TextDelta("Par")]
    assert isinstance(events[2], Usage)
    assert events[2].estimated
    assert events[3] == Error(
        "server", "The server had an error while processing your request.", retryable=True, provider="openai"
    )


@pytest.mark.parametrize(
    ("error", "code", "retryable"),
    [
        ({"message": "Rate limit reached", "type": "tokens", "code": "rate_limit_exceeded"}, "rate_limited", True),
        (
            {"message": "too long", "type": "invalid_request_error", "code": "context_length_exceeded"},
            "context_length",
            False,
        ),
        ({"message": "flagged", "type": "invalid_request_error", "code": "content_filter"}, "content_filter", False),
        ({"message": "odd", "type": "something_new"}, "server", True),
    ],
)
def test_in_band_error_codes(error: dict[str, Any], code: str, retryable: bool) -> None:
    events = run(sse({"error": error}, done=False))
    assert events == [Error(code, error["message"], retryable=retryable, provider="openai")]  # type: ignore[arg-type]


def test_vllm_flat_error_object() -> None:
    body = sse(
        {"object": "error", "message": "maximum context length exceeded", "type": "BadRequestError", "code": 400}
    )
    events = run(body)
    assert isinstance(events[-1], Error)
    assert events[-1].message == "maximum context length exceeded"
    assert not any(isinstance(e, Finish) for e in events)


def test_in_band_error_redacts_the_key() -> None:
    events = run(sse({"error": {"message": f"Incorrect API key provided: {KEY}", "type": "invalid_request_error"}}))
    assert KEY not in events[-1].message  # type: ignore[union-attr]


def test_refusal_deltas() -> None:
    body = sse(
        chunk({"role": "assistant", "content": None, "refusal": ""}),
        chunk({"refusal": "I'm sorry, "}),
        chunk({"refusal": "I can't help with that."}),
        chunk(finish="stop"),
        usage_chunk(USAGE),
    )
    assert run(body) == [
        START,
        RefusalDelta("I'm sorry, "),
        RefusalDelta("I can't help with that."),
        Usage(input_tokens=10, output_tokens=5),
        Finish("stop", "stop"),
    ]


def test_reasoning_from_compatible_servers() -> None:
    body = sse(
        chunk({"reasoning_content": "Think"}),  # vLLM, DeepSeek
        chunk({"reasoning": "ing."}),  # OpenRouter, Ollama
        chunk({"content": "Answer"}),
        chunk(finish="stop"),
    )
    events = run(body)
    assert events[1:4] == [ReasoningDelta("Think"), ReasoningDelta("ing."), TextDelta("Answer")]


def test_parallel_tool_calls_interleaved() -> None:
    body = sse(
        chunk({"role": "assistant", "content": None, "tool_calls": [call(0, id="call_a", name="weather", args="")]}),
        chunk({"tool_calls": [call(1, id="call_b", name="time", args="")]}),
        chunk({"tool_calls": [call(0, args='{"city":')]}),
        chunk({"tool_calls": [call(1, args='{"tz": "UTC"}')]}),
        chunk({"tool_calls": [call(0, args=' "Paris"}')]}),
        chunk(finish="tool_calls"),
        usage_chunk(USAGE),
    )
    assert run(body) == [
        START,
        ToolCallStart(0, "call_a", "weather"),
        ToolCallStart(1, "call_b", "time"),
        ToolArgsDelta(0, '{"city":'),
        ToolArgsDelta(1, '{"tz": "UTC"}'),
        ToolArgsDelta(0, ' "Paris"}'),
        ToolCallEnd(0, "call_a", "weather", {"city": "Paris"}),
        ToolCallEnd(1, "call_b", "time", {"tz": "UTC"}),
        Usage(input_tokens=10, output_tokens=5),
        Finish("tool_calls", "tool_calls"),
    ]


def test_two_calls_in_one_chunk_with_vendor_indexes_not_from_zero() -> None:
    body = sse(
        chunk({"tool_calls": [call(3, id="c3", name="a", args="{}"), call(5, id="c5", name="b", args='{"x":1}')]}),
        chunk(finish="tool_calls"),
    )
    ends = [e for e in run(body) if isinstance(e, ToolCallEnd)]
    assert ends == [ToolCallEnd(0, "c3", "a", {}), ToolCallEnd(1, "c5", "b", {"x": 1})]


def test_an_empty_first_tool_chunk_does_not_fire_a_call() -> None:
    body = sse(
        chunk({"tool_calls": [call(0, id="call_1")]}),  # id only: no name, no arguments
        chunk({"tool_calls": [call(0, name="lookup")]}),
        chunk({"tool_calls": [call(0, args='{"q": "x"}')]}),
        chunk(finish="tool_calls"),
    )
    tool_events = [e for e in run(body) if isinstance(e, (ToolCallStart, ToolArgsDelta, ToolCallEnd))]
    assert tool_events == [
        ToolCallStart(0, "call_1", "lookup"),
        ToolArgsDelta(0, '{"q": "x"}'),
        ToolCallEnd(0, "call_1", "lookup", {"q": "x"}),
    ]


def test_a_tool_call_without_arguments_gives_empty_object() -> None:
    body = sse(chunk({"tool_calls": [call(0, id="call_1", name="now", args="")]}), chunk(finish="tool_calls"))
    tool_events = [e for e in run(body) if isinstance(e, (ToolCallStart, ToolArgsDelta, ToolCallEnd))]
    assert tool_events == [
        ToolCallStart(0, "call_1", "now"),
        ToolArgsDelta(0, "{}"),
        ToolCallEnd(0, "call_1", "now", {}),
    ]


def test_tool_name_kept_when_one_chunk_carries_text_and_a_tool_call() -> None:
    body = sse(
        chunk({"content": "Let me check.", "tool_calls": [call(0, id="call_1", name="search", args='{"q":')]}),
        chunk({"tool_calls": [call(0, args=' "cats"}')]}),
        chunk(finish="tool_calls"),
    )
    events = run(body)
    assert events[1:3] == [TextDelta("Let me check."), ToolCallStart(0, "call_1", "search")]
    assert ToolCallEnd(0, "call_1", "search", {"q": "cats"}) in events


def test_whole_calls_without_index_are_told_apart_by_id() -> None:
    # Some compatible servers leave ``index`` out and send each call whole.
    body = sse(
        chunk({"tool_calls": [{"id": "c1", "type": "function", "function": {"name": "a", "arguments": '{"n":1}'}}]}),
        chunk({"tool_calls": [{"id": "c2", "type": "function", "function": {"name": "b", "arguments": '{"n":2}'}}]}),
        chunk(finish="tool_calls"),
    )
    ends = [e for e in run(body) if isinstance(e, ToolCallEnd)]
    assert ends == [ToolCallEnd(0, "c1", "a", {"n": 1}), ToolCallEnd(1, "c2", "b", {"n": 2})]


def test_arguments_sent_as_an_object_and_a_null_index() -> None:
    # Off-spec but seen from compatible servers: the object itself, and "index": null.
    whole = {"index": None, "id": "c1", "type": "function", "function": {"name": "f", "arguments": {"n": 1}}}
    events = run(sse(chunk({"tool_calls": [whole]}), chunk(finish="tool_calls")))
    assert events[1:4] == [
        ToolCallStart(0, "c1", "f"),
        ToolArgsDelta(0, '{"n":1}'),
        ToolCallEnd(0, "c1", "f", {"n": 1}),
    ]


def test_tool_calls_end_at_finish_reason_not_at_done() -> None:
    decoder_ = decoder()
    first = decoder_.feed(
        sse(chunk({"tool_calls": [call(0, id="c", name="f", args="{}")]}), chunk(finish="tool_calls"), done=False)
    )
    assert isinstance(first[-1], ToolCallEnd)


def test_usage_on_a_final_chunk_that_also_has_choices_is_kept() -> None:
    usage = {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 192, "audio_tokens": 0},
    }
    events = run(sse(chunk({"content": "Hi"}), chunk(finish="stop", usage=usage)))
    assert events[-2:] == [
        Usage(input_tokens=86, output_tokens=300, cache_read_tokens=1920, reasoning_tokens=192),
        Finish("stop", "stop"),
    ]


def test_deepseek_cache_hit_tokens() -> None:
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 7,
        "prompt_cache_hit_tokens": 64,
        "prompt_cache_miss_tokens": 36,
    }
    events = run(sse(chunk({"content": "Hi"}), chunk(finish="stop"), usage_chunk(usage)))
    assert events[-2] == Usage(input_tokens=36, output_tokens=7, cache_read_tokens=64)


def test_missing_usage_is_estimated_before_finish() -> None:
    # No stream_options.include_usage (or a server that ignores it).
    events = run(sse(chunk({"content": "Hello there, friend"}), chunk(finish="length")))
    assert events[-2:] == [Usage(input_tokens=12, output_tokens=5, estimated=True), Finish("length", "length")]


def test_azure_prompt_filter_chunk_is_not_the_start() -> None:
    azure = {"choices": [], "created": 0, "id": "", "model": "", "object": "", "prompt_filter_results": []}
    events = run(sse(azure, chunk({"content": "Hi"}), chunk(finish="content_filter")))
    assert events[0] == START
    assert events[-1] == Finish("content_filter", "content_filter")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("stop", "stop"), ("length", "length"), ("tool_calls", "tool_calls"), ("function_call", "tool_calls"),
     ("content_filter", "content_filter"), ("something_new", "other")],
)  # fmt: skip
def test_finish_reasons(raw: str, reason: str) -> None:
    assert run(sse(chunk({"content": "x"}), chunk(finish=raw)))[-1] == Finish(reason, raw)  # type: ignore[arg-type]


def test_done_without_finish_reason_still_finishes() -> None:
    assert run(sse(chunk({"content": "x"})))[-1] == Finish("other", None)


def test_several_choices_keep_their_index() -> None:
    body = sse(chunk({"content": "A"}, index=0), chunk({"content": "B"}, index=1), chunk(finish="stop"))
    assert [e for e in run(body) if isinstance(e, TextDelta)] == [TextDelta("A", 0), TextDelta("B", 1)]


def run_resplit(body: bytes) -> list[Event]:
    """Decode ``body`` whole, then byte by byte: the events must not change."""
    events = run(body)
    assert run([body[i : i + 1] for i in range(len(body))]) == events
    return events


def test_legacy_function_call_is_one_tool_call() -> None:
    # The deprecated ``functions`` API: ``delta.function_call`` (name, then argument
    # text; no id, no index) and finish reason ``function_call``. API reference,
    # chat.completion.chunk: "function_call: Deprecated and replaced by tool_calls".
    body = sse(
        chunk({"role": "assistant", "content": None, "function_call": {"name": "get_weather", "arguments": ""}}),
        chunk({"function_call": {"arguments": '{"city":'}}),
        chunk({"function_call": {"arguments": ' "Paris"}'}}),
        chunk(finish="function_call"),
        usage_chunk(USAGE),
    )
    assert run_resplit(body) == [
        START,
        ToolCallStart(0, "call_0", "get_weather"),
        ToolArgsDelta(0, '{"city":'),
        ToolArgsDelta(0, ' "Paris"}'),
        ToolCallEnd(0, "call_0", "get_weather", {"city": "Paris"}),
        Usage(input_tokens=10, output_tokens=5),
        Finish("tool_calls", "function_call"),
    ]


def test_text_and_a_legacy_function_call_in_one_chunk_keep_both() -> None:
    # The text fast path must not swallow a call riding on the same delta (LiteLLM #18238's shape).
    body = sse(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Checking.", "function_call": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}),
        chunk(finish="function_call"),
        usage_chunk(USAGE),
    )
    assert run_resplit(body) == [
        START,
        TextDelta("Checking."),
        ToolCallStart(0, "call_0", "get_weather"),
        ToolArgsDelta(0, '{"city": "Paris"}'),
        ToolCallEnd(0, "call_0", "get_weather", {"city": "Paris"}),
        Usage(input_tokens=10, output_tokens=5),
        Finish("tool_calls", "function_call"),
    ]


def test_legacy_function_call_truncated_json_is_a_protocol_error() -> None:
    body = sse(chunk({"function_call": {"name": "f", "arguments": '{"a":'}}), chunk(finish="function_call"))
    events = run_resplit(body)
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"
    assert not any(isinstance(e, ToolCallEnd) for e in events)


def test_insufficient_quota_in_band_is_not_retryable() -> None:
    # Same meaning as the HTTP 429 of this type: waiting adds no credit.
    err = {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}
    events = run_resplit(sse(chunk({"content": "Hi"}), {"error": err}, done=False))
    assert events[-1] == Error("rate_limited", "You exceeded your current quota", retryable=False, provider="openai")


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [(429, "rate_limited", True), (502, "server", True), (503, "overloaded", True), (400, "invalid_request", False)],
)
def test_in_band_error_with_an_http_status_as_its_code(status: int, code: str, retryable: bool) -> None:
    # Proxies (OpenRouter, LiteLLM) relay an upstream failure as {"error": {"code": <status>, …}}.
    body = sse(chunk({"content": "Hi"}), {"error": {"code": status, "message": "Provider returned error"}}, done=False)
    assert run_resplit(body)[-1] == Error(code, "Provider returned error", retryable=retryable, provider="openai")  # type: ignore[arg-type]


def test_flat_error_object_under_event_error() -> None:
    body = b'event: error\ndata: {"message": "upstream failed", "type": "server_error"}\n\n'
    assert run_resplit(sse(chunk({"content": "Hi"}), done=False) + body)[-1] == Error(
        "server", "upstream failed", retryable=True, provider="openai"
    )


def test_role_only_and_empty_chunks_add_nothing() -> None:
    body = sse(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hi"}),
        chunk({"content": ""}),
        chunk({}),
        chunk(finish="stop"),
        usage_chunk(USAGE),
    )
    assert run_resplit(body) == [
        START,
        TextDelta("Hi"),
        Usage(input_tokens=10, output_tokens=5),
        Finish("stop", "stop"),
    ]


# -- HTTP errors ---------------------------------------------------------------------------


def load_error(name: str) -> tuple[int, bytes]:
    data = msgspec.json.decode(body_of(name))
    if "http_status" in data:
        return data["http_status"], msgspec.json.encode(data["body"])
    return 400, body_of(name)  # SOURCES.md: status not stored; 400 per OpenAI's docs


PROVIDER = OpenAIChat(api_key=KEY)


@pytest.mark.parametrize(
    ("name", "status", "code", "message"),
    [
        ("error_400_unsupported_parameter.json", 400, "invalid_request", "Unsupported parameter: 'max_tokens'"),
        ("error_400_unsupported_value.json", 400, "invalid_request", "Unsupported value: 'messages[0].role'"),
        ("error_404_model_not_found.json", 404, "not_found", "The model `gpt-5.2-proo` does not exist"),
    ],
)
def test_error_fixtures(name: str, status: int, code: str, message: str) -> None:
    got_status, body = load_error(name)
    assert got_status == status
    event = PROVIDER.map_error(status, {"content-type": "application/json"}, body)
    assert (event.code, event.status, event.retryable, event.provider, event.retry_after) == (
        code, status, False, "openai", None,
    )  # fmt: skip
    assert event.message.startswith(message)


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [
        (429, {"retry-after": "7"}, {"message": "Rate limit reached", "type": "requests",
         "code": "rate_limit_exceeded"}, ("rate_limited", True, 7.0)),
        (429, {"retry-after-ms": "1500"}, {"message": "Rate limit", "type": "tokens"}, ("rate_limited", True, 1.5)),
        (429, {"retry-after": "20"}, {"message": "You exceeded your current quota", "type": "insufficient_quota",
         "code": "insufficient_quota"}, ("rate_limited", False, 20.0)),
        (500, {}, {"message": "The server had an error", "type": "server_error"}, ("server", True, None)),
        (503, {}, {"message": "The engine is currently overloaded", "type": "server_error"},
         ("overloaded", True, None)),
        (401, {}, {"message": "Missing bearer or basic authentication in header", "type": "invalid_request_error"},
         ("auth", False, None)),
        # By the message alone (compatible servers send no code), and by the code alone.
        (400, {}, {"message": "This model's maximum context length is 128000 tokens. However, you requested 130000.",
         "type": "invalid_request_error"}, ("context_length", False, None)),
        (400, {}, {"message": "Please reduce the length of the messages.", "type": "invalid_request_error",
         "code": "context_length_exceeded"}, ("context_length", False, None)),
    ],
)  # fmt: skip
def test_http_status_mapping(
    status: int, headers: dict[str, str], body: dict[str, Any], expected: tuple[str, bool, float | None]
) -> None:
    event = PROVIDER.map_error(status, headers, msgspec.json.encode({"error": body}))
    assert (event.code, event.retryable, event.retry_after) == expected
    assert event.status == status
    assert event.message == body["message"]


@pytest.mark.parametrize("value", ["-1", "inf", "nan", "Wed, 21 Oct 2015 07:28:00 GMT", str(10**9), "soon"])
def test_absurd_retry_after_does_not_crash(value: str) -> None:
    event = PROVIDER.map_error(429, {"retry-after": value}, b"")
    assert event.code == "rate_limited"
    assert event.retry_after is None or 0.0 <= event.retry_after <= 3600.0


def test_401_echoing_the_key_is_redacted() -> None:
    body = {"error": {"message": f"Incorrect API key provided: {KEY}.", "type": "invalid_request_error",
                      "code": "invalid_api_key"}}  # fmt: skip
    event = PROVIDER.map_error(401, {}, msgspec.json.encode(body))
    assert (event.code, event.retryable) == ("auth", False)
    assert KEY not in event.message
    assert "canary1234" not in repr(event)


# -- the request encoder ------------------------------------------------------------------

WEATHER = ToolSpec(
    "get_weather",
    "Current weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def test_minimal_body() -> None:
    body = encode_body(ChatRequest("openai:gpt-4o-mini", [Message.user("Hi")]), "gpt-4o-mini", official=True)
    assert body == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_full_body_with_every_parameter() -> None:
    request = ChatRequest(
        "openai:gpt-4o",
        [
            Message.system("Be brief."),
            Message.user([TextPart("What is in this image?"), ImagePart(url="https://example.com/cat.png")]),
            Message.assistant("A cat."),
            Message.user([TextPart("And this?"), ImagePart(data="iVBORw0KGgo=", media_type="image/jpeg")]),
        ],
        system="You are helpful.",
        tools=[WEATHER],
        tool_choice="required",
        temperature=0.2,
        top_p=0.9,
        max_tokens=256,
        stop=["\n\n", "END"],
        seed=42,
        response_format=ResponseFormat("json_schema", {"type": "object"}, name="answer"),
        extra={"reasoning_effort": "low", "temperature": 0.3},
    )
    body = encode_body(request, "gpt-4o", official=True)
    assert body == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            ]},
            {"role": "assistant", "content": "A cat."},
            {"role": "user", "content": [
                {"type": "text", "text": "And this?"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,iVBORw0KGgo="}},
            ]},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Current weather for a city", "parameters": WEATHER.parameters,
        }}],
        "tool_choice": "required",
        "temperature": 0.3,  # extra is merged last and wins
        "top_p": 0.9,
        "max_completion_tokens": 256,
        "stop": ["\n\n", "END"],
        "seed": 42,
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "answer", "strict": True, "schema": {"type": "object"},
        }},
        "reasoning_effort": "low",
    }  # fmt: skip


def test_compatible_servers_get_max_tokens() -> None:
    request = ChatRequest("openai:llama", [Message.user("Hi")], max_tokens=64)
    assert encode_body(request, "llama", official=False)["max_tokens"] == 64
    assert "max_completion_tokens" not in encode_body(request, "llama", official=False)
    compat = OpenAIChat(base_url="http://localhost:8000/v1")
    official = OpenAIChat(api_key=KEY)
    assert msgspec.json.decode(compat.build_request(request, "llama").body)["max_tokens"] == 64
    assert msgspec.json.decode(official.build_request(request, "llama").body)["max_completion_tokens"] == 64


@pytest.mark.parametrize(
    ("choice", "encoded"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        (ToolChoice("get_weather"), {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_tool_choice(choice: Any, encoded: Any) -> None:
    request = ChatRequest("openai:m", [Message.user("Hi")], tools=[WEATHER], tool_choice=choice)
    assert encode_body(request, "m", official=True)["tool_choice"] == encoded


@pytest.mark.parametrize(
    ("fmt", "encoded"),
    [
        (ResponseFormat("json_object"), {"type": "json_object"}),
        (ResponseFormat("text"), {"type": "text"}),
        (ResponseFormat("json_schema", name="x", strict=False),
         {"type": "json_schema", "json_schema": {"name": "x", "strict": False}}),
    ],
)  # fmt: skip
def test_response_format(fmt: ResponseFormat, encoded: dict[str, Any]) -> None:
    request = ChatRequest("openai:m", [Message.user("Hi")], response_format=fmt)
    assert encode_body(request, "m", official=True)["response_format"] == encoded


def test_history_with_tool_calls_results_and_reasoning() -> None:
    request = ChatRequest(
        "openai:m",
        [
            Message.user("Weather in Paris and Rome?"),
            Message.assistant([
                ReasoningPart("I should call the tool twice.", signature="sig"),
                TextPart("Checking."),
                ToolCallPart("call_1", "get_weather", {"city": "Paris"}),
                ToolCallPart("call_2", "get_weather", {"city": "Rome"}),
            ]),
            Message.tool("call_1", "18C", name="get_weather"),
            Message.tool("call_2", "boom", is_error=True),
            Message.assistant([]),
            Message.user("Thanks"),
        ],
    )  # fmt: skip
    assert encode_body(request, "m", official=True)["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "boom"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "Thanks"},
    ]  # fmt: skip


def test_two_step_tool_loop() -> None:
    first = ChatRequest(
        "openai:gpt-4o-mini", [Message.user("What is the capital of the UK?")], tools=[WEATHER], tool_choice="auto"
    )
    first_body = encode_body(first, "gpt-4o-mini", official=True)
    assert first_body["tools"][0]["function"]["name"] == "get_weather"
    builder = ResponseBuilder()
    for event in run(body_of("tool_call_stream_include_usage.sse")):
        builder.add(event)
    response = builder.build()
    assert response.finish_reason == "tool_calls"
    [tool_call] = response.tool_calls
    second = msgspec.structs.replace(
        first, messages=[*first.messages, response.message(), Message.tool(tool_call.id, "London")]
    )
    assert encode_body(second, "gpt-4o-mini", official=True)["messages"] == [
        {"role": "user", "content": "What is the capital of the UK?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": CALL_ID, "type": "function", "function": {"name": "get_capital", "arguments": '{"country":"UK"}'}},
        ]},
        {"role": "tool", "tool_call_id": CALL_ID, "content": "London"},
    ]  # fmt: skip


def test_build_request_url_headers_and_no_key_in_repr() -> None:
    provider = OpenAIChat(api_key=KEY, headers={"OpenAI-Organization": "org-1"})
    http = provider.build_request(ChatRequest("openai:m", [Message.user("Hi")]), "m")
    assert (http.method, http.url) == ("POST", "https://api.openai.com/v1/chat/completions")
    assert http.headers["authorization"] == f"Bearer {KEY}"
    assert http.headers["OpenAI-Organization"] == "org-1"
    assert http.headers["content-type"] == "application/json"
    assert KEY not in repr(provider)
    assert KEY not in repr(http)
    assert KEY not in http.url


def test_compatible_server_needs_no_key() -> None:
    provider = create_provider("openai", base_url="http://localhost:8000/v1/", env={})
    http = provider.build_request(ChatRequest("openai:m", [Message.user("Hi")]), "m")  # type: ignore[attr-defined]
    assert http.url == "http://localhost:8000/v1/chat/completions"
    assert "authorization" not in http.headers


# -- end to end ---------------------------------------------------------------------------------


def engine_for(server: ReplayServer, **kwargs: Any) -> Engine:
    provider = create_provider("openai", api_key=KEY, base_url=server.url + "/v1")
    return Engine(providers={"openai": provider}, **kwargs)


REQUEST = ChatRequest("openai:gpt-4o-mini", [Message.user("What is the capital of the UK?")], max_tokens=100)


async def collect(engine: Engine, request: ChatRequest = REQUEST) -> list[Event]:
    async with engine.stream(request) as stream:
        return [event async for event in stream]


def assert_no_key(events: list[Event]) -> None:
    assert KEY not in b"".join(encode_event(e) for e in events).decode()


@pytest.mark.parametrize("name", RECORDINGS)
async def test_end_to_end(name: str) -> None:
    async with ReplayServer([Reply(body_of(name), chunk_size=97)]) as server, engine_for(server) as engine:
        events = await collect(engine)
    assert events == EXPECTED[name]
    assert_no_key(events)
    [seen] = server.requests
    assert (seen.method, seen.path, seen.query) == ("POST", "/v1/chat/completions", "")
    headers = {k.lower(): v for k, v in seen.headers.items()}
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["content-type"] == "application/json"
    body = seen.json()
    assert body["model"] == "gpt-4o-mini"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [{"role": "user", "content": "What is the capital of the UK?"}]
    assert body["max_tokens"] == 100  # a base URL of our own is a compatible server


async def test_end_to_end_through_httpx() -> None:
    name = "tool_call_stream_include_usage.sse"
    transport = HttpxTransport()
    try:
        async with (
            ReplayServer([Reply(body_of(name), chunk_size=50)]) as server,
            engine_for(server, transport=transport) as engine,
        ):
            events = await collect(engine)
    finally:
        await transport.aclose()
    assert events == EXPECTED[name]
    assert_no_key(events)
    assert server.requests[0].path == "/v1/chat/completions"
    assert {k.lower(): v for k, v in server.requests[0].headers.items()}["authorization"] == f"Bearer {KEY}"


async def test_slow_drip_gives_identical_events() -> None:
    name = "tool_call_stream_include_usage.sse"
    async with ReplayServer([Reply(body_of(name), chunk_size=1)]) as server, engine_for(server) as engine:
        events = await collect(engine)
    assert events == EXPECTED[name]


async def test_http_429_through_the_engine() -> None:
    body = msgspec.json.encode({"error": {"message": f"Rate limit reached for {KEY}", "type": "requests",
                                          "code": "rate_limit_exceeded"}})  # fmt: skip
    reply = Reply(body, status=429, headers={"content-type": "application/json", "retry-after": "7"})
    async with ReplayServer([reply]) as server, engine_for(server) as engine:
        events = await collect(engine)
    assert len(events) == 1
    error = events[0]
    assert isinstance(error, Error)
    assert (error.code, error.status, error.retry_after, error.retryable) == ("rate_limited", 429, 7.0, True)
    assert_no_key(events)


async def test_connection_cut_mid_stream_is_an_error_not_a_finish() -> None:
    body = body_of("text_stream_include_usage.sse")
    async with ReplayServer([Reply(body, cut_after=len(body) // 2)]) as server, engine_for(server) as engine:
        events = await collect(engine)
    check_invariants(events)
    assert isinstance(events[-1], Error)
    assert events[-1].code in ("connection", "protocol")
    assert not any(isinstance(e, Finish) for e in events)
