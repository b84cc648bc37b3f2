"""Mistral Chat Completions stream decoder.

The stream is OpenAI's in framing (SSE ``data:`` lines of ``chat.completion.chunk``
objects, ending in ``data: [DONE]``), but its content differs in ways the OpenAI
decoder cannot read, so Mistral has its own, sharing the finish-reason table:

- ``delta.content`` is a string, or, from reasoning ("magistral") models, a list
  of parts: ``{"type": "text", "text": …}`` (→ text) and ``{"type": "thinking",
  "thinking": [{"type": "text", "text": …}]}`` (→ reasoning). Other part types
  (``reference`` …) are skipped;
- a tool call usually arrives whole in one delta: a nine-character ``id``, the
  name and the complete ``arguments``, as a JSON string or as a JSON object. The
  ``index`` may be missing (we use the call's position in the list). A call
  whose first delta already holds a complete JSON object ends at once; one
  streamed in fragments, OpenAI style, ends when its choice finishes; a new id
  at an index in use ends the call before it;
- usage (``prompt_tokens``, ``completion_tokens``, and
  ``prompt_tokens_details.cached_tokens`` where sent) rides on the chunk that
  carries ``finish_reason``; there is no separate usage chunk;
- ``finish_reason`` is ``stop``, ``length``, ``model_length``, ``tool_calls`` or
  ``error``. ``error`` means the generation failed: it ends in ``error``;
- an in-band error is an object with ``"object": "error"`` (or an ``error``
  member, or a bare ``message`` without ``choices``), the shape of Mistral's
  error bodies.

``[DONE]`` is the end marker; a stream cut before it is a protocol error even
after a finish reason.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from lluminary.events import ErrorCode, Usage
from lluminary.providers._decoder import BaseDecoder, ProtocolViolationError
from lluminary.providers._framing import SSEFramer, SSEMessage
from lluminary.providers.mistral._errors import TYPE_CODES, describe
from lluminary.providers.openai._decode import finish_reason

__all__ = ["MistralDecoder"]


class _Function(msgspec.Struct, gc=False):
    name: str | None = None
    arguments: str | dict[str, Any] | None = None


class _ToolCall(msgspec.Struct, gc=False):
    id: str | None = None
    index: int | None = None
    function: _Function | None = None


class _Delta(msgspec.Struct, gc=False):
    # Parts stay plain JSON: an unknown part type must not fail the whole chunk.
    content: str | list[Any] | None = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(msgspec.Struct, gc=False):
    index: int = 0
    delta: _Delta | None = None
    finish_reason: str | None = None


class _PromptDetails(msgspec.Struct, gc=False):
    cached_tokens: int | None = None


class _Usage(msgspec.Struct, gc=False):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_tokens_details: _PromptDetails | None = None


class _ErrorBody(msgspec.Struct, gc=False):
    message: Any = None
    type: str | None = None
    code: str | int | None = None


class _Chunk(msgspec.Struct, gc=False):
    id: str | None = None
    model: str | None = None
    object: str | None = None
    choices: list[_Choice] | None = None
    usage: _Usage | None = None
    # In-band errors: Mistral's error-body fields, or an OpenAI-style ``error`` member.
    message: Any = None
    type: str | None = None
    code: str | int | None = None
    error: _ErrorBody | str | None = None


_decode_chunk: Final = msgspec.json.Decoder(_Chunk).decode
_decode_any: Final = msgspec.json.Decoder().decode
_encode_json: Final = msgspec.json.encode
_DONE: Final = b"[DONE]"


def usage_from(u: _Usage) -> Usage:
    prompt = u.prompt_tokens or 0
    cached = (u.prompt_tokens_details.cached_tokens or 0) if u.prompt_tokens_details else 0
    return Usage(
        input_tokens=max(prompt - cached, 0),
        output_tokens=u.completion_tokens or 0,
        cache_read_tokens=min(cached, prompt),
    )


def _complete_object(text: str) -> bool:
    try:
        return isinstance(_decode_any(text), dict)
    except msgspec.DecodeError:
        return False


class MistralDecoder(BaseDecoder):
    provider = "mistral"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._framer = SSEFramer()
        self._raw_finish: str | None = None
        self._ids: dict[tuple[int, int], str | None] = {}

    def _feed(self, data: bytes) -> None:
        self._messages(self._framer.feed(data))

    def _close(self) -> None:
        self._messages(self._framer.close())

    def _messages(self, messages: list[SSEMessage]) -> None:
        for _, payload in messages:
            if payload == _DONE:
                self.finish(finish_reason(self._raw_finish), self._raw_finish)
            elif payload.strip():
                self._chunk(payload)
            if self._done:
                return

    def _chunk(self, payload: bytes) -> None:
        chunk = _decode_chunk(payload)
        if chunk.object == "error" or chunk.error is not None or (chunk.choices is None and chunk.message):
            self._in_band_error(chunk)
            return
        self.start(chunk.id or "", chunk.model)
        if chunk.choices:
            for choice in chunk.choices:
                self._choice(choice)
        if chunk.usage is not None:
            self.set_usage(usage_from(chunk.usage))
        if self._raw_finish == "error":
            # Usage from this same chunk is already set, so the failure is priced.
            self.error("server", "Mistral ended the generation with finish_reason 'error'")

    def _choice(self, choice: _Choice) -> None:
        delta = choice.delta
        if delta is not None:
            content = delta.content
            if isinstance(content, str):
                self.text(content, choice.index)
            elif content:
                self._parts(content, choice.index)
            if delta.tool_calls:
                for position, call in enumerate(delta.tool_calls):
                    self._tool_call(choice.index, position, call)
        if choice.finish_reason is not None and self._raw_finish is None:
            self._raw_finish = choice.finish_reason
            # Calls are complete once their choice finishes; end them now, not at [DONE].
            if self.tools.open:
                self.emit_all(self.tools.end_all())

    def _parts(self, parts: list[Any], index: int) -> None:
        for part in parts:
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "text":
                text = part.get("text")
                if isinstance(text, str):
                    self.text(text, index)
            elif kind == "thinking":
                self._thinking(part.get("thinking"))

    def _thinking(self, thinking: Any) -> None:
        if isinstance(thinking, str):
            self.reasoning(thinking)
        elif isinstance(thinking, list):
            for inner in thinking:
                if isinstance(inner, dict) and inner.get("type", "text") == "text":
                    text = inner.get("text")
                    if isinstance(text, str):
                        self.reasoning(text)

    def _tool_call(self, choice: int, position: int, call: _ToolCall) -> None:
        key = (choice, call.index if call.index is not None else position)
        fn = call.function or _Function()
        # The SDK's default id is the string "null"; it means "no id".
        call_id = call.id if call.id and call.id != "null" else None
        if key in self.tools and call_id is not None and self._ids.get(key) != call_id:
            self.emit_all(self.tools.end(key))
        opening = key not in self.tools
        if opening:
            if not fn.name:
                if fn.arguments:
                    raise ProtocolViolationError(f"tool call {key[1]} sent arguments before its name")
                return  # an empty opening fragment must not start a call
            self._ids[key] = call_id
            self.emit(self.tools.start(key, call_id or f"call_{self.tools.count}", fn.name))
        args = fn.arguments
        text = args if isinstance(args, str) else ("" if args is None else _encode_json(args).decode())
        if text:
            delta = self.tools.delta(key, text)
            if delta is not None:
                self.emit_all([delta])
        if opening and (isinstance(args, dict) or (text and _complete_object(text))):
            self.emit_all(self.tools.end(key))

    def _in_band_error(self, chunk: _Chunk) -> None:
        err = chunk.error
        if isinstance(err, _ErrorBody):
            message, kinds = err.message, (err.code, err.type)
        else:
            message, kinds = err if err is not None else chunk.message, (chunk.code, chunk.type)
        # The machine-readable ``code`` (``unknown_model``) is more precise than the ``type``;
        # numeric codes ("1000") say nothing we map, so the type decides.
        names = [str(k) for k in kinds if k is not None]
        code: ErrorCode = next((TYPE_CODES[k] for k in names if k in TYPE_CODES), "server")
        kind = names[-1] if names else None
        self.error(code, f"Mistral: {describe(message) or kind or 'error in the stream'}")
