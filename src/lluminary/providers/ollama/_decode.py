"""Ollama native stream decoder: ``/api/chat`` (and ``/api/generate``) NDJSON.

The body is newline-delimited JSON, one object per line. The wire facts we rely on:

- a chat line is ``{"model", "created_at", "message": {"role", "content",
  "thinking"?, "tool_calls"?}, "done": false}``; ``/api/generate`` lines carry the
  text in a top-level ``response`` (and ``thinking``) instead of ``message``, and
  the same decoder reads both;
- tool calls arrive whole, with ``arguments`` as a JSON *object* (not a string),
  usually all in one line. Older servers send no id; newer ones add
  ``function.index`` and sometimes an ``id``. We use the id when present and
  otherwise synthesise ``call_0``, ``call_1``… from our own ordinal;
- the end marker is the line with ``"done": true``. It may still carry text, and
  it holds ``done_reason`` (``stop``, ``length``, ``load``, ``unload``) and the
  token counts ``prompt_eval_count`` / ``eval_count``. Ollama omits a count when
  it has nothing to report (a fully cached prompt has no ``prompt_eval_count``),
  so a missing count is estimated and the usage marked ``estimated``;
- Ollama reports ``done_reason: "stop"`` even when the model called tools, so any
  emitted call makes the finish reason ``tool_calls``;
- an error after HTTP 200 is a line ``{"error": "..."}``, possibly after some
  content; it ends the stream with a typed error (see ``_errors.classify``).

Ollama has no response id, so ``start`` carries an empty id. Unknown fields are
ignored, so newer servers do not break old clients.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from lluminary.events import FinishReason, Usage
from lluminary.providers._decoder import BaseDecoder, estimate_tokens
from lluminary.providers._framing import NDJSONFramer
from lluminary.providers.ollama._errors import classify

__all__ = ["OllamaDecoder", "done_reason"]


class _Function(msgspec.Struct, gc=False):
    name: str = ""
    arguments: Any = None
    index: int | None = None


class _ToolCall(msgspec.Struct, gc=False):
    function: _Function | None = None
    id: str | None = None


class _Message(msgspec.Struct, gc=False):
    content: str | None = None
    thinking: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _ErrorBody(msgspec.Struct, gc=False):
    message: str = ""


class _Line(msgspec.Struct, gc=False):
    model: str | None = None
    message: _Message | None = None
    response: str | None = None  # /api/generate
    thinking: str | None = None  # /api/generate with ``think``
    done: bool = False
    done_reason: str | None = None
    prompt_eval_count: int | None = None
    eval_count: int | None = None
    error: str | _ErrorBody | None = None


_decode_line: Final = msgspec.json.Decoder(_Line).decode
_DONE: Final[dict[str, FinishReason]] = {
    "stop": "stop",
    "length": "length",
    # ``load``/``unload`` answer a request with no messages: the model was (un)loaded
    # and nothing was generated. That is a normal end, but not a "stop".
    "load": "other",
    "unload": "other",
}


def done_reason(raw: str | None) -> FinishReason:
    # Servers older than done_reason (before 0.1.4x) only say ``done: true``.
    return _DONE.get(raw, "other") if raw else "stop"


class OllamaDecoder(BaseDecoder):
    provider = "ollama"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._framer = NDJSONFramer()

    def _feed(self, data: bytes) -> None:
        self._lines(self._framer.feed(data))

    def _close(self) -> None:
        # A last line without its newline still counts: a body cut inside it does
        # not parse, and one that parses but is not ``done`` cannot finish.
        self._lines(self._framer.close())

    def _lines(self, lines: list[bytes]) -> None:
        for raw in lines:
            self._line(_decode_line(raw))
            if self._done:
                return

    def _line(self, line: _Line) -> None:
        if line.error is not None:
            message = line.error if isinstance(line.error, str) else line.error.message
            code, retryable = classify(message)
            self.error(code, message or "ollama reported an error", retryable=retryable)
            return
        self.start("", line.model)
        thinking = line.thinking
        text = line.response
        msg = line.message
        if msg is not None:
            thinking = msg.thinking or thinking
            text = msg.content or text
        if thinking:
            self.reasoning(thinking)
        if text:
            self.text(text)
        if msg is not None and msg.tool_calls:
            for call in msg.tool_calls:
                self._tool_call(call)
        if line.done:
            self._finish(line)

    def _tool_call(self, call: _ToolCall) -> None:
        fn = call.function or _Function()
        ordinal = self.tools.count
        # Whole calls start and end at once, so the key only has to be unique
        # while one call is being emitted; the ordinal is.
        self.emit_all(self.tools.whole(ordinal, call.id or f"call_{ordinal}", fn.name, fn.arguments))

    def _finish(self, line: _Line) -> None:
        prompt, completion = line.prompt_eval_count, line.eval_count
        if prompt is not None or completion is not None:
            # Ollama's counts exclude nothing we could separate: it reports no cache
            # reads, and ``eval_count`` already includes any thinking tokens.
            self.set_usage(
                Usage(
                    input_tokens=self.input_estimate if prompt is None else prompt,
                    output_tokens=estimate_tokens(self._chars) if completion is None else completion,
                    estimated=prompt is None or completion is None,
                )
            )
        reason = "tool_calls" if self.tools.count else done_reason(line.done_reason)
        self.finish(reason, line.done_reason)
