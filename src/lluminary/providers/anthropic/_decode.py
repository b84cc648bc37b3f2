"""Anthropic Messages stream decoder.

SSE with an ``event:`` name per message, each data object carrying the same
``type``. The sequence is ``message_start``, then per content block
``content_block_start`` / ``content_block_delta``… / ``content_block_stop``, then
``message_delta`` (stop reason, cumulative output usage) and ``message_stop``,
which is the end marker. ``ping`` may come anywhere; ``error`` may come anywhere
after HTTP 200 (``overloaded_error``) and ends the stream.

Usage is split: input and cache tokens arrive in ``message_start``, output tokens
(cumulative, so the last value wins, never a sum) in ``message_delta``. Newer API
versions may repeat input counts in ``message_delta``; those replace, not add.

Blocks: ``text`` (``text_delta``; ``citations_delta`` is skipped), ``thinking``
(``thinking_delta`` and ``signature_delta``), and ``tool_use`` (``input_json_delta``;
a tool without arguments streams no fragment, or one empty one, and still yields
``{}``). ``server_tool_use`` and ``mcp_tool_use`` blocks (web search, code
execution, MCP) are run by Anthropic itself, which streams their results in the
same response: they are not calls for the client to run, so they produce no
tool-call events (a ``tool_use`` sent back without a ``tool_result`` would be
rejected). A ``redacted_thinking`` block arrives whole in its
``content_block_start`` (``data``, encrypted, no deltas); it carries no text we
could show, but the next turn must send it back verbatim, so it becomes one
``ReasoningDelta`` with ``redacted`` set. Unknown event and block types are
skipped, so new API features do not break old clients.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from lluminary.events import FinishReason, ReasoningDelta, TextDelta, Usage
from lluminary.providers._decoder import BaseDecoder
from lluminary.providers._errors import error_event
from lluminary.providers._framing import SSEFramer, SSEMessage
from lluminary.providers.anthropic._errors import TYPE_CODES

__all__ = ["AnthropicDecoder", "stop_reason"]


class _Usage(msgspec.Struct, gc=False):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class _Message(msgspec.Struct, gc=False):
    id: str = ""
    model: str = ""
    usage: _Usage | None = None


class _Block(msgspec.Struct, gc=False):
    type: str = ""
    text: str | None = None
    thinking: str | None = None
    signature: str | None = None
    id: str | None = None
    name: str | None = None
    # Loosely typed: other block types may one day use these names for something else.
    input: Any = None
    data: Any = None


class _Delta(msgspec.Struct, gc=False):
    type: str = ""
    text: str | None = None
    partial_json: str | None = None
    thinking: str | None = None
    signature: str | None = None
    stop_reason: str | None = None


class _ErrorBody(msgspec.Struct, gc=False):
    type: str = ""
    message: str = ""


class _Event(msgspec.Struct, gc=False):
    type: str = ""
    index: int = 0
    message: _Message | None = None
    content_block: _Block | None = None
    delta: _Delta | None = None
    usage: _Usage | None = None
    error: _ErrorBody | None = None


_decode_event: Final = msgspec.json.Decoder(_Event).decode
#: Blocks whose ``input_json_delta`` fragments are the server's business, not ours.
_SERVER_TOOL_BLOCKS: Final = frozenset({"server_tool_use", "mcp_tool_use"})
_STOP: Final[dict[str, FinishReason]] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "other",
}


def stop_reason(raw: str | None) -> FinishReason:
    return _STOP.get(raw, "other") if raw else "other"


class AnthropicDecoder(BaseDecoder):
    provider = "anthropic"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._framer = SSEFramer()
        self._stop: str | None = None
        self._input = 0
        self._output = 0
        self._cache_read = 0
        self._cache_write = 0
        self._server_blocks: set[int] = set()

    def _feed(self, data: bytes) -> None:
        self._messages(self._framer.feed(data))

    def _messages(self, messages: list[SSEMessage]) -> None:
        out = self._out
        for name, data in messages:
            if data[:1] != b"{" and not data.strip():
                continue  # an empty ``data:`` carries nothing (keep-alives from proxies)
            ev = _decode_event(data)
            delta = ev.delta
            if delta is not None and delta.type == "text_delta" and (ev.type or name) == "content_block_delta":
                # The fast path: most events of a stream are text deltas.
                text = delta.text
                if text:
                    self._chars += len(text)
                    out.append(TextDelta(text, ev.index))
                continue
            self._event(ev, name)
            if self._done:
                return

    def _close(self) -> None:
        self._messages(self._framer.close())

    def _event(self, ev: _Event, name: str) -> None:
        # Every documented payload repeats its event name in ``type``; the SSE name
        # is the fallback for proxies that drop it.
        kind = ev.type or name
        if kind == "content_block_delta":
            self._delta(ev.index, ev.delta)
        elif kind == "content_block_start":
            self._block_start(ev.index, ev.content_block)
        elif kind == "content_block_stop":
            if ev.index in self.tools:
                self.emit_all(self.tools.end(ev.index))
        elif kind == "message_start":
            msg = ev.message or _Message()
            self.start(msg.id, msg.model or None)
            if msg.usage is not None:
                self._take_usage(msg.usage)
        elif kind == "message_delta":
            if ev.delta is not None and ev.delta.stop_reason is not None:
                self._stop = ev.delta.stop_reason
            if ev.usage is not None:
                self._take_usage(ev.usage)
        elif kind == "message_stop":
            self.finish(stop_reason(self._stop), self._stop)
        elif kind == "error":
            err = ev.error or _ErrorBody()
            code = TYPE_CODES.get(err.type, "server")
            self.fail(error_event(code, err.message or err.type, provider=self.provider, secrets=self.secrets))
        # "ping" and unknown event types carry nothing for us.

    def _block_start(self, index: int, block: _Block | None) -> None:
        if block is None:
            return
        if block.type in _SERVER_TOOL_BLOCKS:
            self._server_blocks.add(index)
        elif block.type == "tool_use":
            self.emit(self.tools.start(index, block.id or f"toolu_{index}", block.name or ""))
            if isinstance(block.input, dict) and block.input:
                # Some servers (and replays) put the whole input in the start block.
                delta = self.tools.delta(index, msgspec.json.encode(block.input).decode())
                if delta is not None:
                    self.emit_all([delta])
        elif block.type == "text" and block.text:
            self.text(block.text, index)
        elif block.type == "thinking" and (block.thinking or block.signature):
            self.reasoning(block.thinking or "", block.signature)
        elif block.type == "redacted_thinking" and isinstance(block.data, str) and block.data:
            self.emit(ReasoningDelta("", redacted=block.data))

    def _delta(self, index: int, delta: _Delta | None) -> None:
        if delta is None:
            return
        kind = delta.type
        if kind == "text_delta":
            self.text(delta.text or "", index)
        elif kind == "input_json_delta":
            if delta.partial_json and index not in self._server_blocks:
                event = self.tools.delta(index, delta.partial_json)
                if event is not None:
                    self.emit_all([event])
        elif kind == "thinking_delta":
            self.reasoning(delta.thinking or "")
        elif kind == "signature_delta":
            self.reasoning("", delta.signature or None)

    def _take_usage(self, usage: _Usage) -> None:
        if usage.input_tokens is not None:
            self._input = usage.input_tokens
        if usage.output_tokens is not None:
            self._output = usage.output_tokens
        if usage.cache_read_input_tokens is not None:
            self._cache_read = usage.cache_read_input_tokens
        if usage.cache_creation_input_tokens is not None:
            self._cache_write = usage.cache_creation_input_tokens
        # Keep the partial count current, so an aborted stream is priced on what it used.
        self.set_usage(
            Usage(
                input_tokens=self._input,
                output_tokens=self._output,
                cache_read_tokens=self._cache_read,
                cache_write_tokens=self._cache_write,
            )
        )
