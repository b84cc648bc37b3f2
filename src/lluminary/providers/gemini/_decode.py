"""Gemini ``generateContent`` decoders: SSE stream, or a plain JSON body.

Wire facts this relies on. ``streamGenerateContent?alt=sse`` sends one
``GenerateContentResponse`` per SSE ``data:`` payload, separated by CRLF CRLF (the
SSE framer handles it). Without ``alt=sse`` the same responses arrive as one
JSON array; ``generateContent`` returns a single response object. Each response
has ``candidates[]`` (``content.parts[]``, ``finishReason``, ``index``),
``promptFeedback``, ``usageMetadata``, ``modelVersion`` and ``responseId``.

- Parts: ``text`` (with ``"thought": true`` it is reasoning), ``functionCall``
  (``name``, ``args`` object, optional ``id``; always whole), and
  ``thoughtSignature`` on any part. A signature is emitted as a
  ``ReasoningDelta`` (on the thought text it came with, else with empty text,
  before the part's own events) so it can be sent back on the next turn. Other
  parts (``inlineData``, ``executableCode``, ``codeExecutionResult`` …) have no
  event kind here and are skipped, as are unknown fields.
- ``usageMetadata`` is cumulative on every chunk, so the last one wins.
  ``promptTokenCount`` includes ``cachedContentTokenCount``;
  ``toolUsePromptTokenCount`` is input on top of it; ``thoughtsTokenCount`` is
  output on top of ``candidatesTokenCount``.
- There is no end event: the response ends after a chunk whose candidate has a
  ``finishReason``. So the end of the body after a ``finishReason`` is the end
  marker, and the end of the body without one is a cut (``protocol`` error). For
  a JSON array the closing ``]`` must also have arrived.
- Outcomes that are not a normal stop become errors, never a quiet ``finish``:
  a blocked prompt (``promptFeedback.blockReason``, no candidates) is an
  ``error`` with code ``content_filter`` because nothing was generated and
  retrying cannot help; ``MALFORMED_FUNCTION_CALL``, ``UNEXPECTED_TOOL_CALL``,
  ``TOO_MANY_TOOL_CALLS`` (the API "exited execution" after too many
  consecutive tool calls, so the turn has no answer) and ``MALFORMED_RESPONSE``
  are model failures (``server``, retryable, since a fresh sample usually
  succeeds); ``MISSING_THOUGHT_SIGNATURE`` means our history
  was incomplete (``invalid_request``). An ``{"error": …}`` payload after
  HTTP 200 maps like an HTTP error body.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec

from lluminary.events import ErrorCode, FinishReason, Usage
from lluminary.providers._decoder import BaseDecoder
from lluminary.providers._framing import SSEFramer, SSEMessage
from lluminary.providers._framing._common import MAX_MESSAGE_BYTES, FramingError
from lluminary.providers.gemini._errors import ErrorStatus, error_from_status

__all__ = ["SYNTHETIC_ID_PREFIX", "GeminiDecoder", "GeminiJSONDecoder", "finish_reason"]

#: Ids we make up for function calls that came without one. The encoder does not
#: send these back to the API, which never saw them.
SYNTHETIC_ID_PREFIX: Final = "gemini-call-"


class _FunctionCall(msgspec.Struct, gc=False):
    name: str = ""
    args: Any = None
    id: str | None = None


class _Part(msgspec.Struct, gc=False, rename="camel"):
    text: str | None = None
    thought: bool | None = None
    thought_signature: str | None = None
    function_call: _FunctionCall | None = None


class _Content(msgspec.Struct, gc=False):
    parts: list[_Part] | None = None


class _Candidate(msgspec.Struct, gc=False, rename="camel"):
    content: _Content | None = None
    finish_reason: str | None = None
    finish_message: str | None = None
    index: int = 0


class _PromptFeedback(msgspec.Struct, gc=False, rename="camel"):
    block_reason: str | None = None
    block_reason_message: str | None = None


class _UsageMetadata(msgspec.Struct, gc=False, rename="camel"):
    prompt_token_count: int = 0
    cached_content_token_count: int = 0
    candidates_token_count: int = 0
    tool_use_prompt_token_count: int = 0
    thoughts_token_count: int = 0


class _Chunk(msgspec.Struct, gc=False, rename="camel"):
    candidates: list[_Candidate] | None = None
    prompt_feedback: _PromptFeedback | None = None
    usage_metadata: _UsageMetadata | None = None
    model_version: str | None = None
    response_id: str | None = None
    error: ErrorStatus | None = None


_decode_chunk: Final = msgspec.json.Decoder(_Chunk).decode

_FINISH: Final[dict[str, FinishReason]] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
}
#: Finish reasons that mean the turn failed rather than ended: (code, retryable).
_FAILED: Final[dict[str, tuple[ErrorCode, bool]]] = {
    "MALFORMED_FUNCTION_CALL": ("server", True),
    "UNEXPECTED_TOOL_CALL": ("server", True),
    "TOO_MANY_TOOL_CALLS": ("server", True),
    "MALFORMED_RESPONSE": ("server", True),
    "MISSING_THOUGHT_SIGNATURE": ("invalid_request", False),
}


def finish_reason(raw: str | None, *, tool_calls: bool = False) -> FinishReason:
    """Our reason for a Gemini ``finishReason``; ``STOP`` after function calls is ``tool_calls``."""
    reason = _FINISH.get(raw, "other") if raw else "other"
    return "tool_calls" if reason == "stop" and tool_calls else reason


class _GeminiBase(BaseDecoder):
    """What both framings share: one ``GenerateContentResponse`` at a time."""

    provider = "gemini"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._raw_finish: str | None = None
        self._response_id = ""

    def _response(self, payload: bytes) -> None:
        if not payload.strip():
            return
        chunk = _decode_chunk(payload)
        if chunk.error is not None:
            self.fail(error_from_status(self.provider, chunk.error, secrets=self.secrets))
            return
        if not self._started:
            self._response_id = chunk.response_id or ""
            self.start(self._response_id, chunk.model_version)
        if chunk.usage_metadata is not None:
            self.set_usage(_usage(chunk.usage_metadata))
        feedback = chunk.prompt_feedback
        if feedback is not None and feedback.block_reason and feedback.block_reason != "BLOCK_REASON_UNSPECIFIED":
            detail = f": {feedback.block_reason_message}" if feedback.block_reason_message else ""
            self.error("content_filter", f"prompt blocked ({feedback.block_reason}){detail}", retryable=False)
            return
        for candidate in chunk.candidates or ():
            self._candidate(candidate)
            if self._done:
                return

    def _candidate(self, candidate: _Candidate) -> None:
        if candidate.content is not None:
            for part in candidate.content.parts or ():
                self._part(candidate.index, part)
        raw = candidate.finish_reason
        if raw is None or raw == "FINISH_REASON_UNSPECIFIED":
            return
        failed = _FAILED.get(raw)
        if failed is not None:
            code, retryable = failed
            detail = f": {candidate.finish_message}" if candidate.finish_message else ""
            self.error(code, f"generation failed ({raw}){detail}", retryable=retryable)
        elif self._raw_finish is None or candidate.index == 0:
            # With several candidates the first one's reason is the stream's reason.
            self._raw_finish = raw

    def _part(self, index: int, part: _Part) -> None:
        if part.thought:
            self.reasoning(part.text or "", part.thought_signature)
            return
        if part.thought_signature:
            self.reasoning("", part.thought_signature)
        if part.text:
            self.text(part.text, index)
        call = part.function_call
        if call is not None:
            ordinal = self.tools.count
            call_id = call.id or _synthetic_id(self._response_id, ordinal)
            self.emit_all(self.tools.whole(("call", ordinal), call_id, call.name, call.args))

    def _end(self) -> None:
        """The body is complete: finish if a ``finishReason`` came, else it was cut."""
        if self._raw_finish is None:
            self.error("protocol", "the gemini stream ended without a finishReason (cut off?)")
        else:
            self.finish(finish_reason(self._raw_finish, tool_calls=self.tools.count > 0), self._raw_finish)


def _synthetic_id(response_id: str, ordinal: int) -> str:
    # The response id keeps ids unique across the turns of one conversation.
    return f"{SYNTHETIC_ID_PREFIX}{response_id}-{ordinal}" if response_id else f"{SYNTHETIC_ID_PREFIX}{ordinal}"


def _usage(u: _UsageMetadata) -> Usage:
    cached = u.cached_content_token_count
    return Usage(
        input_tokens=max(u.prompt_token_count - cached, 0) + u.tool_use_prompt_token_count,
        output_tokens=u.candidates_token_count + u.thoughts_token_count,
        cache_read_tokens=cached,
        reasoning_tokens=u.thoughts_token_count,
    )


class GeminiDecoder(_GeminiBase):
    """``streamGenerateContent?alt=sse``: one response per SSE message."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._framer = SSEFramer()

    def _feed(self, data: bytes) -> None:
        self._messages(self._framer.feed(data))

    def _close(self) -> None:
        self._messages(self._framer.close())
        if not self._done:
            self._end()

    def _messages(self, messages: list[SSEMessage]) -> None:
        for _, payload in messages:
            self._response(payload)
            if self._done:
                return


