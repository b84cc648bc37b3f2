"""Anthropic Messages: recordings, re-splits, truncation, pitfalls, errors, encoder, end to end.

The decoder is driven from bytes alone: the recorded streams in
``tests/fixtures/anthropic`` (the ``.chunks.jsonl`` one re-wrapped as SSE with
event names) and streams built here from the documented event shapes
(``message_start``, ``content_block_*``, ``message_delta``, ``message_stop``,
``ping`` and ``error``). The end-to-end tests send the same bytes through a real
loopback HTTP server and both transports.
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
from lluminary.providers.anthropic import Anthropic, AnthropicDecoder, encode_body
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

KEY = "sk-ant-test-canary1234"


def decoder() -> AnthropicDecoder:
    return AnthropicDecoder(model="claude-sonnet-4-5", input_estimate=12, secrets=(KEY,))


def run(body: bytes | list[bytes]) -> list[Event]:
    events = decode(decoder, [body] if isinstance(body, bytes) else body)
    check_invariants(events)
    return events


def ev(data: dict[str, Any]) -> bytes:
    """One documented SSE event: its name, and the same name as ``type`` in the data."""
    name: str = data["type"]
    return b"event: " + name.encode() + b"\ndata: " + msgspec.json.encode(data) + b"\n\n"


def message_start(**usage: int) -> bytes:
    usage = usage or {"input_tokens": 25, "output_tokens": 1}
    message: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-sonnet-4-5",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    return ev({"type": "message_start", "message": message})


def block_start(index: int, block: dict[str, Any]) -> bytes:
    return ev({"type": "content_block_start", "index": index, "content_block": block})


def delta(index: int, kind: str, **fields: Any) -> bytes:
    return ev({"type": "content_block_delta", "index": index, "delta": {"type": kind, **fields}})


def block_stop(index: int) -> bytes:
    return ev({"type": "content_block_stop", "index": index})


def message_delta(stop_reason: str | None = "end_turn", **usage: int) -> bytes:
    return ev({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
               "usage": usage or {"output_tokens": 15}})  # fmt: skip


STOP = ev({"type": "message_stop"})
PING = ev({"type": "ping"})
START = Start("msg_1", "anthropic", "claude-sonnet-4-5")


def text_message(*pieces: str) -> bytes:
    deltas = b"".join(delta(0, "text_delta", text=p) for p in pieces)
    return message_start() + block_start(0, {"type": "text", "text": ""}) + deltas + block_stop(0)


def tool_block(index: int, id: str, name: str, *fragments: str) -> bytes:
    start = block_start(index, {"type": "tool_use", "id": id, "name": name, "input": {}})
    return start + b"".join(delta(index, "input_json_delta", partial_json=f) for f in fragments) + block_stop(index)


# -- the recordings ----------------------------------------------------------------------

SIGNATURE = (
    "EvMCCkYICxgCKkCHP2cSuEdcJK/0rFwqES/ecn+VurRpNTwI4XNyM0vnNfGsc9OmE8YYHauwBZ/uaRpmlEn2I4/kszHlcpptO82JEgyRMSbPkJ"
    "YaegxYF3AaDHZbSm9EzZ6CM+YtliIw3iNVP/ilYrfoneo8S2+ad/5xSC62nKbk6joLtKmqXgXwYFJRpjIUjM2V7EGReOPRKtoBKfNHVmdNf7S"
    "eMhHalX/ObSeJ1G/NjDyGQAsDjyHGd7uY1r5gAIn3Cpdv5r+gHYJmWT+w2uiKZsBDRoSf4O3Km0l752EhPD4InEhqpCKyqhbUZ3dt5+JVKQHk2"
    "iyTBhQMB/XBYgZTstIpRqQRXU5ypcrydgnqj3mD1G9C7YC0ZTCNvFluAx0OL8q+cQwufgfqKquLEf2+XMYzhx9jYkVFEpnf/s1nx6gNBATKfF3"
    "Dmrs2r4tWu2QJB+FjlRuDp/8dxUxgJbmyhGxb7XsYeb1vgb7wwzDvP/UhjfQYAQ=="
)
THINKING = [
    "This", " is a straightforward question about", " pedest", "rian safety", ". I", " should provide clear",
    ", helpful advice about how", " to safely", " cross a street.", " This is basic", " safety information that could",
    " help prevent", " accidents.",
]  # fmt: skip
ANSWER = (
    "Here are the basic steps for safely crossing the street:\n"
    "\n"
    "**At intersections with traffic lights:**\n"
    '- Wait for the pedestrian "Walk" signal\n'
    "- Look both ways before stepping into the street\n"
    "- Make eye contact with drivers when possible\n"
    "- Stay alert for turning vehicles\n"
    "\n"
    "**At intersections without signals:**\n"
    "- Use crosswalks when available\n"
    "- Stop at the curb and look left, right, then left again\n"
    "- Wait for a clear gap in traffic\n"
    "- Walk briskly but don't run\n"
    "- Keep looking for traffic as you cross\n"
    "\n"
    "**General safety tips:**\n"
    "- Put away phones and remove headphones\n"
    "- Wear bright or reflective clothing in low light\n"
    "- Never assume drivers see you\n"
    "- Avoid crossing between parked cars\n"
    "- Walk facing traffic when there's no sidewalk\n"
    "\n"
    "**In busy urban areas:**\n"
    "- Follow pedestrian signals strictly\n"
    "- Be extra cautious of cyclists in bike lanes\n"
    "- Watch for buses and large vehicles with blind spots\n"
    "\n"
    "The key is to be visible, alert, and predictable in your movements. "
    "Always prioritize safety over speed when crossing streets."
)
WEATHER_ID = "toolu_01NRLabsLyVHZPKxbKvkfSMn"
HAIKU_ARGS = {"elements": [{"location": "San Francisco", "temperature": 58, "condition": "sunny"}]}

EXPECTED: dict[str, list[Event]] = {
    "text_stream.sse": [
        Start("msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK", "anthropic", "claude-3-opus-latest"),
        TextDelta("Hello"),
        TextDelta(" there"),
        TextDelta("!"),
        Usage(input_tokens=11, output_tokens=6),
        Finish("stop", "end_turn"),
    ],
    "refusal_stream.sse": [
        Start("msg_01RefusalTestMessage123456789", "anthropic", "claude-opus-4-7"),
        Usage(input_tokens=20, output_tokens=0),
        Finish("content_filter", "refusal"),
    ],
    "tool_use_stream.sse": [
        Start("msg_019Q1hrJbZG26Fb9BQhrkHEr", "anthropic", "claude-sonnet-4-20250514"),
        TextDelta("I"),
        TextDelta("'ll check the current weather in Paris for you."),
        ToolCallStart(0, WEATHER_ID, "get_weather"),
        *(ToolArgsDelta(0, d) for d in ['{"locati', 'on": "P', "ar", 'is"}']),
        ToolCallEnd(0, WEATHER_ID, "get_weather", {"location": "Paris"}),
        Usage(input_tokens=377, output_tokens=65),
        Finish("tool_calls", "tool_use"),
    ],
    "tool_use_stream_haiku.chunks.jsonl": [
        Start("msg_01K2JbSUMYhez5RHoK9ZCj9U", "anthropic", "claude-haiku-4-5-20251001"),
        ToolCallStart(0, "toolu_01KFbKqPYSuAKujiL6mTfzYA", "json"),
        ToolArgsDelta(0, '{"elements": [{"location": "San Francisco", "temperature": 58, "condition": "sunny"}]'),
        ToolArgsDelta(0, "}"),
        ToolCallEnd(0, "toolu_01KFbKqPYSuAKujiL6mTfzYA", "json", HAIKU_ARGS),
        # message_start and message_delta both report 849 input tokens: counted once.
        Usage(input_tokens=849, output_tokens=47),
        Finish("tool_calls", "tool_use"),
    ],
}


def thinking_expected() -> list[Event]:
    """The thinking recording: its 95 text deltas are checked by content in the test below."""
    events = run(body_of("thinking_stream.sse"))
    texts = [e for e in events if isinstance(e, TextDelta)]
    return [
        Start("msg_01ALwQ87pTS7hH1PjSdC9wJD", "anthropic", "claude-sonnet-4-20250514"),
        *(ReasoningDelta(t) for t in THINKING),
        ReasoningDelta("", signature=SIGNATURE),
        *texts,
        Usage(input_tokens=43, output_tokens=282),
        Finish("stop", "end_turn"),
    ]


RECORDINGS = sorted([*EXPECTED, "thinking_stream.sse"])


def body_of(name: str) -> bytes:
    if name.endswith(".chunks.jsonl"):
        return jsonl_to_sse(FIXTURES / "anthropic" / name, event_names=True)
    return fixture_bytes("anthropic", name)


def expected(name: str) -> list[Event]:
    return thinking_expected() if name == "thinking_stream.sse" else EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recording_decodes_to_exactly_the_right_events(name: str) -> None:
    assert run(body_of(name)) == EXPECTED[name]


def test_thinking_recording() -> None:
    events = run(body_of("thinking_stream.sse"))
    assert events == thinking_expected()
    texts = [e for e in events if isinstance(e, TextDelta)]
    assert len(texts) == 95
    assert {e.index for e in texts} == {1}  # the text is content block 1, after the thinking block
    assert "".join(e.text for e in texts) == ANSWER
    builder = ResponseBuilder()
    for event in events:
        builder.add(event)
    response = builder.build()
    assert response.reasoning == "".join(THINKING)
    # The next turn carries the thinking block with its signature, ahead of the text.
    assert response.message().parts == [ReasoningPart("".join(THINKING), signature=SIGNATURE), TextPart(ANSWER)]


@pytest.mark.parametrize("name", RECORDINGS)
@given(data=st.data())
def test_recording_split_anywhere_gives_the_same_events(name: str, data: st.DataObject) -> None:
    body = body_of(name)
    assert run(split(body, data.draw(cut_points(body)))) == expected(name)


@pytest.mark.parametrize("name", RECORDINGS)
def test_recording_fed_one_byte_at_a_time(name: str) -> None:
    body = body_of(name)
    assert run([body[i : i + 1] for i in range(len(body))]) == expected(name)


@pytest.mark.parametrize("name", RECORDINGS)
def test_recording_cut_at_every_byte_ends_in_one_error_unless_message_stop_arrived(name: str) -> None:
    body = body_of(name)
    # The end marker has arrived once the message_stop data object is complete.
    complete = body.index(b"}", body.rindex(b'"message_stop"')) + 1
    full = expected(name)
    content = [e for e in full if not isinstance(e, (Usage, Finish))]
    for n in range(len(body) + 1):
        events = run(body[:n])
        if n >= complete:
            assert events == full, n
            continue
        last = events[-1]
        assert isinstance(last, Error), n
        assert (last.code, last.retryable, last.provider) == ("protocol", False, "anthropic"), n
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


# -- garbage, bad JSON and cuts ---------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        message_start() + b"event: content_block_delta\ndata: {not json}\n\n" + STOP,
        message_start() + b"data: [1, 2]\n\n" + STOP,
        b'data: {"type": "message_start", "message": "nope"}\n\n' + STOP,
        b"\x00\xff\xfe garbage\n\n",
        b"<html>502 Bad Gateway</html>",
    ],
)
def test_garbage_is_a_protocol_error(body: bytes) -> None:
    events = run(body)
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"
    assert not any(isinstance(e, Finish) for e in events)


def test_no_message_stop_means_no_finish() -> None:
    events = run(text_message("Hi") + message_delta("end_turn", output_tokens=3))
    assert events == [
        START,
        TextDelta("Hi"),
        Usage(input_tokens=25, output_tokens=3),
        Error("protocol", "the stream ended before the provider's end marker", provider="anthropic"),
    ]


def test_bad_tool_argument_json_is_a_protocol_error() -> None:
    body = message_start() + tool_block(0, "toolu_1", "bash", '{"command": "rm -rf', " /tmp/x") + message_delta()
    events = run(body + STOP)
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"
    assert not any(isinstance(e, (ToolCallEnd, Finish)) for e in events)


def test_arguments_for_a_block_that_never_started_are_a_protocol_error() -> None:
    events = run(message_start() + delta(4, "input_json_delta", partial_json="{}") + message_delta() + STOP)
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"


# -- documented shapes and the pitfalls ------------------------------------------------------


def test_in_band_overloaded_error_after_200() -> None:
    # The documented form, mid-stream after HTTP 200.
    error = b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    events = run(text_message("Hel") + error)
    assert events == [
        START,
        TextDelta("Hel"),
        Usage(input_tokens=25, output_tokens=1),  # priced on what it used so far
        Error("overloaded", "Overloaded", retryable=True, provider="anthropic"),
    ]


def test_in_band_error_as_the_first_event() -> None:
    body = ev({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert run(body) == [Error("overloaded", "Overloaded", retryable=True, provider="anthropic")]


@pytest.mark.parametrize(
    ("kind", "code", "retryable"),
    [
        ("api_error", "server", True),
        ("rate_limit_error", "rate_limited", True),
        ("timeout_error", "timeout", True),
        ("invalid_request_error", "invalid_request", False),
        ("permission_error", "permission", False),
        ("authentication_error", "auth", False),
        ("billing_error", "permission", False),
        ("not_found_error", "not_found", False),
        ("overloaded_error", "overloaded", True),
        ("a_new_error", "server", True),
    ],
)
def test_in_band_error_types(kind: str, code: str, retryable: bool) -> None:
    body = message_start() + ev({"type": "error", "error": {"type": kind, "message": f"boom {KEY}"}})
    last = run(body)[-1]
    assert isinstance(last, Error)
    assert (last.code, last.retryable, last.status) == (code, retryable, None)
    assert KEY not in last.message


@pytest.mark.parametrize(
    "fragments", [(), ("",)], ids=["no input_json_delta", "one empty partial_json"]
)  # fmt: skip
def test_tool_without_arguments_gives_empty_object(fragments: tuple[str, ...]) -> None:
    body = message_start() + tool_block(0, "toolu_1", "get_time", *fragments) + message_delta("tool_use") + STOP
    assert run(body)[1:4] == [
        ToolCallStart(0, "toolu_1", "get_time"),
        ToolArgsDelta(0, "{}"),
        ToolCallEnd(0, "toolu_1", "get_time", {}),
    ]


def test_parallel_tool_calls_after_text() -> None:
    body = (
        text_message("Checking both.")
        + tool_block(1, "toolu_a", "weather", '{"city": ', '"Paris"}')
        + tool_block(2, "toolu_b", "weather", '{"city": "Rome"}')
        + message_delta("tool_use", output_tokens=80)
        + STOP
    )
    assert run(body) == [
        START,
        TextDelta("Checking both."),
        ToolCallStart(0, "toolu_a", "weather"),
        ToolArgsDelta(0, '{"city": '),
        ToolArgsDelta(0, '"Paris"}'),
        ToolCallEnd(0, "toolu_a", "weather", {"city": "Paris"}),
        ToolCallStart(1, "toolu_b", "weather"),
        ToolArgsDelta(1, '{"city": "Rome"}'),
        ToolCallEnd(1, "toolu_b", "weather", {"city": "Rome"}),
        Usage(input_tokens=25, output_tokens=80),
        Finish("tool_calls", "tool_use"),
    ]


def test_whole_input_in_the_start_block() -> None:
    body = message_start() + block_start(0, {"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}})
    events = run(body + block_stop(0) + message_delta("tool_use") + STOP)
    assert events[1:4] == [ToolCallStart(0, "t", "f"), ToolArgsDelta(0, '{"a":1}'), ToolCallEnd(0, "t", "f", {"a": 1})]


def test_usage_is_never_double_counted() -> None:
    body = (
        message_start(input_tokens=100, cache_read_input_tokens=50, cache_creation_input_tokens=20, output_tokens=1)
        + block_start(0, {"type": "text", "text": ""})
        + delta(0, "text_delta", text="Hi")
        + block_stop(0)
        + message_delta(None, output_tokens=30)
        # Newer API versions repeat the (cumulative) input counts: they replace, never add.
        + message_delta("end_turn", input_tokens=100, cache_read_input_tokens=50, output_tokens=45)
        + STOP
    )
    assert run(body)[-2] == Usage(input_tokens=100, output_tokens=45, cache_read_tokens=50, cache_write_tokens=20)


def test_message_delta_usage_with_server_tool_counts_and_cache_details() -> None:
    # The documented current shape: cumulative counts, nested server_tool_use and cache_creation objects.
    start = ev({"type": "message_start", "message": {"id": "msg_1", "model": "claude-sonnet-4-5", "usage": {
        "input_tokens": 410, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2048, "output_tokens": 3,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "server_tool_use": None, "service_tier": "standard"}}})  # fmt: skip
    final = ev({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {
        "input_tokens": None, "cache_creation_input_tokens": None, "cache_read_input_tokens": 2048,
        "output_tokens": 87, "server_tool_use": {"web_search_requests": 2}}})  # fmt: skip
    body = start + block_start(0, {"type": "text", "text": ""}) + delta(0, "text_delta", text="ok") + block_stop(0)
    assert run(body + final + STOP)[-2:] == [
        Usage(input_tokens=410, output_tokens=87, cache_read_tokens=2048),
        Finish("stop", "end_turn"),
    ]


def test_thinking_with_signature_then_text() -> None:
    body = (
        message_start()
        + block_start(0, {"type": "thinking", "thinking": "", "signature": ""})
        + delta(0, "thinking_delta", thinking="Let me think.")
        + delta(0, "signature_delta", signature="c2lnbmF0dXJl")
        + block_stop(0)
        + block_start(1, {"type": "redacted_thinking", "data": "opaque"})
        + block_stop(1)
        + block_start(2, {"type": "text", "text": ""})
        + delta(2, "text_delta", text="42")
        + block_stop(2)
        + message_delta()
        + STOP
    )
    assert run(body)[1:5] == [
        ReasoningDelta("Let me think."),
        ReasoningDelta("", signature="c2lnbmF0dXJl"),
        ReasoningDelta("", redacted="opaque"),
        TextDelta("42", 2),
    ]


REDACTED = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"


def redacted_multi_turn_body() -> bytes:
    """Documented extended thinking with a redacted block: it arrives whole in its start, no deltas."""
    return (
        message_start()
        + PING
        + block_start(0, {"type": "redacted_thinking", "data": REDACTED})
        + block_stop(0)
        + block_start(1, {"type": "thinking", "thinking": "", "signature": ""})
        + delta(1, "thinking_delta", thinking="Visible part.")
        + delta(1, "signature_delta", signature="U0lHMQ==")
        + block_stop(1)
        + tool_block(2, "toolu_7", "get_weather", '{"location": ', '"Oslo"}')
        + message_delta("tool_use", output_tokens=40)
        + STOP
    )


def test_redacted_thinking_is_kept_and_sent_back_verbatim() -> None:
    body = redacted_multi_turn_body()
    events = run(body)
    assert events == [
        START,
        ReasoningDelta("", redacted=REDACTED),
        ReasoningDelta("Visible part."),
        ReasoningDelta("", signature="U0lHMQ=="),
        ToolCallStart(0, "toolu_7", "get_weather"),
        ToolArgsDelta(0, '{"location": '),
        ToolArgsDelta(0, '"Oslo"}'),
        ToolCallEnd(0, "toolu_7", "get_weather", {"location": "Oslo"}),
        Usage(input_tokens=25, output_tokens=40),
        Finish("tool_calls", "tool_use"),
    ]
    assert [run([body[i : i + 1] for i in range(len(body))]), run(split(body, [7, 300, 301, 650]))] == [events] * 2
    builder = ResponseBuilder()
    for event in events:
        builder.add(event)
    response = builder.build()
    assert response.reasoning == "Visible part."
    request = ChatRequest("anthropic:m", [Message.user("Oslo?"), response.message(), Message.tool("toolu_7", "-3C")])
    assert encode_body(request, "m")["messages"][1]["content"] == [
        {"type": "redacted_thinking", "data": REDACTED},
        {"type": "thinking", "thinking": "Visible part.", "signature": "U0lHMQ=="},
        {"type": "tool_use", "id": "toolu_7", "name": "get_weather", "input": {"location": "Oslo"}},
    ]


def test_server_tools_are_not_client_tool_calls() -> None:
    # Web search runs at Anthropic; its block and result stream by, then the answer.
    body = (
        message_start()
        + block_start(0, {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}})
        + delta(0, "input_json_delta", partial_json='{"query": "weather NYC"}')
        + block_stop(0)
        + block_start(1, {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []})
        + block_stop(1)
        + block_start(2, {"type": "text", "text": ""})
        + delta(2, "citations_delta", citation={"type": "web_search_result_location", "url": "https://x"})
        + delta(2, "text_delta", text="Sunny.")
        + block_stop(2)
        + message_delta("end_turn")
        + STOP
    )
    events = run(body)
    assert not any(isinstance(e, (ToolCallStart, ToolArgsDelta, ToolCallEnd)) for e in events)
    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta("Sunny.", 2)]
    assert events[-1] == Finish("stop", "end_turn")


def test_pings_unknown_events_and_unknown_deltas_are_skipped() -> None:
    body = (
        PING
        + message_start()
        + PING
        + ev({"type": "message_something_new", "foo": [1, 2]})
        + block_start(0, {"type": "a_new_block", "x": 1})
        + delta(0, "a_new_delta", y=2)
        + block_stop(0)
        + block_start(1, {"type": "text", "text": ""})
        + delta(1, "text_delta", text="ok")
        + PING
        + block_stop(1)
        + b"event: ping\ndata:\n\n"  # an empty data line
        + message_delta()
        + STOP
    )
    assert run(body) == [
        START,
        TextDelta("ok", 1),
        Usage(input_tokens=25, output_tokens=15),
        Finish("stop", "end_turn"),
    ]


def test_event_name_stands_in_for_a_missing_type() -> None:
    events = run(text_message("x") + message_delta() + b"event: message_stop\ndata: {}\n\n")
    assert events[-1] == Finish("stop", "end_turn")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
     ("refusal", "content_filter"), ("model_context_window_exceeded", "length"), ("pause_turn", "other"),
     ("something_new", "other")],
)  # fmt: skip
def test_stop_reasons(raw: str, reason: str) -> None:
    assert run(text_message("x") + message_delta(raw) + STOP)[-1] == Finish(reason, raw)  # type: ignore[arg-type]


def test_message_stop_without_a_stop_reason() -> None:
    assert run(text_message("x") + STOP)[-1] == Finish("other", None)


# -- HTTP errors ---------------------------------------------------------------------------

PROVIDER = Anthropic(api_key=KEY)


@pytest.mark.parametrize(
    ("name", "status", "code", "message"),
    [
        ("error_400_invalid_request.json", 400, "invalid_request", "This model does not support effort level 'xhigh'"),
        ("error_404_not_found.json", 404, "not_found", "model: claude-does-not-exist"),
    ],
)
def test_error_fixtures(name: str, status: int, code: str, message: str) -> None:
    data = msgspec.json.decode(body_of(name))
    assert data["http_status"] == status
    event = PROVIDER.map_error(status, {"content-type": "application/json"}, msgspec.json.encode(data["body"]))
    assert (event.code, event.status, event.retryable, event.provider, event.retry_after) == (
        code, status, False, "anthropic", None,
    )  # fmt: skip
    assert event.message.startswith(message)


def error_body(kind: str, message: str) -> bytes:
    return msgspec.json.encode({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_1"})


@pytest.mark.parametrize(
    ("status", "headers", "kind", "message", "expected"),
    [
        (429, {"retry-after": "7"}, "rate_limit_error", "Number of request tokens has exceeded your rate limit",
         ("rate_limited", True, 7.0)),
        (429, {"retry-after-ms": "1500"}, "rate_limit_error", "slow down", ("rate_limited", True, 1.5)),
        (529, {}, "overloaded_error", "Overloaded", ("overloaded", True, None)),
        (500, {}, "api_error", "Internal server error", ("server", True, None)),
        (401, {}, "authentication_error", "invalid x-api-key", ("auth", False, None)),
        (403, {}, "permission_error", "Your API key does not have permission", ("permission", False, None)),
        (413, {}, "request_too_large", "Request exceeds the maximum allowed number of bytes",
         ("context_length", False, None)),
        (400, {}, "invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum",
         ("context_length", False, None)),
    ],
)  # fmt: skip
def test_http_status_mapping(
    status: int, headers: dict[str, str], kind: str, message: str, expected: tuple[str, bool, float | None]
) -> None:
    event = PROVIDER.map_error(status, headers, error_body(kind, message))
    assert (event.code, event.retryable, event.retry_after) == expected
    assert (event.status, event.message, event.provider) == (status, message, "anthropic")


def test_529_without_a_body_is_still_overloaded() -> None:
    event = PROVIDER.map_error(529, {}, b"")
    assert (event.code, event.retryable) == ("overloaded", True)


@pytest.mark.parametrize("value", ["-1", "inf", "nan", "Wed, 21 Oct 2015 07:28:00 GMT", str(10**9), "soon"])
def test_absurd_retry_after_does_not_crash(value: str) -> None:
    event = PROVIDER.map_error(429, {"retry-after": value}, error_body("rate_limit_error", "x"))
    assert event.code == "rate_limited"
    assert event.retry_after is None or 0.0 <= event.retry_after <= 3600.0


def test_401_echoing_the_key_is_redacted() -> None:
    event = PROVIDER.map_error(401, {}, error_body("authentication_error", f"invalid x-api-key: {KEY}"))
    assert (event.code, event.retryable) == ("auth", False)
    assert KEY not in event.message
    assert "canary1234" not in repr(event)


# -- the request encoder ------------------------------------------------------------------

WEATHER = ToolSpec(
    "get_weather",
    "Current weather for a city",
    {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
)


def test_minimal_body() -> None:
    body = encode_body(ChatRequest("anthropic:claude-sonnet-4-5", [Message.user("Hi")]), "claude-sonnet-4-5")
    assert body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,  # required by the API, so always sent
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "stream": True,
    }


def test_full_body_with_every_parameter() -> None:
    request = ChatRequest(
        "anthropic:claude-sonnet-4-5",
        [
            Message.system("Be brief."),
            Message.user([
                TextPart("Compare these."),
                ImagePart(url="https://example.com/a.png"),
                ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
                ImagePart(url="data:image/webp;base64,UklGRg=="),
            ]),
        ],
        system="You are helpful.",
        tools=[WEATHER],
        tool_choice=ToolChoice("get_weather"),
        temperature=0.2,
        top_p=0.9,
        max_tokens=1024,
        stop=["\n\nHuman:"],
        seed=7,
        response_format=ResponseFormat("json_object"),
        metadata={"user_id": "u-123", "trace": "t"},
        extra={"thinking": {"type": "enabled", "budget_tokens": 2048}},
    )  # fmt: skip
    assert encode_body(request, "claude-sonnet-4-5") == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Compare these."},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "UklGRg=="}},
        ]}],
        "stream": True,
        "system": "You are helpful.\n\nBe brief.",
        "tools": [{"name": "get_weather", "description": "Current weather for a city",
                   "input_schema": WEATHER.parameters}],
        "tool_choice": {"type": "tool", "name": "get_weather"},
        "temperature": 0.2,
        "top_p": 0.9,
        "stop_sequences": ["\n\nHuman:"],
        "metadata": {"user_id": "u-123"},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        # no "seed": the API has none
    }  # fmt: skip


@pytest.mark.parametrize(
    ("choice", "encoded"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        (ToolChoice("get_weather"), {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tool_choice(choice: Any, encoded: dict[str, Any]) -> None:
    request = ChatRequest("anthropic:m", [Message.user("Hi")], tools=[WEATHER], tool_choice=choice)
    assert encode_body(request, "m")["tool_choice"] == encoded


def test_history_with_thinking_tool_calls_and_merged_results() -> None:
    request = ChatRequest(
        "anthropic:m",
        [
            Message.user("Weather in Paris and Rome?"),
            Message.assistant([
                ReasoningPart("Two calls.", signature="c2ln"),
                ReasoningPart("unsigned thinking is dropped"),
                TextPart("Checking."),
                ToolCallPart("toolu_1", "get_weather", {"location": "Paris"}),
                ToolCallPart("toolu_2", "get_weather", {"location": "Rome"}),
            ]),
            Message.tool("toolu_1", "18C"),
            Message.tool("toolu_2", "unavailable", is_error=True),
            Message.user("And tomorrow?"),
        ],
    )  # fmt: skip
    assert encode_body(request, "m")["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Two calls.", "signature": "c2ln"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"location": "Rome"}},
        ]},
        # Consecutive results merge into one user turn, and the next user text joins it.
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "unavailable", "is_error": True},
            {"type": "text", "text": "And tomorrow?"},
        ]},
    ]  # fmt: skip


def test_tool_results_go_before_text_in_a_user_turn() -> None:
    request = ChatRequest(
        "anthropic:m",
        [
            Message.assistant([ToolCallPart("toolu_1", "f", {})]),
            Message.user("Here you go:"),
            Message.tool("toolu_1", "done"),
        ],
    )
    assert encode_body(request, "m")["messages"][1]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "done"},
        {"type": "text", "text": "Here you go:"},
    ]


def test_two_step_tool_loop() -> None:
    first = ChatRequest("anthropic:claude-sonnet-4-20250514", [Message.user("Weather in Paris?")], tools=[WEATHER])
    assert encode_body(first, "claude-sonnet-4-20250514")["tools"][0]["name"] == "get_weather"
    builder = ResponseBuilder()
    for event in run(body_of("tool_use_stream.sse")):
        builder.add(event)
    response = builder.build()
    assert response.finish_reason == "tool_calls"
    [tool_call] = response.tool_calls
    second = msgspec.structs.replace(
        first, messages=[*first.messages, response.message(), Message.tool(tool_call.id, "Sunny, 21C")]
    )
    assert encode_body(second, "claude-sonnet-4-20250514")["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "I'll check the current weather in Paris for you."},
            {"type": "tool_use", "id": WEATHER_ID, "name": "get_weather", "input": {"location": "Paris"}},
        ]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": WEATHER_ID, "content": "Sunny, 21C"}]},
    ]  # fmt: skip


def test_two_step_tool_loop_sends_thinking_back_with_its_signature() -> None:
    body = (
        message_start()
        + block_start(0, {"type": "thinking", "thinking": "", "signature": ""})
        + delta(0, "thinking_delta", thinking="Need the weather.")
        + delta(0, "signature_delta", signature="U0lH")
        + block_stop(0)
        + tool_block(1, "toolu_9", "get_weather", '{"location": "Oslo"}')
        + message_delta("tool_use")
        + STOP
    )
    builder = ResponseBuilder()
    for event in run(body):
        builder.add(event)
    response = builder.build()
    request = ChatRequest("anthropic:m", [Message.user("Oslo?"), response.message(), Message.tool("toolu_9", "-3C")])
    assert encode_body(request, "m")["messages"][1:] == [
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Need the weather.", "signature": "U0lH"},
            {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"location": "Oslo"}},
        ]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "-3C"}]},
    ]  # fmt: skip


def test_build_request_url_headers_and_no_key_in_repr() -> None:
    provider = Anthropic(api_key=KEY, headers={"anthropic-beta": "interleaved-thinking-2025-05-14"})
    http = provider.build_request(ChatRequest("anthropic:m", [Message.user("Hi")]), "m")
    assert (http.method, http.url) == ("POST", "https://api.anthropic.com/v1/messages")
    assert http.headers["x-api-key"] == KEY
    assert http.headers["anthropic-version"] == "2023-06-01"
    assert http.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert "authorization" not in http.headers
    assert KEY not in repr(provider)
    assert KEY not in repr(http)
    assert KEY not in http.url


# -- end to end ---------------------------------------------------------------------------------


def engine_for(server: ReplayServer, **kwargs: Any) -> Engine:
    return Engine(providers={"anthropic": create_provider("anthropic", api_key=KEY, base_url=server.url)}, **kwargs)


REQUEST = ChatRequest("anthropic:claude-sonnet-4-5", [Message.user("Hello")], system="Be kind.", max_tokens=300)


async def collect(engine: Engine) -> list[Event]:
    async with engine.stream(REQUEST) as stream:
        return [event async for event in stream]


def assert_no_key(events: list[Event]) -> None:
    assert KEY not in b"".join(encode_event(e) for e in events).decode()


@pytest.mark.parametrize("name", RECORDINGS)
async def test_end_to_end(name: str) -> None:
    async with ReplayServer([Reply(body_of(name), chunk_size=113)]) as server, engine_for(server) as engine:
        events = await collect(engine)
    assert events == expected(name)
    assert_no_key(events)
    [seen] = server.requests
    assert (seen.method, seen.path, seen.query) == ("POST", "/v1/messages", "")
    headers = {k.lower(): v for k, v in seen.headers.items()}
    assert headers["x-api-key"] == KEY
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["content-type"] == "application/json"
    assert "authorization" not in headers
    assert seen.json() == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 300,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
        "stream": True,
        "system": "Be kind.",
    }


async def test_end_to_end_through_httpx() -> None:
    name = "thinking_stream.sse"
    transport = HttpxTransport()
    try:
        async with (
            ReplayServer([Reply(body_of(name), chunk_size=64)]) as server,
            engine_for(server, transport=transport) as engine,
        ):
            events = await collect(engine)
    finally:
        await transport.aclose()
    assert events == expected(name)
    assert_no_key(events)
    assert {k.lower(): v for k, v in server.requests[0].headers.items()}["x-api-key"] == KEY


async def test_slow_drip_gives_identical_events() -> None:
    name = "tool_use_stream.sse"
    async with ReplayServer([Reply(body_of(name), chunk_size=1)]) as server, engine_for(server) as engine:
        events = await collect(engine)
    assert events == expected(name)


async def test_in_band_error_through_the_engine() -> None:
    body = text_message("Hi") + ev({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    async with ReplayServer([Reply(body)]) as server, engine_for(server) as engine:
        events = await collect(engine)
    assert events[-1] == Error("overloaded", "Overloaded", retryable=True, provider="anthropic")


async def test_http_429_through_the_engine() -> None:
    reply = Reply(
        error_body("rate_limit_error", f"rate limited for key {KEY}"),
        status=429,
        headers={"content-type": "application/json", "retry-after": "7"},
    )
    async with ReplayServer([reply]) as server, engine_for(server) as engine:
        events = await collect(engine)
    assert len(events) == 1
    error = events[0]
    assert isinstance(error, Error)
    assert (error.code, error.status, error.retry_after, error.retryable) == ("rate_limited", 429, 7.0, True)
    assert_no_key(events)


async def test_connection_cut_mid_stream_is_an_error_not_a_finish() -> None:
    body = body_of("tool_use_stream.sse")
    async with ReplayServer([Reply(body, cut_after=len(body) - 40)]) as server, engine_for(server) as engine:
        events = await collect(engine)
    check_invariants(events)
    assert isinstance(events[-1], Error)
    assert events[-1].code in ("connection", "protocol")
    assert not any(isinstance(e, Finish) for e in events)
