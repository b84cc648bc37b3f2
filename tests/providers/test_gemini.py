"""Gemini: the recorded streams, re-chunking, truncation, errors, the encoder, end to end.

The recordings are raw ``alt=sse`` bodies with CRLF CRLF separators. The JSON
decoder is checked on the same responses re-wrapped as the JSON array that
``streamGenerateContent`` sends without ``alt=sse``. Streams that no recording
covers (thinking text, cached tokens, blocked prompts, in-band errors …) are
built from the documented ``GenerateContentResponse`` shape.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given

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
    ToolSpec,
    Usage,
    encode_event,
)
from lluminary.providers import create_provider
from lluminary.providers import gemini as gemini_pkg
from lluminary.providers.gemini import Gemini, GeminiDecoder, GeminiJSONDecoder, encode_body, map_error
from tests.support import ReplayServer, Reply, check_invariants, cut_points, decode, fixture_bytes, split

MODEL = "gemini-2.0-flash"
TEXT = fixture_bytes("gemini", "text_stream.sse")
CALL = fixture_bytes("gemini", "function_call_stream.sse")
AFTER_TOOL = fixture_bytes("gemini", "text_after_tool_result_stream.sse")
SIGNED_CALL = fixture_bytes("gemini", "function_call_thought_signature_stream.sse")
SIGNATURE = json.loads(SIGNED_CALL.split(b"\r\n\r\n")[0][6:])["candidates"][0]["content"]["parts"][0][
    "thoughtSignature"
]
RECORDINGS = {
    "text_stream.sse": TEXT,
    "function_call_stream.sse": CALL,
    "text_after_tool_result_stream.sse": AFTER_TOOL,
    "function_call_thought_signature_stream.sse": SIGNED_CALL,
}


def sse_decoder() -> GeminiDecoder:
    return GeminiDecoder(model=MODEL, input_estimate=7)


def json_decoder() -> GeminiJSONDecoder:
    return GeminiJSONDecoder(model=MODEL, input_estimate=7)


def sse(*responses: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(r).encode() + b"\r\n\r\n" for r in responses)


def as_json_array(body: bytes) -> bytes:
    """The same responses as the JSON array ``streamGenerateContent`` returns without ``alt=sse``."""
    payloads = [m[6:] for m in body.split(b"\r\n\r\n") if m.strip()]
    return b"[" + b",\r\n".join(payloads) + b"]"


def parts(*items: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": list(items), "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    response: dict[str, Any] = {"candidates": [candidate], "responseId": "r1", "modelVersion": MODEL}
    if usage is not None:
        response["usageMetadata"] = usage
    return response


# -- 1. the recordings decode to exactly the right events ------------------------------

EXPECTED: dict[str, list[Event]] = {
    "text_stream.sse": [
        Start("w1peaMz6INOvnvgPgYfPiQY", "gemini", "gemini-2.0-flash-exp"),
        TextDelta("The"),
        TextDelta(" capital of France"),
        TextDelta(" is Paris.\n"),
        Usage(input_tokens=13, output_tokens=8),  # the last usageMetadata wins, never a sum
        Finish("stop", "STOP"),
    ],
    "function_call_stream.sse": [
        Start("1lpeaMTxIpW1nvgP-O3vwQY", "gemini", "gemini-2.0-flash"),
        ToolCallStart(0, "gemini-call-1lpeaMTxIpW1nvgP-O3vwQY-0", "get_capital"),
        ToolArgsDelta(0, '{"country":"France"}'),
        ToolCallEnd(0, "gemini-call-1lpeaMTxIpW1nvgP-O3vwQY-0", "get_capital", {"country": "France"}),
        Usage(input_tokens=52, output_tokens=5),
        Finish("tool_calls", "STOP"),
    ],
    "text_after_tool_result_stream.sse": [
        Start("11peaI_ZJLq3nvgP0vasuQk", "gemini", "gemini-2.0-flash"),
        TextDelta("The temperature in Paris"),
        TextDelta(" is 30°C.\n"),
        Usage(input_tokens=79, output_tokens=12),
        Finish("stop", "STOP"),
    ],
    "function_call_thought_signature_stream.sse": [
        Start("QUVVadTSNJ6_qtsPvN7J8Q0", "gemini", "gemini-3-pro-preview"),
        ReasoningDelta("", SIGNATURE),
        ToolCallStart(0, "gemini-call-QUVVadTSNJ6_qtsPvN7J8Q0-0", "get_country"),
        ToolArgsDelta(0, "{}"),
        ToolCallEnd(0, "gemini-call-QUVVadTSNJ6_qtsPvN7J8Q0-0", "get_country", {}),
        # output = candidates 10 + thoughts 202; the thoughts are the reasoning breakdown
        Usage(input_tokens=29, output_tokens=212, reasoning_tokens=202),
        Finish("tool_calls", "STOP"),
    ],
}


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_recording_decodes_exactly(name: str) -> None:
    events = decode(sse_decoder, [RECORDINGS[name]])
    check_invariants(events)
    assert events == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_recording_as_json_array_gives_the_same_events(name: str) -> None:
    events = decode(json_decoder, [as_json_array(RECORDINGS[name])])
    assert events == EXPECTED[name]


def test_single_generate_content_object() -> None:
    body = json.dumps(
        parts({"text": "Paris."}, finish="STOP", usage={"promptTokenCount": 4, "candidatesTokenCount": 2})
    )
    events = decode(json_decoder, [body.encode()])
    check_invariants(events)
    assert events == [Start("r1", "gemini", MODEL), TextDelta("Paris."), Usage(4, 2), Finish("stop", "STOP")]


def test_json_strings_with_braces_quotes_and_escapes_split_anywhere() -> None:
    tricky = 'a {"b": "}"} \\ \\" ] [ \u00e9 \u2028 }}} end'
    array = b"[" + json.dumps(parts({"text": tricky})).encode() + b" , " + json.dumps(parts(finish="STOP")).encode()
    array += b"]\n"
    for size in (1, 2, 3, 7):
        pieces = [array[i : i + size] for i in range(0, len(array), size)]
        events = decode(json_decoder, pieces)
        assert [e.text for e in events if isinstance(e, TextDelta)] == [tricky]
        assert events[-1] == Finish("stop", "STOP")


# -- 2. the same events however the bytes are split --------------------------------------


def _resplit_check(body: bytes) -> Any:
    @given(cut_points(body))
    def check(cuts: list[int]) -> None:
        assert decode(sse_decoder, split(body, cuts)) == decode(sse_decoder, [body])
        array = as_json_array(body)
        assert decode(json_decoder, split(array, cuts)) == decode(json_decoder, [array])

    return check


test_resplit_text = _resplit_check(TEXT)
test_resplit_call = _resplit_check(CALL)
test_resplit_after_tool = _resplit_check(AFTER_TOOL)
test_resplit_signed_call = _resplit_check(SIGNED_CALL)


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_one_byte_at_a_time(name: str) -> None:
    body = RECORDINGS[name]
    assert decode(sse_decoder, [body[i : i + 1] for i in range(len(body))]) == EXPECTED[name]
    array = as_json_array(body)
    assert decode(json_decoder, [array[i : i + 1] for i in range(len(array))]) == EXPECTED[name]


# -- 3. truncation, garbage, bad JSON ----------------------------------------------------


@pytest.mark.parametrize("name", sorted(RECORDINGS))
@pytest.mark.parametrize("framing", ["sse", "json"])
def test_every_truncation_ends_in_one_terminal_event(name: str, framing: str) -> None:
    body = RECORDINGS[name] if framing == "sse" else as_json_array(RECORDINGS[name])
    factory = sse_decoder if framing == "sse" else json_decoder
    # SSE: the end marker is the whole finishReason chunk. JSON: the closing bracket.
    complete = body.rindex(b"}") + 1 if framing == "sse" else len(body)
    for cut in range(len(body)):
        events = decode(factory, [body[:cut]])
        check_invariants(events)
        if cut < complete:
            assert isinstance(events[-1], Error), cut
            assert events[-1].code == "protocol"
        else:
            assert events == EXPECTED[name], cut


@pytest.mark.parametrize(
    "body",
    [
        b"\x00\xff garbage \r\n\r\n",
        b"data: {not json}\r\n\r\n",
        b'data: {"candidates": "nope"}\r\n\r\n',
        b"data: [1, 2]\r\n\r\n",
    ],
)
def test_garbage_and_bad_json_are_protocol_errors(body: bytes) -> None:
    first = TEXT.split(b"\r\n\r\n")[0] + b"\r\n\r\n"  # a good chunk, then the bad one
    events = decode(sse_decoder, [first, body])
    check_invariants(events)
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"


@pytest.mark.parametrize("body", [b"garbage", b"[{}]]", b'{"a": 1} x', b"[1]", b'[{"a":1} {"b":2}]'])
def test_json_decoder_rejects_what_is_not_an_object_or_array_of_objects(body: bytes) -> None:
    events = decode(json_decoder, [body])
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"


def test_empty_body_is_a_protocol_error() -> None:
    for factory in (sse_decoder, json_decoder):
        events = decode(factory, [b""])
        assert events == [events[-1]]
        assert isinstance(events[-1], Error)
        assert events[-1].code == "protocol"


@pytest.mark.parametrize("args", ['{"city": "Par', "[1, 2]", '"just a string"'])
def test_bad_tool_arguments_are_a_protocol_error_not_a_half_call(args: str) -> None:
    body = sse(parts({"functionCall": {"name": "get_weather", "args": args}}, finish="STOP"))
    events = decode(sse_decoder, [body])
    check_invariants(events)
    assert not any(isinstance(e, ToolCallEnd) for e in events)
    assert isinstance(events[-1], Error)
    assert events[-1].code == "protocol"


# -- stream features no recording covers ---------------------------------------------------


def test_thinking_text_signature_and_cached_usage() -> None:
    usage = {
        "promptTokenCount": 1000,
        "cachedContentTokenCount": 800,
        "toolUsePromptTokenCount": 50,
        "candidatesTokenCount": 20,
        "thoughtsTokenCount": 30,
        "totalTokenCount": 1100,
    }
    body = sse(
        parts({"text": "Let me think", "thought": True}, usage={"promptTokenCount": 1000}),
        parts({"text": " about it.", "thought": True, "thoughtSignature": "c2ln"}),
        parts({"text": "Answer: 4"}, {"text": "", "thoughtSignature": "c2lnMg=="}, finish="STOP", usage=usage),
    )
    events = decode(sse_decoder, [body])
    check_invariants(events)
    assert events == [
        Start("r1", "gemini", MODEL),
        ReasoningDelta("Let me think"),
        ReasoningDelta(" about it.", "c2ln"),
        TextDelta("Answer: 4"),
        ReasoningDelta("", "c2lnMg=="),
        Usage(input_tokens=250, output_tokens=50, cache_read_tokens=800, reasoning_tokens=30),
        Finish("stop", "STOP"),
    ]


def test_parallel_calls_keep_api_ids_and_ordinal_indexes() -> None:
    body = sse(
        parts(
            {"text": "Checking both."},
            {"functionCall": {"id": "fc-a", "name": "weather", "args": {"city": "Paris"}}},
            {"functionCall": {"id": "fc-b", "name": "weather", "args": {"city": "Rome"}}},
            {"functionCall": {"name": "clock"}},
            finish="STOP",
        )
    )
    events = decode(sse_decoder, [body])
    check_invariants(events)
    ends = [e for e in events if isinstance(e, ToolCallEnd)]
    assert [(e.index, e.id, e.name, e.arguments) for e in ends] == [
        (0, "fc-a", "weather", {"city": "Paris"}),
        (1, "fc-b", "weather", {"city": "Rome"}),
        (2, "gemini-call-r1-2", "clock", {}),
    ]
    assert events[1] == TextDelta("Checking both.")
    assert events[-1] == Finish("tool_calls", "STOP")
    assert isinstance(events[-2], Usage)
    assert events[-2].estimated  # no usageMetadata: our estimate, marked as such
    assert events[-2].input_tokens == 7


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("IMAGE_PROHIBITED_CONTENT", "content_filter"),
        ("IMAGE_RECITATION", "content_filter"),
        ("IMAGE_OTHER", "other"),
        ("NO_IMAGE", "other"),
        ("LANGUAGE", "other"),
        ("OTHER", "other"),
        ("A_REASON_FROM_THE_FUTURE", "other"),
    ],
)
def test_finish_reasons(raw: str, reason: str) -> None:
    events = decode(sse_decoder, [sse(parts({"text": "Hi"}), parts(finish=raw))])
    check_invariants(events)
    assert events[-1] == Finish(reason, raw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "code", "retryable"),
    [
        ("MALFORMED_FUNCTION_CALL", "server", True),
        ("UNEXPECTED_TOOL_CALL", "server", True),
        ("TOO_MANY_TOOL_CALLS", "server", True),
        ("MALFORMED_RESPONSE", "server", True),
        ("MISSING_THOUGHT_SIGNATURE", "invalid_request", False),
    ],
)
def test_failed_generation_is_an_error_not_a_stop(raw: str, code: str, retryable: bool) -> None:
    response = parts(finish=raw)
    response["candidates"][0]["finishMessage"] = "Malformed function call: print(x"
    events = decode(sse_decoder, [sse(response)])
    check_invariants(events)
    error = events[-1]
    assert isinstance(error, Error)
    assert (error.code, error.retryable) == (code, retryable)
    assert raw in error.message
    assert "print(x" in error.message


def test_blocked_prompt_is_a_content_filter_error() -> None:
    blocked = {
        "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT"}]},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
        "responseId": "r9",
    }
    events = decode(sse_decoder, [sse(blocked)])
    check_invariants(events)
    assert events[:2] == [Start("r9", "gemini", MODEL), Usage(input_tokens=9)]
    error = events[-1]
    assert isinstance(error, Error)
    assert error.code == "content_filter"
    assert not error.retryable
    assert "SAFETY" in error.message


def test_in_band_error_after_http_200() -> None:
    message = "The model is overloaded. Please try again later."
    error = {
        "error": {
            "code": 503,
            "message": message,
            "status": "UNAVAILABLE",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}],
        }
    }
    events = decode(sse_decoder, [sse(parts({"text": "Hel"}), error)])
    check_invariants(events)
    assert events[1] == TextDelta("Hel")
    assert isinstance(events[2], Usage)  # aborted streams are still priced
    assert events[-1] == Error("overloaded", message, True, "gemini", 503, 1.5)
    # The same error as the last element of the JSON array form.
    array = b"[" + json.dumps(parts({"text": "Hel"})).encode() + b"," + json.dumps(error).encode() + b"]"
    assert decode(json_decoder, [array]) == events


def test_unknown_parts_and_fields_are_skipped() -> None:
    body = sse(
        {"candidates": [{"content": {"parts": [{"text": "a"}]}, "citationMetadata": {"x": 1}}], "newField": [1]},
        parts(
            {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
            {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
            {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1"}},
            {"text": "b", "futurePartField": True},
            finish="STOP",
        ),
    )
    events = decode(sse_decoder, [body])
    check_invariants(events)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["a", "b"]
    assert events[-1] == Finish("stop", "STOP")


def test_usage_only_chunk_after_finish_reason_still_counts() -> None:
    tail = {"usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3}}
    events = decode(sse_decoder, [sse(parts({"text": "x"}, finish="STOP"), tail)])
    assert events[-2:] == [Usage(5, 3), Finish("stop", "STOP")]


# -- 4. HTTP error mapping --------------------------------------------------------------------


def _fixture_error(name: str) -> tuple[int, bytes]:
    data = json.loads(fixture_bytes("gemini", name))
    if "http_status" in data:
        return data["http_status"], json.dumps(data["body"]).encode()
    return data["error"]["code"], json.dumps(data).encode()


def test_error_fixture_404() -> None:
    status, body = _fixture_error("error_404_not_found.json")
    event = map_error("gemini", status, {}, body)
    assert (event.code, event.status, event.retryable, event.retry_after) == ("not_found", 404, False, None)
    assert event.message.startswith("models/gemini-3.6-flahs is not found")


def test_error_fixture_429_retry_info() -> None:
    status, body = _fixture_error("error_429_resource_exhausted.json")
    event = map_error("gemini", status, {}, body)
    assert (event.code, event.status, event.retryable, event.retry_after) == ("rate_limited", 429, True, 34.4)
    # A Retry-After header wins over the body's RetryInfo.
    assert map_error("gemini", status, {"Retry-After": "3"}, body).retry_after == 3.0


def _status_body(code: int, status: str, message: str, *details: dict[str, Any]) -> bytes:
    return json.dumps(
        {"error": {"code": code, "message": message, "status": status, "details": list(details)}}
    ).encode()


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable"),
    [
        (500, _status_body(500, "INTERNAL", "An internal error has occurred."), "server", True),
        (503, _status_body(503, "UNAVAILABLE", "The model is overloaded."), "overloaded", True),
        (504, _status_body(504, "DEADLINE_EXCEEDED", "Deadline expired."), "timeout", True),
        (401, _status_body(401, "UNAUTHENTICATED", "Request had invalid credentials."), "auth", False),
        (403, _status_body(403, "PERMISSION_DENIED", "The caller does not have permission"), "permission", False),
        (
            403,
            _status_body(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without ...)"),
            "auth",
            False,
        ),
        (
            400,
            _status_body(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"},
            ),
            "auth",
            False,
        ),
        (
            400,
            _status_body(
                400,
                "INVALID_ARGUMENT",
                "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            ),
            "context_length",
            False,
        ),
        (400, _status_body(400, "INVALID_ARGUMENT", "Invalid JSON payload received."), "invalid_request", False),
        (400, _status_body(400, "FAILED_PRECONDITION", "User location is not supported"), "permission", False),
        (529, b'{"error": {"message": "overloaded"}}', "overloaded", True),
        (502, b"<html><body>Bad Gateway</body></html>", "server", True),
        (
            429,
            b'[{"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}]',
            "rate_limited",
            True,
        ),
    ],
)
def test_http_error_mapping(status: int, body: bytes, code: str, retryable: bool) -> None:
    event = map_error("gemini", status, {}, body)
    assert (event.code, event.status, event.retryable, event.provider) == (code, status, retryable, "gemini")
    assert event.message


def test_429_with_retry_after_header_and_no_body_details() -> None:
    body = _status_body(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).")
    event = map_error("gemini", 429, {"retry-after": "20"}, body)
    assert (event.code, event.retryable, event.retry_after) == ("rate_limited", True, 20.0)


def test_error_messages_never_carry_the_key() -> None:
    provider = Gemini(api_key="AIzaSyTESTKEY1234567890")
    body = _status_body(400, "INVALID_ARGUMENT", "API key AIzaSyTESTKEY1234567890 not valid.")
    event = provider.map_error(400, {}, body)
    assert "AIzaSyTESTKEY1234567890" not in encode_event(event).decode()


# -- 5. the request encoder ------------------------------------------------------------------

WEATHER = ToolSpec(
    "get_weather",
    "Weather by city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def test_request_body_shape() -> None:
    request = ChatRequest(
        model=f"gemini:{MODEL}",
        system="Be brief.",
        messages=[
            Message.system("Answer in French."),
            Message.user(
                [
                    TextPart("What is in these?"),
                    ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
                    ImagePart(url="https://example.com/cat.jpg"),
                    ImagePart(url="data:image/webp;base64,UklGRg=="),
                    ImagePart(url="data:image/svg+xml,%3Csvg%2F%3E"),
                ]
            ),
            Message.assistant("Un chat."),
            Message.user("Merci"),
        ],
        tools=[WEATHER, ToolSpec("now", "The time")],
        tool_choice="required",
        temperature=0.2,
        top_p=0.9,
        max_tokens=256,
        stop=["END"],
        seed=42,
        response_format=ResponseFormat(schema={"type": "object", "properties": {"a": {"type": "string"}}}),
        extra={"generationConfig": {"thinkingConfig": {"includeThoughts": True}}, "safetySettings": []},
    )
    assert encode_body(request) == {
        "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]},
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "What is in these?"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                    {"fileData": {"fileUri": "https://example.com/cat.jpg", "mimeType": "image/jpeg"}},
                    {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}},
                    {"inlineData": {"mimeType": "image/svg+xml", "data": "PHN2Zy8+"}},  # <svg/>, now base64
                ],
            },
            {"role": "model", "parts": [{"text": "Un chat."}]},
            {"role": "user", "parts": [{"text": "Merci"}]},
        ],
        "tools": [
            {
                "functionDeclarations": [
                    {"name": "get_weather", "description": "Weather by city", "parameters": WEATHER.parameters},
                    {"name": "now", "description": "The time"},  # no parameters: left unset, as documented
                ]
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
        "generationConfig": {
            "temperature": 0.2,
            "topP": 0.9,
            "maxOutputTokens": 256,
            "stopSequences": ["END"],
            "seed": 42,
            "responseMimeType": "application/json",
            "responseSchema": {"type": "object", "properties": {"a": {"type": "string"}}},
            "thinkingConfig": {"includeThoughts": True},  # extra merges into generationConfig
        },
        "safetySettings": [],
    }


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        (ToolChoice("get_weather"), {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ],
)
def test_tool_choice(choice: Any, config: dict[str, Any]) -> None:
    body = encode_body(ChatRequest(model=MODEL, messages=[Message.user("hi")], tools=[WEATHER], tool_choice=choice))
    assert body["toolConfig"] == {"functionCallingConfig": config}


def test_full_json_schemas_go_to_the_json_schema_fields() -> None:
    schema = {"type": "object", "properties": {"a": {"type": ["string", "null"]}}, "additionalProperties": False}
    request = ChatRequest(
        model=MODEL,
        messages=[Message.user("hi")],
        tools=[ToolSpec("f", "", schema)],
        response_format=ResponseFormat(schema=schema),
        extra={"tools": [{"googleSearch": {}}]},
    )
    body = encode_body(request)
    assert body["tools"] == [
        {"functionDeclarations": [{"name": "f", "description": "", "parametersJsonSchema": schema}]},
        {"googleSearch": {}},  # extra tools are added, not swapped in
    ]
    assert body["generationConfig"] == {"responseMimeType": "application/json", "responseJsonSchema": schema}
    json_object = ChatRequest(model=MODEL, messages=[Message.user("hi")], response_format=ResponseFormat("json_object"))
    assert encode_body(json_object)["generationConfig"] == {"responseMimeType": "application/json"}


def test_tool_history_results_and_errors() -> None:
    request = ChatRequest(
        model=MODEL,
        messages=[
            Message.user("Weather in Paris and Rome?"),
            Message.assistant(
                [
                    ToolCallPart("fc-1", "get_weather", {"city": "Paris"}),
                    ToolCallPart("gemini-call-r1-1", "get_weather", {"city": "Rome"}),
                ]
            ),
            Message.tool("fc-1", '{"temp": 30}'),
            Message.tool("gemini-call-r1-1", "timeout", is_error=True, name="get_weather"),
            Message.user("And tomorrow?"),
        ],
    )
    assert encode_body(request)["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris and Rome?"}]},
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "fc-1"}},
                # our own synthesized ids are never sent: the API did not make them
                {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
            ],
        },
        {
            "role": "user",  # parallel results and the next question share one turn
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 30}, "id": "fc-1"}},
                {"functionResponse": {"name": "get_weather", "response": {"error": "timeout"}}},
                {"text": "And tomorrow?"},
            ],
        },
    ]


def test_signature_goes_back_on_the_last_text_part_without_calls() -> None:
    message = Message.assistant([ReasoningPart("thinking…", signature="c2ln"), TextPart("a"), TextPart("b")])
    body = encode_body(ChatRequest(model=MODEL, messages=[Message.user("q"), message]))
    assert body["contents"][1] == {"role": "model", "parts": [{"text": "a"}, {"text": "b", "thoughtSignature": "c2ln"}]}


async def test_multi_turn_tool_loop() -> None:
    first = ChatRequest(
        model=f"gemini:{MODEL}", messages=[Message.user("Where am I?")], tools=[ToolSpec("get_country")]
    )
    assert encode_body(first)["tools"] == [{"functionDeclarations": [{"name": "get_country", "description": ""}]}]
    builder = ResponseBuilder()
    events = decode(sse_decoder, [SIGNED_CALL])
    assert isinstance(events[-2], Usage)
    assert isinstance(events[-3], ToolCallEnd)
    for event in events:
        builder.add(event)
    response = builder.build()
    call = response.tool_calls[0]
    second = msgspec.structs.replace(
        first, messages=[*first.messages, response.message(), Message.tool(call.id, "Mexico")]
    )
    body = encode_body(second)
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Where am I?"}]},
        {
            "role": "model",
            "parts": [{"functionCall": {"name": "get_country", "args": {}}, "thoughtSignature": SIGNATURE}],
        },
        {"role": "user", "parts": [{"functionResponse": {"name": "get_country", "response": {"result": "Mexico"}}}]},
    ]


# -- 6. end to end over loopback HTTP ---------------------------------------------------------


async def test_end_to_end_through_the_engine() -> None:
    request = ChatRequest(model=f"gemini:{MODEL}", messages=[Message.user("Capital of France?")], max_tokens=50)
    async with ReplayServer([Reply(TEXT, chunk_size=11)]) as server:
        provider = create_provider("gemini", api_key="test-key", base_url=server.url)
        async with Engine(providers={"gemini": provider}) as engine, engine.stream(request) as stream:
            events = [event async for event in stream]
    assert events == EXPECTED["text_stream.sse"]
    seen = server.requests[0]
    assert (seen.method, seen.path, seen.query) == ("POST", f"/v1beta/models/{MODEL}:streamGenerateContent", "alt=sse")
    assert seen.headers["x-goog-api-key"] == "test-key"
    assert "test-key" not in seen.query
    assert seen.json() == encode_body(request)
    assert seen.json()["generationConfig"] == {"maxOutputTokens": 50}
    assert not any(b"test-key" in encode_event(e) for e in events)
    assert "test-key" not in repr(provider)


async def test_end_to_end_http_429() -> None:
    status, body = _fixture_error("error_429_resource_exhausted.json")
    reply = Reply(body, status=status, headers={"content-type": "application/json"})
    async with ReplayServer([reply]) as server:
        provider = create_provider("gemini", api_key="test-key", base_url=server.url)
        async with Engine(providers={"gemini": provider}) as engine:
            events = [
                e async for e in engine.stream(ChatRequest(model=f"gemini:{MODEL}", messages=[Message.user("x")]))
            ]
    assert len(events) == 1
    error = events[0]
    assert isinstance(error, Error)
    assert (error.code, error.status, error.retry_after) == ("rate_limited", 429, 34.4)


def test_keys_from_the_environment() -> None:
    assert create_provider("gemini", env={"GOOGLE_API_KEY": "g-key"}).secrets == ("g-key",)  # type: ignore[attr-defined]
    both = create_provider("gemini", env={"GOOGLE_API_KEY": "g-key", "GEMINI_API_KEY": "m-key"})
    assert both.secrets == ("m-key",)  # type: ignore[attr-defined]
    with pytest.raises(MissingKeyError):
        create_provider("gemini", env={})


def test_urls() -> None:
    provider = Gemini(api_key="k")
    base = "https://generativelanguage.googleapis.com/v1beta"
    assert provider.url(MODEL) == f"{base}/models/{MODEL}:streamGenerateContent?alt=sse"
    assert provider.url("models/gemini-pro") == f"{base}/models/gemini-pro:streamGenerateContent?alt=sse"
    assert provider.url("tunedModels/mine") == f"{base}/tunedModels/mine:streamGenerateContent?alt=sse"
    assert Gemini(api_key="k", base_url=base + "/").url("m").startswith(f"{base}/models/m:")
    http = provider.build_request(ChatRequest(model=MODEL, messages=[Message.user("hi")]), MODEL)
    assert "k" not in http.url.split("?")[1]
    assert http.headers["x-goog-api-key"] == "k"


def test_exported_members() -> None:
    assert gemini_pkg.__all__ == ["Gemini", "GeminiDecoder", "GeminiJSONDecoder", "encode_body", "map_error"]
