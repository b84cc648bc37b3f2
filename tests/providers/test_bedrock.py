"""Bedrock: recorded ConverseStream bodies, constructed edge cases, errors, the encoder, SigV4, end to end.

Streams no recording covers (exceptions of every type, cache usage, signed
reasoning, parallel and broken tool calls) are built with the test-only event
stream encoder from test_eventstream.py, from the shapes in the ConverseStream
API reference. Every test that constructs a provider passes explicit
credentials or an explicit ``env``, so botocore's credential chain never runs
against the real machine (and never probes the instance metadata endpoint);
the one chain test points it at a temporary credentials file.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import httpx
import msgspec
import pytest
import yarl
from hypothesis import given, settings
from hypothesis import strategies as st

from lluminary import Engine
from lluminary.errors import ConfigError, MissingKeyError
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
from lluminary.providers import create_provider
from lluminary.providers.bedrock import (
    AwsCredentials,
    Bedrock,
    BedrockConverseDecoder,
    BedrockDecoder,
    encode_body,
    model_path,
)
from tests.providers.test_eventstream import (
    RECORDINGS,
    encode_frame,
    encode_header,
    event_frame,
    exception_frame,
    recording,
)
from tests.support import ReplayServer, Reply, check_invariants, cut_points, decode, fixture_bytes, split

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN//////////wEaDEXAMPLE"
ENV = {
    "AWS_ACCESS_KEY_ID": KEY_ID,
    "AWS_SECRET_ACCESS_KEY": SECRET,
    "AWS_SESSION_TOKEN": TOKEN,
    "AWS_REGION": "us-east-1",
}
ESTIMATE = 11


def stream_decoder() -> BedrockDecoder:
    return BedrockDecoder(model=MODEL, input_estimate=ESTIMATE, secrets=(SECRET,))


def run(body: bytes, pieces: list[bytes] | None = None) -> list[Event]:
    events = decode(stream_decoder, pieces if pieces is not None else [body])
    check_invariants(events)
    return events


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def deltas(name: str) -> list[str]:
    rows = [json.loads(line) for line in fixture_bytes("bedrock", f"{name}.decoded.jsonl").splitlines()]
    return [
        r["payload"]["delta"]["text"]
        for r in rows
        if r["headers"][":event-type"] == "contentBlockDelta" and r["payload"]["delta"].get("text")
    ]


PARIS = (
    "The capital of France is Paris. Paris is not only the capital city but also the most populous city in France, "
    "and it is a major center for culture, commerce, fashion, and international diplomacy. Known for its historical "
    "landmarks, such as the Eiffel Tower, the Louvre Museum, and Notre-Dame Cathedral, Paris is often referred to as "
    '"The City of Light" or "The City of Love."'
)
THINKING = (
    "<thinking> To find the temperature of the capital of France, I need to first determine the capital of France "
    "and then get the current temperature in that city. The capital of France is Paris. I will use the "
    '"get_temperature" tool to find the current temperature in Paris.</thinking>\n'
)
TOOL_ID = "tooluse_lAG_zP8QRHmSYOwZzzaCqA"
START = Start(id="", provider="bedrock", model=MODEL)
EXPECTED: dict[str, list[Event]] = {
    "converse_stream_text": [
        START,
        *(TextDelta(t, 0) for t in deltas("converse_stream_text")),
        Usage(input_tokens=13, output_tokens=82),
        Finish("stop", "end_turn"),
    ],
    "converse_stream_tool_use": [
        START,
        *(TextDelta(t, 0) for t in deltas("converse_stream_tool_use")),
        ToolCallStart(0, TOOL_ID, "get_temperature"),
        ToolArgsDelta(0, '{"city":"Paris"}'),
        ToolCallEnd(0, TOOL_ID, "get_temperature", {"city": "Paris"}),
        Usage(input_tokens=471, output_tokens=91),
        Finish("tool_calls", "tool_use"),
    ],
    "converse_stream_reasoning_empty_text_delta": [
        START,
        ReasoningDelta(
            'The user just says "Hi". We need to respond appropriately, friendly greeting. '
            "No special instructions. Should be short."
        ),
        TextDelta("Hello! How can I help", 2),
        TextDelta(" you today?", 2),
        Usage(input_tokens=70, output_tokens=43),
        Finish("stop", "end_turn"),
    ],
    "exception_model_stream_error": [
        Error("server", "Model Stream Error: The model stream failed.", retryable=True, provider="bedrock"),
    ],
}


# -- 1. recordings ------------------------------------------------------------------------


def test_every_recording_has_expectations() -> None:
    assert sorted(EXPECTED) == RECORDINGS


@pytest.mark.parametrize("name", RECORDINGS)
def test_recording_decodes_exactly(name: str) -> None:
    assert run(recording(name)) == EXPECTED[name]


def test_recorded_content_in_plain_words() -> None:
    assert text_of(run(recording("converse_stream_text"))) == PARIS
    tool = run(recording("converse_stream_tool_use"))
    assert text_of(tool) == THINKING
    response = ResponseBuilder()
    for event in tool:
        response.add(event)
    built = response.build()
    assert [(c.id, c.name, c.arguments) for c in built.tool_calls] == [(TOOL_ID, "get_temperature", {"city": "Paris"})]
    # The empty text delta of the gpt-oss recording gives no event at all.
    reasoning = run(recording("converse_stream_reasoning_empty_text_delta"))
    assert all(e.text for e in reasoning if isinstance(e, TextDelta))


# -- 2. any split ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", RECORDINGS)
@settings(max_examples=25)
@given(data=st.data())
def test_recording_resplit_anywhere(name: str, data: st.DataObject) -> None:
    body = recording(name)
    assert run(body, split(body, data.draw(cut_points(body)))) == EXPECTED[name]


# -- 3. truncation and garbage ------------------------------------------------------------------


def frame_ends(body: bytes) -> list[int]:
    ends, pos = [], 0
    while pos < len(body):
        pos += int.from_bytes(body[pos : pos + 4], "big")
        ends.append(pos)
    return ends


@pytest.mark.parametrize("name", RECORDINGS)
def test_cut_at_every_byte(name: str) -> None:
    body = recording(name)
    full = EXPECTED[name]
    ends = frame_ends(body)
    # messageStop is the second-to-last frame; a clean cut right after it may finish.
    stop_end = ends[-2] if name != "exception_model_stream_error" else None
    for cut in range(len(body)):
        events = run(body[:cut])
        last = events[-1]
        content = [e for e in events[:-1] if not isinstance(e, Usage)]
        assert content == [e for e in full if not isinstance(e, (Usage, Finish, Error))][: len(content)], cut
        if cut == stop_end:
            assert last == full[-1]
            usage = events[-2]
            assert isinstance(usage, Usage)
            assert (usage.estimated, usage.input_tokens) == (True, ESTIMATE)
            assert usage.output_tokens > 0
        else:
            assert isinstance(last, Error), cut
            assert last.code == "protocol"
            assert not last.retryable


def s(*frames: bytes) -> bytes:
    return b"".join(frames)


START_FRAME = event_frame("messageStart", {"role": "assistant"})
STOP = event_frame("messageStop", {"stopReason": "end_turn"})
META = event_frame("metadata", {"usage": {"inputTokens": 5, "outputTokens": 7, "totalTokens": 12}, "metrics": {}})


def text_frame(text: str, index: int = 0) -> bytes:
    return event_frame("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": text}})


def tool_start(index: int, tool_id: str, name: str) -> bytes:
    return event_frame(
        "contentBlockStart", {"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": tool_id, "name": name}}}
    )


def tool_delta(index: int, fragment: str) -> bytes:
    return event_frame("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": fragment}}})


def block_stop(index: int) -> bytes:
    return event_frame("contentBlockStop", {"contentBlockIndex": index})


@pytest.mark.parametrize(
    "body",
    [
        b"HTTP/1.1 500 oops, not an event stream",
        b"\x00" * 64,
        s(START_FRAME, text_frame("hi"), b"\x00\x00\x00\x20garbage-garbage-garbage-garbage"),
        s(START_FRAME, event_frame("contentBlockDelta", b'{"contentBlockIndex": 0, "delta": {"text": "hi"')),
        s(START_FRAME, event_frame("contentBlockDelta", b'{"contentBlockIndex": "zero", "delta": {}}')),
        s(START_FRAME, event_frame("metadata", b"")),
    ],
    ids=["text", "zeros", "garbage-after-frames", "cut-json", "wrong-type", "empty-payload"],
)
def test_garbage_and_bad_json_are_protocol_errors(body: bytes) -> None:
    last = run(body)[-1]
    assert isinstance(last, Error)
    assert last.code == "protocol"


def test_bad_tool_arguments_are_a_protocol_error_never_a_call() -> None:
    body = s(START_FRAME, tool_start(0, "t1", "run"), tool_delta(0, '{"cmd": "rm -'), block_stop(0), STOP, META)
    events = run(body)
    assert not any(isinstance(e, ToolCallEnd) for e in events)
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"


def test_tool_delta_without_its_start_is_a_protocol_error() -> None:
    events = run(s(START_FRAME, tool_delta(3, '{"a": 1}'), STOP, META))
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"


def test_stream_ending_before_message_stop_is_an_error_after_usage() -> None:
    events = run(s(START_FRAME, text_frame("partial answer")))
    assert events[-2] == Usage(input_tokens=ESTIMATE, output_tokens=4, estimated=True)
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"


def test_message_stop_without_metadata_finishes_with_estimated_usage() -> None:
    events = run(s(START_FRAME, text_frame("four words of text"), STOP))
    assert events[-2:] == [Usage(input_tokens=ESTIMATE, output_tokens=5, estimated=True), Finish("stop", "end_turn")]


def test_metadata_before_message_stop_still_reports_its_usage() -> None:
    events = run(s(START_FRAME, text_frame("x"), META, STOP))
    assert events[-2:] == [Usage(input_tokens=5, output_tokens=7), Finish("stop", "end_turn")]


def test_nothing_after_the_end_marker_counts() -> None:
    events = run(s(START_FRAME, text_frame("done"), STOP, META, text_frame("late"), b"trailing garbage"))
    assert text_of(events) == "done"
    assert events[-1] == Finish("stop", "end_turn")


# -- constructed streams: tools, reasoning, usage, unknowns -----------------------------------------


def test_parallel_tool_calls_fragmented_and_empty() -> None:
    body = s(
        START_FRAME,
        text_frame("Checking both."),
        block_stop(0),
        tool_start(1, "tu_a", "weather"),
        tool_delta(1, ""),  # documented: the input fragment may be empty
        tool_delta(1, '{"city": '),
        tool_delta(1, '"Paris"}'),
        block_stop(1),
        tool_start(2, "tu_b", "time"),  # no arguments at all
        block_stop(2),
        event_frame("messageStop", {"stopReason": "tool_use"}),
        META,
    )
    events = run(body)
    tool_events = [e for e in events if isinstance(e, (ToolCallStart, ToolArgsDelta, ToolCallEnd))]
    assert tool_events == [
        ToolCallStart(0, "tu_a", "weather"),
        ToolArgsDelta(0, '{"city": '),
        ToolArgsDelta(0, '"Paris"}'),
        ToolCallEnd(0, "tu_a", "weather", {"city": "Paris"}),
        ToolCallStart(1, "tu_b", "time"),
        ToolArgsDelta(1, "{}"),
        ToolCallEnd(1, "tu_b", "time", {}),
    ]
    assert events[-1] == Finish("tool_calls", "tool_use")


def test_signed_and_redacted_reasoning() -> None:
    def reasoning(delta: dict[str, str]) -> bytes:
        return event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": delta}})

    body = s(
        START_FRAME,
        reasoning({"text": "Let me think"}),
        reasoning({"text": " about it."}),
        reasoning({"signature": "EqQBCkgIARABGAIiQL"}),
        reasoning({"redactedContent": base64.b64encode(b"opaque").decode()}),
        block_stop(0),
        text_frame("Answer.", 1),
        STOP,
        META,
    )
    events = run(body)
    assert [e for e in events if isinstance(e, ReasoningDelta)] == [
        ReasoningDelta("Let me think"),
        ReasoningDelta(" about it."),
        ReasoningDelta("", "EqQBCkgIARABGAIiQL"),
        ReasoningDelta("", redacted=base64.b64encode(b"opaque").decode()),
    ]
    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta("Answer.", 1)]


def reasoning_frame(index: int, delta: dict[str, str]) -> bytes:
    return event_frame("contentBlockDelta", {"contentBlockIndex": index, "delta": {"reasoningContent": delta}})


REDACTED = base64.b64encode(b"\x01encrypted reasoning block\xff").decode()


def test_redacted_reasoning_is_one_event_sent_back_verbatim() -> None:
    # ReasoningContentBlockDelta.redactedContent: a blob, base64 in the event's JSON.
    body = s(
        START_FRAME,
        reasoning_frame(0, {"redactedContent": REDACTED}),
        block_stop(0),
        reasoning_frame(1, {"text": "Visible."}),
        reasoning_frame(1, {"signature": "c2ln"}),
        block_stop(1),
        tool_start(2, "tu_1", "weather"),
        tool_delta(2, '{"city": "Oslo"}'),
        block_stop(2),
        event_frame("messageStop", {"stopReason": "tool_use"}),
        META,
    )
    events = run(body)
    assert events == [
        START,
        ReasoningDelta("", redacted=REDACTED),
        ReasoningDelta("Visible."),
        ReasoningDelta("", "c2ln"),
        ToolCallStart(0, "tu_1", "weather"),
        ToolArgsDelta(0, '{"city": "Oslo"}'),
        ToolCallEnd(0, "tu_1", "weather", {"city": "Oslo"}),
        Usage(input_tokens=5, output_tokens=7),
        Finish("tool_calls", "tool_use"),
    ]
    assert run(body, [body[i : i + 1] for i in range(len(body))]) == events
    builder = ResponseBuilder()
    for event in events:
        builder.add(event)
    request = ChatRequest("m", [Message.user("Oslo?"), builder.build().message(), Message.tool("tu_1", "-3C")])
    assert encode_body(request)["messages"][1]["content"] == [
        {"reasoningContent": {"redactedContent": REDACTED}},
        {"reasoningContent": {"reasoningText": {"text": "Visible.", "signature": "c2ln"}}},
        {"toolUse": {"toolUseId": "tu_1", "name": "weather", "input": {"city": "Oslo"}}},
    ]


def test_redacted_reasoning_in_pieces_is_joined_and_flushed_by_message_stop() -> None:
    blob = b"\x00\x01\x02 a longer encrypted block \xfe\xff"
    first, second = base64.b64encode(blob[:5]).decode(), base64.b64encode(blob[5:]).decode()
    body = s(
        START_FRAME,
        reasoning_frame(0, {"redactedContent": first}),
        reasoning_frame(0, {"redactedContent": second}),
        STOP,  # no contentBlockStop
        META,
    )
    events = run(body)
    assert events[1:] == [
        ReasoningDelta("", redacted=base64.b64encode(blob).decode()),
        Usage(input_tokens=5, output_tokens=7),
        Finish("stop", "end_turn"),
    ]
    broken = s(
        START_FRAME, reasoning_frame(0, {"redactedContent": first}), reasoning_frame(0, {"redactedContent": "%%"})
    )
    last = run(s(broken, block_stop(0), STOP, META))[-1]
    assert isinstance(last, Error)
    assert last.code == "protocol"


def test_server_tool_use_is_not_a_client_tool_call() -> None:
    # ToolUseBlockStart.type "server_tool_use": Bedrock runs the tool and streams its
    # result back (ContentBlockStart.toolResult, ContentBlockDelta.toolResult) in the same response.
    body = s(
        START_FRAME,
        event_frame(
            "contentBlockStart",
            {
                "contentBlockIndex": 0,
                "start": {"toolUse": {"toolUseId": "srv_1", "name": "nova_grounding", "type": "server_tool_use"}},
            },
        ),
        tool_delta(0, '{"query": "weather Oslo"}'),
        block_stop(0),
        event_frame(
            "contentBlockStart",
            {
                "contentBlockIndex": 1,
                "start": {"toolResult": {"toolUseId": "srv_1", "type": "nova_grounding", "status": "success"}},
            },
        ),
        event_frame("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolResult": [{"text": "-3C, snow"}]}}),
        block_stop(1),
        text_frame("It is -3C in Oslo.", 2),
        event_frame("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"citation": {"title": "met.no"}}}),
        block_stop(2),
        STOP,
        META,
    )
    assert run(body) == [
        START,
        TextDelta("It is -3C in Oslo.", 2),
        Usage(input_tokens=5, output_tokens=7),
        Finish("stop", "end_turn"),
    ]


def test_metadata_with_metrics_trace_and_cache_usage() -> None:
    metadata = event_frame(
        "metadata",
        {
            "usage": {"inputTokens": 12, "outputTokens": 3, "totalTokens": 1215, "cacheReadInputTokens": 1000,
                      "cacheWriteInputTokens": 200},
            "metrics": {"latencyMs": 420},
            "trace": {"guardrail": {"modelOutput": ["blocked"], "outputAssessments": {}}},
            "performanceConfig": {"latency": "standard"},
        },
    )  # fmt: skip
    body = s(
        START_FRAME, text_frame("ok"), event_frame("messageStop", {"stopReason": "guardrail_intervened"}), metadata
    )
    assert run(body)[-2:] == [
        Usage(input_tokens=12, output_tokens=3, cache_read_tokens=1000, cache_write_tokens=200),
        Finish("content_filter", "guardrail_intervened"),
    ]


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (
            {
                "inputTokens": 20,
                "outputTokens": 5,
                "totalTokens": 1625,
                "cacheReadInputTokens": 1500,
                "cacheWriteInputTokens": 100,
            },
            Usage(input_tokens=20, output_tokens=5, cache_read_tokens=1500, cache_write_tokens=100),
        ),
        (  # a model that counts the cache inside inputTokens: its total is input + output
            {"inputTokens": 1520, "outputTokens": 5, "totalTokens": 1525, "cacheReadInputTokens": 1500},
            Usage(input_tokens=20, output_tokens=5, cache_read_tokens=1500),
        ),
        ({"inputTokens": 9, "outputTokens": 1}, Usage(input_tokens=9, output_tokens=1)),
    ],
)
def test_usage_keeps_cache_tokens_out_of_input(usage: dict[str, int], expected: Usage) -> None:
    events = run(s(START_FRAME, text_frame("x"), STOP, event_frame("metadata", {"usage": usage})))
    assert events[-2] == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("tool_use", "tool_calls"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("malformed_tool_use", "other"),
        ("some_future_reason", "other"),
    ],
)
def test_stop_reasons(raw: str, reason: str) -> None:
    events = run(s(START_FRAME, text_frame("x"), event_frame("messageStop", {"stopReason": raw}), META))
    assert events[-1] == Finish(reason, raw)  # type: ignore[arg-type]


def test_unknown_events_message_types_and_delta_kinds_are_skipped() -> None:
    odd_message = encode_frame(encode_header(":message-type", 7, "telemetry"), b"\x00not json")
    body = s(
        START_FRAME,
        event_frame("futureEvent", b"not even json"),
        odd_message,
        event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"citation": {"title": "a"}}}),
        text_frame("kept"),
        STOP,
        META,
    )
    events = run(body)
    assert text_of(events) == "kept"
    assert events[-1] == Finish("stop", "end_turn")


# -- exception frames (in-band errors after HTTP 200) ------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "code", "retryable"),
    [
        ("throttlingException", "rate_limited", True),
        ("modelStreamErrorException", "server", True),
        ("internalServerException", "server", True),
        ("serviceUnavailableException", "overloaded", True),
        ("validationException", "invalid_request", False),
        ("modelTimeoutException", "timeout", True),
        ("accessDeniedException", "permission", False),
        ("resourceNotFoundException", "not_found", False),
        ("serviceQuotaExceededException", "rate_limited", False),
        ("somethingNewException", "server", True),
    ],
)
def test_exception_frames_end_the_stream_as_typed_errors(kind: str, code: str, retryable: bool) -> None:
    body = s(START_FRAME, text_frame("half an ans"), exception_frame(kind, {"message": f"{kind} happened"}), STOP, META)
    events = run(body)
    assert text_of(events) == "half an ans"
    assert isinstance(events[-2], Usage)
    assert events[-2].estimated
    assert events[-1] == Error(code, f"{kind} happened", retryable=retryable, provider="bedrock")  # type: ignore[arg-type]


def test_exception_frames_are_scrubbed_and_context_aware() -> None:
    too_long = exception_frame("validationException", {"message": "Input is too long for requested model."})
    assert run(too_long)[-1].code == "context_length"  # type: ignore[union-attr]
    leaky = exception_frame("accessDeniedException", {"message": f"key {KEY_ID} with secret {SECRET} denied"})
    message = run(leaky)[-1].message  # type: ignore[union-attr]
    assert KEY_ID not in message
    assert SECRET not in message
    not_json = exception_frame("throttlingException", b"Too many requests")
    assert run(not_json)[-1] == Error("rate_limited", "Too many requests", retryable=True, provider="bedrock")


def test_generic_error_message_type() -> None:
    headers = (
        encode_header(":message-type", 7, "error")
        + encode_header(":error-code", 7, "InternalFailure")
        + encode_header(":error-message", 7, "boom")
    )
    assert run(encode_frame(headers, b"")) == [Error("server", "boom", retryable=True, provider="bedrock")]


# -- the non-streaming Converse response -------------------------------------------------------------

CONVERSE = json.dumps(
    {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"reasoningText": {"text": "Need the weather.", "signature": "sig=="}}},
                    {"reasoningContent": {"redactedContent": "ZW5jcnlwdGVk"}},
                    {"text": "Let me check."},
                    {"toolUse": {"toolUseId": "tu_1", "name": "weather", "input": {"city": "Paris"}}},
                    {"toolUse": {"toolUseId": "tu_2", "name": "time", "input": {}}},
                    {"toolUse": {"toolUseId": "srv", "name": "search", "input": {}, "type": "server_tool_use"}},
                    {"toolResult": {"toolUseId": "srv", "content": [{"text": "found"}], "type": "search"}},
                ],
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 30, "outputTokens": 12, "totalTokens": 42},
        "metrics": {"latencyMs": 300},
    }
).encode()


def converse_decoder() -> BedrockConverseDecoder:
    return BedrockConverseDecoder(model=MODEL, input_estimate=ESTIMATE)


def test_converse_response_gives_the_stream_events() -> None:
    events = decode(converse_decoder, [CONVERSE])
    check_invariants(events)
    assert events == [
        START,
        ReasoningDelta("Need the weather.", "sig=="),
        ReasoningDelta("", redacted="ZW5jcnlwdGVk"),
        TextDelta("Let me check.", 2),
        ToolCallStart(0, "tu_1", "weather"),
        ToolArgsDelta(0, '{"city":"Paris"}'),
        ToolCallEnd(0, "tu_1", "weather", {"city": "Paris"}),
        ToolCallStart(1, "tu_2", "time"),
        ToolArgsDelta(1, "{}"),
        ToolCallEnd(1, "tu_2", "time", {}),
        Usage(input_tokens=30, output_tokens=12),
        Finish("tool_calls", "tool_use"),
    ]


@settings(max_examples=20)
@given(cuts=cut_points(CONVERSE))
def test_converse_response_split_anywhere(cuts: list[int]) -> None:
    assert decode(converse_decoder, split(CONVERSE, cuts)) == decode(converse_decoder, [CONVERSE])


@pytest.mark.parametrize("body", [CONVERSE[:-1], CONVERSE[: len(CONVERSE) // 2], b"", b'{"output": {}}'])
def test_converse_response_cut_or_without_stop_reason_is_a_protocol_error(body: bytes) -> None:
    events = decode(converse_decoder, [body])
    check_invariants(events)
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"


# -- 4. HTTP errors ------------------------------------------------------------------------------------


def bedrock(**kwargs: Any) -> Bedrock:
    kwargs.setdefault("env", ENV)
    return Bedrock(**kwargs)


def test_recorded_400_fixture() -> None:
    recorded = json.loads(fixture_bytes("bedrock", "error_400_invalid_model_converse_stream.json"))
    body = json.dumps(recorded["body"]).encode()
    error = bedrock().map_error(recorded["http_status"], {"content-type": "application/json"}, body)
    assert error == Error(
        "invalid_request", "The provided model identifier is invalid.", retryable=False, provider="bedrock", status=400
    )


AMZN = ":http://internal.amazon.com/coral/com.amazon.bedrock/"


@pytest.mark.parametrize(
    ("status", "kind", "message", "code", "retryable"),
    [
        (429, "ThrottlingException", "Too many requests, please wait before trying again.", "rate_limited", True),
        (429, "ModelNotReadyException", "Model is not ready", "overloaded", True),
        (400, "ServiceQuotaExceededException", "Quota exceeded", "rate_limited", False),
        (400, "ValidationException", "Input is too long for requested model.", "context_length", False),
        (400, "ValidationException", "Malformed input request", "invalid_request", False),
        (403, "AccessDeniedException", "You don't have access to the model", "permission", False),
        (403, "UnrecognizedClientException", "The security token included in the request is invalid.", "auth", False),
        (403, "InvalidSignatureException", "Signature expired", "auth", False),
        (404, "ResourceNotFoundException", "Model not found", "not_found", False),
        (408, "ModelTimeoutException", "Model timed out", "timeout", True),
        (424, "ModelErrorException", "The model failed", "server", True),
        (500, "InternalServerException", "Internal error", "server", True),
        (503, "ServiceUnavailableException", "Service unavailable", "overloaded", True),
        (401, None, "Unauthorized", "auth", False),
        (500, None, "", "server", True),
        (529, None, "Overloaded", "overloaded", True),
    ],
)
@pytest.mark.parametrize("where", ["header", "body", "namespaced-body"])
def test_http_errors(status: int, kind: str | None, message: str, code: str, retryable: bool, where: str) -> None:
    """The AWS error name wins over the status, wherever AWS puts it."""
    headers: dict[str, str] = {"content-type": "application/json"}
    body: dict[str, str] = {"message": message} if message else {}
    if kind is not None and where == "header":
        headers["x-amzn-ErrorType"] = kind + AMZN
    elif kind is not None:
        body["__type"] = kind if where == "body" else f"com.amazon.coral.service#{kind}"
    error = bedrock().map_error(status, headers, json.dumps(body).encode())
    assert (error.code, error.status, error.retryable, error.retry_after) == (code, status, retryable, None)
    assert error.message == (message or kind or f"HTTP {status}")
    assert error.provider == "bedrock"


def test_http_error_retry_after_and_header_spellings() -> None:
    headers = {"X-Amzn-Errortype": "ThrottlingException" + AMZN, "Retry-After": "7"}
    error = bedrock().map_error(429, headers, b'{"Message": "Rate exceeded"}')
    assert (error.code, error.message, error.retryable, error.retry_after) == (
        "rate_limited",
        "Rate exceeded",
        True,
        7.0,
    )


def test_http_error_bodies_that_are_not_json_and_echoed_keys() -> None:
    error = bedrock().map_error(502, {}, b"<html>Bad Gateway</html>")
    assert (error.code, error.message) == ("server", "<html>Bad Gateway</html>")
    leaky = json.dumps({"message": f"Credential {KEY_ID}/20240101 signed with {SECRET} rejected"}).encode()
    error = bedrock().map_error(403, {"x-amzn-ErrorType": "InvalidSignatureException"}, leaky)
    assert KEY_ID not in error.message
    assert SECRET not in error.message
    assert error.code == "auth"


# -- 5. the request encoder ------------------------------------------------------------------------

WEATHER = ToolSpec(
    "get_temperature",
    "Current temperature of a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
PNG = base64.b64encode(b"\x89PNG fake").decode()


def test_encoder_full_request_shape() -> None:
    request = ChatRequest(
        model=f"bedrock:{MODEL}",
        system="Be brief.",
        messages=[
            Message.system("Answer in French."),
            Message.user([TextPart("What is this?"), ImagePart(data=PNG, media_type="image/jpeg")]),
            Message.assistant([ReasoningPart("unsigned thoughts are dropped"), TextPart("Un logo.")]),
            Message.user("Merci"),
        ],
        tools=[WEATHER, ToolSpec("noop")],
        tool_choice="auto",
        temperature=0.2,
        top_p=0.9,
        max_tokens=256,
        stop=["\n\nHuman:"],
        seed=7,
        extra={"additionalModelRequestFields": {"top_k": 40}, "inferenceConfig": {"maxTokens": 512}},
    )
    assert encode_body(request) == {
        "system": [{"text": "Be brief."}, {"text": "Answer in French."}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": "What is this?"},
                    {"image": {"format": "jpeg", "source": {"bytes": PNG}}},
                ],
            },
            {"role": "assistant", "content": [{"text": "Un logo."}]},
            {"role": "user", "content": [{"text": "Merci"}]},
        ],
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "get_temperature",
                        "description": "Current temperature of a city",
                        "inputSchema": {"json": WEATHER.parameters},
                    }
                },
                {"toolSpec": {"name": "noop", "inputSchema": {"json": {"type": "object", "properties": {}}}}},
            ],
            "toolChoice": {"auto": {}},
        },
        # extra merges one level deep into our inferenceConfig
        "inferenceConfig": {"maxTokens": 512, "temperature": 0.2, "topP": 0.9, "stopSequences": ["\n\nHuman:"]},
        "additionalModelRequestFields": {"top_k": 40},
    }


def test_encoder_minimal_request_has_no_optional_sections() -> None:
    assert encode_body(ChatRequest(model="m", messages=[Message.user("hi")])) == {
        "messages": [{"role": "user", "content": [{"text": "hi"}]}]
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("required", {"any": {}}),
        (ToolChoice("get_temperature"), {"tool": {"name": "get_temperature"}}),
        (None, None),
    ],
)
def test_encoder_tool_choice(choice: Any, expected: dict[str, Any] | None) -> None:
    body = encode_body(ChatRequest(model="m", messages=[Message.user("hi")], tools=[WEATHER], tool_choice=choice))
    assert body["toolConfig"].get("toolChoice") == expected


def test_tool_choice_none_hides_tools_unless_the_history_has_tool_blocks() -> None:
    plain = ChatRequest(model="m", messages=[Message.user("hi")], tools=[WEATHER], tool_choice="none")
    assert "toolConfig" not in encode_body(plain)
    history = msgspec.structs.replace(
        plain,
        messages=[
            Message.user("hi"),
            Message.assistant([ToolCallPart("t1", "get_temperature", {"city": "Oslo"})]),
            Message.tool("t1", "3°C"),
        ],
    )
    config = encode_body(history)["toolConfig"]
    assert "toolChoice" not in config
    assert config["tools"][0]["toolSpec"]["name"] == "get_temperature"


def test_encoder_images_by_url() -> None:
    def image(part: ImagePart) -> Any:
        return encode_body(ChatRequest(model="m", messages=[Message.user([part])]))["messages"][0]["content"][0]

    assert image(ImagePart(url=f"data:image/webp;base64,{PNG}")) == {
        "image": {"format": "webp", "source": {"bytes": PNG}}
    }
    assert image(ImagePart(url="s3://bucket/cat.JPG")) == {
        "image": {"format": "jpeg", "source": {"s3Location": {"uri": "s3://bucket/cat.JPG"}}}
    }
    with pytest.raises(ConfigError, match="s3://"):
        image(ImagePart(url="https://example.com/cat.png"))


def test_encoder_signed_reasoning_results_and_structured_output() -> None:
    request = ChatRequest(
        model="m",
        messages=[
            Message.user("go"),
            Message.assistant(
                [
                    ReasoningPart("plan", signature="sig"),
                    ToolCallPart("a", "f", {"x": 1}),
                    ToolCallPart("b", "f", {"x": 2}),
                ]
            ),
            Message.tool("a", "ok"),
            Message.tool("b", "failed: disk full", is_error=True),
            Message.user("and now?"),
        ],
        tools=[ToolSpec("f")],
        response_format=ResponseFormat(schema={"type": "object", "properties": {"x": {"type": "integer"}}}, name="out"),
    )
    body = encode_body(request)
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"reasoningContent": {"reasoningText": {"text": "plan", "signature": "sig"}}},
                {"toolUse": {"toolUseId": "a", "name": "f", "input": {"x": 1}}},
                {"toolUse": {"toolUseId": "b", "name": "f", "input": {"x": 2}}},
            ],
        },
        {  # consecutive tool results and the next user text merge into one user turn
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "a", "content": [{"text": "ok"}]}},
                {"toolResult": {"toolUseId": "b", "content": [{"text": "failed: disk full"}], "status": "error"}},
                {"text": "and now?"},
            ],
        },
    ]
    schema = body["outputConfig"]["textFormat"]
    assert schema["type"] == "json_schema"
    assert schema["structure"]["jsonSchema"]["name"] == "out"
    assert json.loads(schema["structure"]["jsonSchema"]["schema"]) == request.response_format.schema  # type: ignore[union-attr]


def test_multi_turn_tool_loop() -> None:
    first = ChatRequest(
        model=f"bedrock:{MODEL}",
        messages=[Message.user("What is the temperature in the capital of France?")],
        tools=[WEATHER],
    )
    assert encode_body(first)["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"] == {"json": WEATHER.parameters}
    events = run(recording("converse_stream_tool_use"))
    assert isinstance(events[-3], ToolCallEnd)
    builder = ResponseBuilder()
    for event in events:
        builder.add(event)
    response = builder.build()
    second = msgspec.structs.replace(
        first, messages=[*first.messages, response.message(), Message.tool(TOOL_ID, '{"celsius": 18}')]
    )
    assert encode_body(second)["messages"] == [
        {"role": "user", "content": [{"text": "What is the temperature in the capital of France?"}]},
        {
            "role": "assistant",
            "content": [
                {"text": THINKING},
                {"toolUse": {"toolUseId": TOOL_ID, "name": "get_temperature", "input": {"city": "Paris"}}},
            ],
        },
        {"role": "user", "content": [{"toolResult": {"toolUseId": TOOL_ID, "content": [{"text": '{"celsius": 18}'}]}}]},
    ]


# -- credentials, regions, URLs ------------------------------------------------------------------------

AUTH_RE = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[A-Z0-9]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/bedrock/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)


def test_env_credentials_sign_with_sigv4() -> None:
    provider = create_provider("bedrock", env=ENV)
    request = provider.build_request(ChatRequest(model="m", messages=[Message.user("hi")]), MODEL)  # type: ignore[attr-defined]
    assert request.url == f"https://bedrock-runtime.us-east-1.amazonaws.com/model/{MODEL}/converse-stream"
    match = AUTH_RE.fullmatch(request.headers["Authorization"])
    assert match is not None
    assert (match["key"], match["region"]) == (KEY_ID, "us-east-1")
    assert match["date"] == request.headers["X-Amz-Date"][:8]
    assert {"content-type", "host", "x-amz-date", "x-amz-security-token"} <= set(match["signed"].split(";"))
    assert request.headers["X-Amz-Security-Token"] == TOKEN
    assert request.headers["accept"] == "application/vnd.amazon.eventstream"
    for text in (repr(provider), str(provider), repr(request)):
        assert SECRET not in text
        assert TOKEN not in text
        assert KEY_ID not in text


@pytest.mark.parametrize(
    ("kwargs", "env", "auth"),
    [
        ({"api_key": f"AKIAEXPLICIT00000000:{SECRET}"}, ENV, "AWS4-HMAC-SHA256 Credential=AKIAEXPLICIT00000000/"),
        ({"api_key": "ABSKQmVkcm9ja0FQSUtleS1example"}, ENV, "Bearer ABSKQmVkcm9ja0FQSUtleS1example"),
        ({}, {**ENV, "AWS_BEARER_TOKEN_BEDROCK": "bedrock-api-key-xyz"}, "Bearer bedrock-api-key-xyz"),
        (
            {"credentials": AwsCredentials("AKIAOBJECT0000000000", SECRET)},
            {"AWS_DEFAULT_REGION": "eu-west-3"},
            "AWS4-HMAC-SHA256 Credential=AKIAOBJECT0000000000/",
        ),
    ],
)
def test_credential_precedence(kwargs: dict[str, Any], env: dict[str, str], auth: str) -> None:
    provider = Bedrock(env=env, **kwargs)
    request = provider.build_request(ChatRequest(model="m", messages=[Message.user("hi")]), MODEL)
    header = request.headers.get("Authorization") or request.headers["authorization"]
    assert header.startswith(auth)
    assert ("x-amz-date" in {h.lower() for h in request.headers}) == header.startswith("AWS4")


def test_configuration_mistakes() -> None:
    with pytest.raises(MissingKeyError, match="AWS_ACCESS_KEY_ID"):
        create_provider("bedrock", env={"AWS_REGION": "us-east-1"})
    with pytest.raises(MissingKeyError, match="AWS_REGION"):
        create_provider("bedrock", env={"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET})
    with pytest.raises(ConfigError, match="not an AWS region"):
        Bedrock(region="us-east-1.evil.example/", env=ENV)
    with pytest.raises(MissingKeyError, match="ACCESS_KEY_ID:SECRET"):
        Bedrock(api_key=":", env={})
    vpc = "https://vpce-0a1b-x2y3.bedrock-runtime.eu-west-1.vpce.amazonaws.com"
    assert (
        Bedrock(base_url=vpc, env={"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}).region == "eu-west-1"
    )
    # A Bedrock API key and an explicit endpoint need no region.
    assert Bedrock(api_key="token", base_url="http://127.0.0.1:1", env={}).region is None


def test_model_ids_are_one_path_segment_that_every_transport_sends_unchanged() -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3"
    path = model_path(arn)
    assert (
        path == "/model/arn:aws:bedrock:us-east-1:123456789012:application-inference-profile%2Fa1b2c3/converse-stream"
    )
    assert model_path("m", streaming=False) == "/model/m/converse"
    for odd in (MODEL, arn, "weird id?#%/é"):
        url = "https://h" + model_path(odd)
        # What was signed is exactly what aiohttp (yarl) and httpx put on the wire.
        assert yarl.URL(url).raw_path == httpx.URL(url).raw_path.decode() == model_path(odd)


def test_botocore_chain_is_used_only_for_the_real_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_BEARER_TOKEN_BEDROCK",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[default]\naws_access_key_id = AKIAFROMFILE00000000\naws_secret_access_key = {SECRET}\n")
    config = tmp_path / "config"
    config.write_text("[default]\nregion = ap-southeast-2\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # belt and braces: never probe the network
    provider = create_provider("bedrock")
    request = provider.build_request(ChatRequest(model="m", messages=[Message.user("hi")]), MODEL)  # type: ignore[attr-defined]
    assert request.url.startswith("https://bedrock-runtime.ap-southeast-2.amazonaws.com/")
    assert "Credential=AKIAFROMFILE00000000/" in request.headers["Authorization"]
    # The same (empty) variables handed in as a mapping do not reach for the host's identity.
    with pytest.raises(MissingKeyError):
        create_provider("bedrock", env={})


# -- 6. end to end over loopback HTTP ------------------------------------------------------------------

EVENTSTREAM_HEADERS = {"content-type": "application/vnd.amazon.eventstream"}


def chat(prompt: str = "What is the temperature in the capital of France?") -> ChatRequest:
    return ChatRequest(model=f"bedrock:{MODEL}", messages=[Message.user(prompt)], tools=[WEATHER], max_tokens=300)


async def collect(provider: Bedrock | Any, request: ChatRequest | None = None) -> list[Event]:
    async with Engine(providers={"bedrock": provider}) as engine, engine.stream(request or chat()) as stream:
        return [event async for event in stream]


def sigv4_signature(seen: Any, url: str, body: bytes, secret: str = SECRET, token: str | None = TOKEN) -> str:
    """Re-sign what the server received with botocore, from the signed header list in Authorization."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = {k.lower(): v for k, v in seen.headers.items()}
    match = AUTH_RE.fullmatch(headers["authorization"])
    assert match is not None
    request = AWSRequest(
        method=seen.method, url=url, data=body, headers={name: headers[name] for name in match["signed"].split(";")}
    )
    request.context["timestamp"] = headers["x-amz-date"]
    signer = SigV4Auth(Credentials(match["key"], secret, token), "bedrock", match["region"])
    signature: str = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return signature


