"""Cohere v2 Chat stream decoder.

The stream is SSE; every ``data:`` object names its kind in ``type`` (the
``event:`` line repeats it, and we read only the data). What we rely on, from
Cohere's v2 streaming reference:

- ``message-start`` (top-level ``id``) opens the message; the model is not
  repeated in the stream;
- ``content-start`` / ``content-delta`` / ``content-end`` frame each content
  block by ``index``; a delta carries ``delta.message.content.text``, or
  ``.thinking`` in a reasoning model's ``thinking`` block (→ reasoning);
- ``tool-plan-delta`` streams ``delta.message.tool_plan``, the plan the model
  writes before calling tools (→ reasoning, and sent back as ``tool_plan``);
- ``tool-call-start`` (``index``, ``delta.message.tool_calls`` with ``id`` and
  ``function.name``), ``tool-call-delta`` (argument fragments) and
  ``tool-call-end`` frame each call, one after another for parallel calls;
- ``citation-start`` / ``citation-end`` and ``debug`` carry nothing for us;
- ``message-end`` is the end marker: ``delta.finish_reason`` (``COMPLETE``,
  ``STOP_SEQUENCE``, ``MAX_TOKENS``, ``TOOL_CALL``, ``ERROR``, ``TIMEOUT``),
  ``delta.error`` and ``delta.usage``. ``ERROR`` and ``TIMEOUT`` are failures
  and end in ``error``, never a ``finish`` a cache would keep.

Usage counts are ``usage.tokens`` (what the model processed) and
``usage.billed_units`` (what is charged, which leaves out prompt-template and
cached tokens); numbers may be floats. We report ``tokens``, minus
``cached_tokens``, which is a part of ``tokens.input_tokens``; billed units are
the fallback for each count that ``tokens`` lacks.

Compatible deployments may close with ``data: [DONE]``; before ``message-end``
that is a cut stream. An object with no ``type`` but a ``message`` (the shape
of Cohere's error bodies), or ``type: "error"``, is an in-band error. Its text,
like ``message-end``'s ``delta.error``, is classified by phrase
(``_errors.classify``): there is no status after HTTP 200. Unknown event types
are skipped, also when their fields have shapes we do not expect.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from lluminary.events import ErrorCode, FinishReason, Usage
from lluminary.providers._decoder import BaseDecoder, ProtocolViolationError
from lluminary.providers._framing import SSEFramer, SSEMessage
from lluminary.providers.cohere._errors import classify

__all__ = ["CohereDecoder", "finish_reason"]


class _Function(msgspec.Struct, gc=False):
    name: str | None = None
    arguments: str | dict[str, Any] | None = None


class _ToolCall(msgspec.Struct, gc=False):
    id: str | None = None
    function: _Function | None = None


class _Content(msgspec.Struct, gc=False):
    type: str | None = None
    text: str | None = None
    thinking: str | None = None


class _Message(msgspec.Struct, gc=False):
    # ``message-start`` sends empty lists here; deltas send single objects.
    content: _Content | list[Any] | None = None
    tool_plan: str | None = None
    tool_calls: _ToolCall | list[_ToolCall] | None = None


class _Tokens(msgspec.Struct, gc=False):
    input_tokens: float | None = None
    output_tokens: float | None = None


class _Usage(msgspec.Struct, gc=False):
    tokens: _Tokens | None = None
    billed_units: _Tokens | None = None
    cached_tokens: float | None = None


class _Delta(msgspec.Struct, gc=False):
    message: _Message | None = None
    finish_reason: str | None = None
    error: str | None = None
    usage: _Usage | None = None


class _Event(msgspec.Struct, gc=False):
    type: str = ""
    id: str | None = None
    index: int | None = None
    delta: _Delta | None = None
    message: str | None = None


class _Kind(msgspec.Struct, gc=False):
    type: str = ""


_decode_event: Final = msgspec.json.Decoder(_Event).decode
_decode_kind: Final = msgspec.json.Decoder(_Kind).decode
_encode_json: Final = msgspec.json.encode
_DONE: Final = b"[DONE]"
_KNOWN: Final = frozenset(
    {
        "message-start",
        "content-start",
        "content-delta",
        "content-end",
        "tool-plan-delta",
        "tool-call-start",
        "tool-call-delta",
        "tool-call-end",
        "message-end",
        "error",
        "",
    }
)
_FINISH: Final[dict[str, FinishReason]] = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
}
#: Finish reasons that mean the generation failed, and the error code each becomes.
_FAILED: Final[dict[str, ErrorCode]] = {"ERROR": "server", "TIMEOUT": "timeout"}


def finish_reason(raw: str | None) -> FinishReason:
    return _FINISH.get(raw.upper(), "other") if raw else "other"


def usage_from(u: _Usage) -> Usage:
    cached = int(u.cached_tokens or 0)
    tokens = u.tokens or _Tokens()
    billed = u.billed_units or _Tokens()
    # Each count falls back on its own: ``tokens`` may name only one side.
    if tokens.input_tokens is not None:
        prompt = int(tokens.input_tokens)
        input_tokens, cache_read = max(prompt - cached, 0), min(cached, prompt)
    else:
        # Billed input already leaves the cached part out.
        input_tokens, cache_read = int(billed.input_tokens or 0), cached
    output = tokens.output_tokens if tokens.output_tokens is not None else billed.output_tokens
    return Usage(input_tokens=input_tokens, output_tokens=int(output or 0), cache_read_tokens=cache_read)


class CohereDecoder(BaseDecoder):
    provider = "cohere"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._framer = SSEFramer()
        self._last_call: int | None = None

    def _feed(self, data: bytes) -> None:
        self._messages(self._framer.feed(data))

    def _close(self) -> None:
        self._messages(self._framer.close())

    def _messages(self, messages: list[SSEMessage]) -> None:
        for name, payload in messages:
            if payload == _DONE:
                raise ProtocolViolationError("[DONE] arrived before message-end")
            if payload.strip():
                self._event(payload, name)
            if self._done:
                return

    def _event(self, payload: bytes, sse_event: str) -> None:
        try:
            ev = _decode_event(payload)
        except msgspec.ValidationError:
            # A shape we do not know. Fine for an event type we skip anyway (new API
            # features must not break old clients); a protocol error for one we read.
            if _decode_kind(payload).type in _KNOWN:
                raise
            return
        kind = ev.type
        if kind == "content-delta":
            self._content(ev)
        elif kind == "tool-call-delta":
            self._call_delta(ev)
        elif kind == "tool-plan-delta":
            msg = ev.delta.message if ev.delta else None
            if msg is not None and msg.tool_plan:
                self.start(ev.id or "")
                self.reasoning(msg.tool_plan)
        elif kind == "message-start":
            self.start(ev.id or "")
        elif kind == "content-start":
            self._content(ev)
        elif kind == "tool-call-start":
            self._call_start(ev)
        elif kind == "tool-call-end":
            key = ev.index if ev.index is not None else self._last_call
            self.emit_all(self.tools.end(key))
        elif kind == "message-end":
            self._end(ev.delta or _Delta())
        elif kind == "error" or sse_event == "error" or (not kind and ev.message):
            message = ev.message or "Cohere reported an error in the stream"
            self.error(classify(message), message)
        # content-end, citation-start/-end, debug and unknown types carry nothing for us.

    def _content(self, ev: _Event) -> None:
        msg = ev.delta.message if ev.delta else None
        content = msg.content if msg is not None else None
        if not isinstance(content, _Content):
            return
        self.start(ev.id or "")
        if content.text:
            self.text(content.text, ev.index or 0)
        if content.thinking:
            self.reasoning(content.thinking)

    def _call(self, ev: _Event) -> _ToolCall | None:
        msg = ev.delta.message if ev.delta else None
        calls = msg.tool_calls if msg is not None else None
        if isinstance(calls, list):
            return calls[0] if calls else None
        return calls

    def _call_start(self, ev: _Event) -> None:
        call = self._call(ev) or _ToolCall()
        self.start(ev.id or "")
        key = ev.index if ev.index is not None else self.tools.count
        fn = call.function or _Function()
        self.emit(self.tools.start(key, call.id or f"call_{self.tools.count}", fn.name or ""))
        self._last_call = key
        self._arguments(key, fn.arguments)

    def _call_delta(self, ev: _Event) -> None:
        call = self._call(ev)
        if call is None or call.function is None:
            return
        self._arguments(ev.index if ev.index is not None else self._last_call, call.function.arguments)

    def _arguments(self, key: int | None, arguments: str | dict[str, Any] | None) -> None:
        if arguments is None or arguments == "":
            return
        text = arguments if isinstance(arguments, str) else _encode_json(arguments).decode()
        delta = self.tools.delta(key, text)
        if delta is not None:
            self.emit_all([delta])

    def _end(self, delta: _Delta) -> None:
        if delta.usage is not None:
            self.set_usage(usage_from(delta.usage))
        raw = delta.finish_reason
        failed = _FAILED.get(raw.upper()) if raw else None
        if failed is not None or delta.error:
            detail = delta.error or f"the generation ended with finish_reason {raw}"
            # The text is more precise than ERROR ("too many tokens: …"); TIMEOUT says it all.
            code = failed if failed == "timeout" else classify(delta.error or "", failed or "server")
            self.error(code, f"Cohere: {detail}")
            return
        self.finish(finish_reason(raw), raw)
