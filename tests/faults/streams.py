"""The recordings the fault suites cut, with where each one's end marker is, found from the bytes.

Each :class:`Recording` names its framing, the provider that speaks it, and two
facts computed from the raw bytes, independently of the decoders under test:

- ``marker_end``: the shortest prefix that holds the provider's whole end marker
  (OpenAI's ``data: [DONE]``, Anthropic's ``message_stop`` payload, Gemini's
  ``finishReason`` chunk, Ollama's ``"done": true`` line, Bedrock's
  ``messageStop`` frame). A stream cut before it must never ``finish``. None for
  recordings that end in an in-band error, which must never finish at all.
- ``must_finish(n)``: whether a body cut cleanly after ``n`` bytes still carries
  everything a complete response does, so it has to ``finish``.

The reference events are the decoder's output for the whole recording; a cut
stream's content must be a prefix of them, and a finished one all of them.
"""

from __future__ import annotations

import base64
import os
import struct
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import msgspec

from lluminary.events import ChatRequest, Error, Event, Fallback, Finish, Message, Start, TextDelta, Usage
from lluminary.events import Retry as RetryEvent
from lluminary.providers import Decoder, Provider, create_provider
from lluminary.providers._base import HttpProvider
from tests.support import FIXTURES, fixture_bytes

Framing = Literal["sse", "ndjson", "eventstream"]

AWS_ENV: Mapping[str, str] = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_REGION": "us-east-1",
}
CONTENT_TYPES: Mapping[Framing, str] = {
    "sse": "text/event-stream",
    "ndjson": "application/x-ndjson",
    "eventstream": "application/vnd.amazon.eventstream",
}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


@dataclass(frozen=True)
class Recording:
    name: str
    framing: Framing
    provider: str
    model: str
    body: bytes = field(repr=False)
    marker_end: int | None
    must_finish: Callable[[int], bool] = field(repr=False)

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.framing]

    def request(self) -> ChatRequest:
        return ChatRequest(model=f"{self.provider}:{self.model}", messages=[Message.user("Hello there")])

    def make_provider(self, base_url: str, *, api_key: str | None = "sk-test") -> Provider:
        if self.provider == "bedrock":
            return create_provider("bedrock", base_url=base_url, env=AWS_ENV)
        suffix = "/v1" if self.provider == "openai" else ""
        return create_provider(self.provider, api_key=api_key, base_url=base_url + suffix, env={})

    def decoder(self) -> Decoder:
        """The decoder the provider itself would build for :meth:`request`."""
        provider = self.make_provider("http://127.0.0.1:9")
        assert isinstance(provider, HttpProvider)
        return provider.decoder(self.request(), self.model)

    @cached_property
    def reference(self) -> list[Event]:
        decoder = self.decoder()
        return decoder.feed(self.body) + decoder.close()

    @cached_property
    def text(self) -> str:
        return text_of(self.reference)


# -- end markers, found in the bytes --------------------------------------------------------


def _line_end(body: bytes, start: int) -> int:
    end = body.find(b"\n", start)
    end = len(body) if end < 0 else end
    return end - 1 if body[end - 1 : end] == b"\r" else end


def _after(body: bytes, needle: bytes) -> int:
    """The end of the line holding the last ``needle``."""
    at = body.rindex(needle)
    return _line_end(body, at)


def _frame_ends(body: bytes) -> list[int]:
    """Offsets just past each AWS event stream frame (only the prelude's length field is read)."""
    ends, pos = [], 0
    while pos < len(body):
        (total,) = struct.unpack_from(">I", body, pos)
        pos += total
        ends.append(pos)
    assert pos == len(body)
    return ends


def _sse(name: str, folder: str, provider: str, model: str, needle: bytes) -> Recording:
    body = fixture_bytes(folder, name)
    end = _after(body, needle)
    tail_blank = not body[end:].strip()  # only separators follow the marker
    assert tail_blank, name
    return Recording(name, "sse", provider, model, body, end, lambda n: n >= end)