def leaks(events: list[Event], *secrets: str) -> list[str]:
    text = b"".join(msgspec.json.encode(e) for e in events).decode()
    return [s for s in secrets if s in text]


async def test_end_to_end_sigv4_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_BEARER_TOKEN_BEDROCK", raising=False)
    body = recording("converse_stream_tool_use")
    async with ReplayServer([Reply(body, headers=EVENTSTREAM_HEADERS, chunk_size=97)]) as server:
        events = await collect(create_provider("bedrock", base_url=server.url))
    check_invariants(events)
    assert events == EXPECTED["converse_stream_tool_use"] == run(body)
    (seen,) = server.requests
    assert (seen.method, seen.path, seen.query) == ("POST", f"/model/{MODEL}/converse-stream", "")
    headers = {k.lower(): v for k, v in seen.headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/vnd.amazon.eventstream"
    assert headers["x-amz-security-token"] == TOKEN
    match = AUTH_RE.fullmatch(headers["authorization"])
    assert match is not None
    assert (match["key"], match["region"], match["date"]) == (KEY_ID, "us-east-1", headers["x-amz-date"][:8])
    assert seen.json() == encode_body(chat())
    assert seen.json()["inferenceConfig"] == {"maxTokens": 300}
    url = server.url + seen.path
    assert sigv4_signature(seen, url, seen.body) == match["signature"]
    assert sigv4_signature(seen, url, seen.body + b" ") != match["signature"]  # the check has teeth
    assert sigv4_signature(seen, url, seen.body, secret=SECRET[::-1]) != match["signature"]
    assert leaks(events, KEY_ID, SECRET, TOKEN) == []


async def test_end_to_end_bedrock_api_key() -> None:
    body = recording("converse_stream_reasoning_empty_text_delta")
    async with ReplayServer([Reply(body, headers=EVENTSTREAM_HEADERS, chunk_size=5)]) as server:
        events = await collect(create_provider("bedrock", api_key="test-key", base_url=server.url, env={}))
    assert events == EXPECTED["converse_stream_reasoning_empty_text_delta"]
    headers = {k.lower(): v for k, v in server.requests[0].headers.items()}
    assert headers["authorization"] == "Bearer test-key"
    assert "x-amz-date" not in headers
    assert leaks(events, "test-key") == []


async def test_end_to_end_http_error_is_one_typed_event() -> None:
    reply = Reply(
        b'{"message": "Too many requests, please wait before trying again."}',
        status=429,
        headers={
            "content-type": "application/json",
            "x-amzn-ErrorType": "ThrottlingException" + AMZN,
            "retry-after": "2",
        },
    )
    async with ReplayServer([reply]) as server:
        events = await collect(bedrock(base_url=server.url))
    assert events == [
        Error(
            "rate_limited",
            "Too many requests, please wait before trying again.",
            retryable=True,
            provider="bedrock",
            status=429,
            retry_after=2.0,
        )
    ]


async def test_end_to_end_exception_frame_and_cut_body() -> None:
    exception = recording("exception_model_stream_error")
    async with ReplayServer([Reply(exception, headers=EVENTSTREAM_HEADERS)]) as server:
        assert await collect(bedrock(base_url=server.url)) == EXPECTED["exception_model_stream_error"]
    body = recording("converse_stream_text")
    async with ReplayServer([Reply(body, headers=EVENTSTREAM_HEADERS, cut_after=len(body) // 2)]) as server:
        events = await collect(bedrock(base_url=server.url))
    check_invariants(events)
    assert isinstance(events[-1], Error)
    assert events[-1].code in ("connection", "protocol")
    assert text_of(events)
    assert PARIS.startswith(text_of(events))


async def test_end_to_end_non_streaming_converse() -> None:
    async with ReplayServer([Reply(CONVERSE, headers={"content-type": "application/json"}, chunk_size=50)]) as server:
        events = await collect(bedrock(base_url=server.url, streaming=False))
    assert events == decode(converse_decoder, [CONVERSE])
    seen = server.requests[0]
    assert seen.path == f"/model/{MODEL}/converse"
    assert {k.lower(): v for k, v in seen.headers.items()}["accept"] == "application/json"


class Source:
    """A credential source, as botocore's refreshing chain is one."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls = 0

    def get(self) -> AwsCredentials:
        self.calls += 1
        if self.fail:
            raise RuntimeError(f"SSO token expired for {SECRET}")
        return AwsCredentials("AKIASOURCE0000000000", SECRET)


async def test_end_to_end_refreshing_credentials() -> None:
    body = recording("converse_stream_text")
    async with ReplayServer([Reply(body, headers=EVENTSTREAM_HEADERS)]) as server:
        source = Source()
        provider = Bedrock(credentials=source, region="eu-central-1", base_url=server.url, env={})
        assert (await collect(provider))[-1] == Finish("stop", "end_turn")
        assert (await collect(provider))[-1] == Finish("stop", "end_turn")
        failing = Bedrock(credentials=Source(fail=True), region="eu-central-1", base_url=server.url, env={})
        failed = await collect(failing)
    assert source.calls == 2  # frozen afresh for every request
    seen = server.requests[0]
    headers = {k.lower(): v for k, v in seen.headers.items()}
    assert "Credential=AKIASOURCE0000000000/" in headers["authorization"]
    assert sigv4_signature(seen, server.url + seen.path, seen.body, token=None) in headers["authorization"]
    assert len(server.requests) == 2  # the failing provider never sent anything
    assert failed == [Error("auth", "could not load AWS credentials (RuntimeError)", provider="bedrock")]


async def test_stopping_early_releases_the_connection_with_refreshing_credentials() -> None:
    """A pool of ONE connection: each stream after an abandoned one still gets through."""
    import aiohttp
    import anyio

    from lluminary.providers import AiohttpTransport

    body = recording("converse_stream_text")
    stall = frame_ends(body)[3]  # a few text frames, then the server goes quiet
    replies = [Reply(body, headers=EVENTSTREAM_HEADERS, stall_after=stall)] * 3
    replies.append(Reply(body, headers=EVENTSTREAM_HEADERS))
    async with ReplayServer(replies) as server:
        provider = Bedrock(credentials=Source(), region="us-west-2", base_url=server.url, env={})
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
        transport = AiohttpTransport(session)
        async with Engine(providers={"bedrock": provider}, transport=transport) as engine:
            for _ in range(3):
                with anyio.fail_after(5):  # a leaked connection would block here forever
                    async with engine.stream(chat()) as stream:
                        async for event in stream:
                            if isinstance(event, TextDelta):
                                break
                    # Released at once, not when a finalizer gets round to it.
                    assert session.connector is not None
                    assert len(session.connector._acquired) == 0
            with anyio.fail_after(5):
                async with engine.stream(chat()) as stream:
                    events = [event async for event in stream]
        await session.close()
        server.release_stalls()
    assert text_of(events) == PARIS
    assert len(server.requests) == 4