class GeminiJSONDecoder(_GeminiBase):
    """A JSON body: one ``generateContent`` response, or the array ``streamGenerateContent`` sends without SSE.

    Array elements are decoded as soon as each one is complete, so the array form
    streams too.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._splitter = _JSONSplitter()

    def _feed(self, data: bytes) -> None:
        for payload in self._splitter.feed(data):
            self._response(payload)
            if self._done:
                return
        if self._splitter.complete and not self._done:
            self._end()

    def _close(self) -> None:
        self._splitter.close()
        if not self._splitter.complete:
            self.error("protocol", "the gemini JSON body ended before it was complete")


_WHITESPACE: Final = frozenset(b" \t\r\n")
_OUTSIDE: Final = re.compile(rb'[{}"]')  # what changes state outside a string
_INSIDE: Final = re.compile(rb'["\\]')  # and inside one


class _JSONSplitter:
    """Cuts a body that is one JSON object, or an array of objects, into whole objects.

    It tracks only strings and object depth (arrays nested inside an object do
    not matter for where the object ends), keeps just the bytes of the object in
    progress, and raises :class:`FramingError` for anything that is not an object
    or an array of objects. Bytes after the complete body are not read. Whether
    each object is valid JSON is left to msgspec.
    """

    __slots__ = ("_array", "_buf", "_depth", "_error", "_escape", "_in_string", "_state")

    def __init__(self) -> None:
        # "start", "open" (after "["), "after" (after an element), "comma", "object", "end"
        self._state = "start"
        self._buf = bytearray()
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._array = False
        self._error: FramingError | None = None

    @property
    def complete(self) -> bool:
        return self._state == "end"

    def feed(self, data: bytes) -> list[bytes]:
        if self._error is not None:
            raise self._error
        out: list[bytes] = []
        try:
            self._split(data, out)
        except FramingError as exc:
            if not out:
                raise
            # Hand out the objects before the bad byte and raise on the next call (or at
            # close), as the SSE and event stream framers do: otherwise the objects of
            # an array with a bad byte inside it would be decoded or lost depending on
            # the chunking.
            self._error = exc
        return out

    def close(self) -> None:
        """End of body: report a bad byte that :meth:`feed` held back."""
        if self._error is not None:
            raise self._error

    def _split(self, data: bytes, out: list[bytes]) -> None:
        i, n = 0, len(data)
        while i < n:
            if self._state == "end":
                # What follows a complete body is not read, as nothing after another
                # provider's end marker is: whether a stray byte arrived with the body
                # or after it must not change the outcome.
                return
            if self._state == "object":
                stop = self._scan(data, i)
                if stop < 0:
                    self._buf += data[i:]
                    if len(self._buf) > MAX_MESSAGE_BYTES:
                        raise FramingError("a JSON response exceeds the size limit")
                    break
                self._buf += data[i:stop]
                out.append(bytes(self._buf))
                self._buf.clear()
                self._state = "after" if self._array else "end"
                i = stop
                continue
            byte = data[i]
            if byte in _WHITESPACE:
                i += 1
                continue
            self._structural(byte)
            if self._state != "object":  # an opening brace is left for the scanner
                i += 1

    def _structural(self, byte: int) -> None:
        state = self._state
        if byte == ord("{") and state in ("start", "open", "comma"):
            self._state = "object"
        elif byte == ord("[") and state == "start":
            self._array, self._state = True, "open"
        elif byte == ord(",") and state == "after":
            self._state = "comma"
        elif byte == ord("]") and state in ("open", "after"):
            self._state = "end"
        else:
            raise FramingError(f"unexpected {chr(byte)!r} in a gemini JSON body ({state})")

    def _scan(self, data: bytes, pos: int) -> int:
        """Advance through an object; the offset just past its closing brace, or -1."""
        if self._escape:
            self._escape = False
            pos += 1
        while True:
            if self._in_string:
                match = _INSIDE.search(data, pos)
                if match is None:
                    return -1
                pos = match.end()
                if data[match.start()] == ord("\\"):
                    if pos >= len(data):
                        self._escape = True
                        return -1
                    pos += 1
                else:
                    self._in_string = False
                continue
            match = _OUTSIDE.search(data, pos)
            if match is None:
                return -1
            pos = match.end()
            byte = data[match.start()]
            if byte == ord('"'):
                self._in_string = True
            elif byte == ord("{"):
                self._depth += 1
            else:
                self._depth -= 1
                if self._depth == 0:
                    return pos