def _ndjson(name: str, *, fails: bool = False) -> Recording:
    body = fixture_bytes("ollama", name)
    if fails:
        return Recording(name, "ndjson", "ollama", "llama3.2", body, None, lambda n: False)
    end = _after(body, b'"done":true')
    assert not body[end:].strip(), name
    return Recording(name, "ndjson", "ollama", "llama3.2", body, end, lambda n: n >= end)


def _eventstream(name: str, *, fails: bool = False) -> Recording:
    body = base64.b64decode((FIXTURES / "bedrock" / f"{name}.eventstream.b64").read_text())
    model = "anthropic.claude-3-haiku-20240307-v1:0"
    if fails:
        return Recording(name, "eventstream", "bedrock", model, body, None, lambda n: False)
    ends = _frame_ends(body)
    stop = body.index(b"messageStop")
    stop_end = next(e for e in ends if e > stop)
    # The end marker is messageStop; a body that ends cleanly right after it finishes with an
    # estimate, and one that ends inside the metadata frame that follows is cut.
    return Recording(name, "eventstream", "bedrock", model, body, stop_end, lambda n: n in (stop_end, len(body)))


RECORDINGS: dict[Framing, list[Recording]] = {
    "sse": [
        _sse("text_stream_include_usage.sse", "openai_chat", "openai", "gpt-4o-mini", b"data: [DONE]"),
        _sse("tool_call_stream_include_usage.sse", "openai_chat", "openai", "gpt-4o-mini", b"data: [DONE]"),
        _sse("text_stream.sse", "anthropic", "anthropic", "claude-sonnet-4-5", b'{"type":"message_stop"}'),
        _sse("tool_use_stream.sse", "anthropic", "anthropic", "claude-sonnet-4-5", b'{"type":"message_stop"}'),
        _sse("text_stream.sse", "gemini", "gemini", "gemini-2.0-flash", b'"finishReason"'),
        _sse("function_call_stream.sse", "gemini", "gemini", "gemini-2.0-flash", b'"finishReason"'),
    ],
    "ndjson": [
        _ndjson("chat_stream_text.docs.ndjson"),
        _ndjson("chat_stream_tool_call.docs.ndjson"),
        _ndjson("generate_stream_text.docs.ndjson"),
        _ndjson("generate_stream_midstream_error.docs.ndjson", fails=True),
    ],
    "eventstream": [
        _eventstream("converse_stream_text"),
        _eventstream("converse_stream_tool_use"),
        _eventstream("converse_stream_reasoning_empty_text_delta"),
        _eventstream("exception_model_stream_error", fails=True),
    ],
}


# -- writing and reading streams -------------------------------------------------------------


def eventstream_frame(headers: bytes, payload: bytes) -> bytes:
    """One AWS event stream message with correct lengths and CRCs."""
    prelude = struct.pack(">II", 16 + len(headers) + len(payload), len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def string_header(name: str, value: str) -> bytes:
    """An event stream header of type 7 (a UTF-8 string)."""
    raw, val = name.encode(), value.encode()
    return bytes([len(raw)]) + raw + b"\x07" + struct.pack(">H", len(val)) + val


def text_of(events: Sequence[object]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def content(events: Sequence[Event]) -> list[Event]:
    """What a consumer keeps: all but start (its model may be a fallback's), usage (estimated on
    a cut), retry and fallback events, and the terminal."""
    return [e for e in events if not isinstance(e, (Start, Usage, RetryEvent, Fallback, Finish, Error))]


def is_prefix(part: Sequence[Event], whole: Sequence[Event]) -> bool:
    return len(part) <= len(whole) and all(a == b for a, b in zip(part, whole, strict=False))


def as_json(events: Sequence[Event]) -> list[object]:
    return [msgspec.to_builtins(e) for e in events]
