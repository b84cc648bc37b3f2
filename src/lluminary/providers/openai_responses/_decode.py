"""OpenAI Responses API stream decoder.

SSE with an ``event:`` name per message whose data repeats it as ``type``; there is
no ``[DONE]``. The wire facts we rely on:

- ``response.created`` / ``response.queued`` / ``response.in_progress`` carry the
  response object (``id``, ``model``): the first one starts the stream;
- output arrives as *items*, each opened by ``response.output_item.added`` and
  closed by ``response.output_item.done`` with its ``output_index``. Items are
  ``message`` (``response.output_text.delta`` and ``response.refusal.delta``
  fragments), ``function_call`` (``id``, ``call_id``, ``name``, then
  ``response.function_call_arguments.delta`` fragments and ``.done``),
  ``custom_tool_call`` (``call_id``, ``name``, then free-text
  ``response.custom_tool_call_input.delta`` fragments and ``.done``) and
  ``reasoning`` (``response.reasoning_summary_text.delta`` and
  ``response.reasoning_text.delta``; the final item may hold
  ``encrypted_content``);
- the end marker is one of ``response.completed``, ``response.incomplete``
  (``incomplete_details.reason``: ``max_output_tokens`` or ``content_filter``),
  both normal ends with usage, or ``response.failed`` (``response.error``), an
  abnormal one. An ``error`` event may come at any time after HTTP 200; it ends
  the stream, so a ``response.failed`` after it adds nothing;
- usage ``input_tokens`` includes ``input_tokens_details.cached_tokens`` and
  ``output_tokens`` includes ``output_tokens_details.reasoning_tokens``.

Mapping choices: a call's exposed id is its ``call_id`` (what results must
reference), and the assembler is keyed by ``output_index``; a call closes at
``function_call_arguments.done`` or ``output_item.done``, whichever comes first,
and arguments arrive once even when a server sends no deltas. ``TextDelta.index``
is the item's ``output_index``. A reasoning item's ``encrypted_content`` is the
``ReasoningDelta`` signature, so it can be sent back statelessly. A message or
reasoning item that streamed no deltas gives its text once, from the finished
item (summary, then raw ``reasoning_text``). A custom tool's input is text, not
JSON, so its call's arguments are ``{"input": text}``, streamed as JSON pieces
(the text JSON-escaped) so the deltas still concatenate to the arguments.
Client-run calls are ``function_call`` and ``custom_tool_call``; the built-in
tools (web search, file search, code interpreter, image generation, remote MCP)
run on OpenAI's side and are not tool calls for the client. Summary parts are
passed on as received, without separators. Unknown event and item types
(built-in tools, audio, annotations …) are skipped.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from lluminary.events import FinishReason, RefusalDelta, Usage
from lluminary.providers._decoder import BaseDecoder
from lluminary.providers._framing import SSEFramer, SSEMessage
from lluminary.providers.openai_responses._errors import in_band_error

__all__ = ["OpenAIResponsesDecoder", "incomplete_reason"]


class _Content(msgspec.Struct, gc=False):
    type: str = ""
    text: str | None = None
    refusal: str | None = None


class _Item(msgspec.Struct, gc=False):
    type: str = ""
    id: str | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    input: str | None = None  # custom_tool_call
    encrypted_content: str | None = None
    content: list[_Content] | None = None
    summary: list[_Content] | None = None


class _InputDetails(msgspec.Struct, gc=False):
    cached_tokens: int | None = None


class _OutputDetails(msgspec.Struct, gc=False):
    reasoning_tokens: int | None = None


class _Usage(msgspec.Struct, gc=False):
    input_tokens: int | None = None
    output_tokens: int | None = None
    input_tokens_details: _InputDetails | None = None
    output_tokens_details: _OutputDetails | None = None


class _ErrorBody(msgspec.Struct, gc=False):
    code: str | None = None
    message: str | None = None
    type: str | None = None


class _Incomplete(msgspec.Struct, gc=False):
    reason: str | None = None


class _Response(msgspec.Struct, gc=False):
    id: str = ""
    model: str | None = None
    status: str | None = None
    error: _ErrorBody | None = None
    incomplete_details: _Incomplete | None = None
    usage: _Usage | None = None


class _Event(msgspec.Struct, gc=False):
    type: str = ""
    response: _Response | None = None
    # Kept raw: only the item types we know are decoded (see ``_item``), so new
    # item types with differently shaped fields cannot break the stream.
    item: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)  # empty when absent
    output_index: int | None = None
    item_id: str | None = None
    delta: str | None = None
    arguments: str | None = None
    input: str | None = None  # response.custom_tool_call_input.done
    # The ``error`` event: documented flat (``code``, ``message``); some servers nest it.
    code: str | None = None
    message: str | None = None
    error: _ErrorBody | None = None


class _Head(msgspec.Struct, gc=False):
    type: str = ""


_decode_event: Final = msgspec.json.Decoder(_Event).decode
_decode_head: Final = msgspec.json.Decoder(_Head).decode
_decode_item: Final = msgspec.json.Decoder(_Item).decode
_encode_json: Final = msgspec.json.encode
#: Calls the client runs. The other ``*_call`` items (web_search_call,
#: file_search_call, code_interpreter_call, image_generation_call, mcp_call …)
#: are run by OpenAI itself and end inside the same response.
_CALLS: Final = frozenset({"function_call", "custom_tool_call"})
_ITEMS: Final = _CALLS | {"message", "reasoning"}
#: A custom tool's input is free text, not JSON; it is passed on as ``{"input": text}``.
_INPUT_HEAD: Final = '{"input":"'
_INPUT_TAIL: Final = '"}'

_STARTS: Final = frozenset({"response.created", "response.in_progress", "response.queued"})
_REASONING_DELTAS: Final = frozenset({"response.reasoning_summary_text.delta", "response.reasoning_text.delta"})
#: Events whose shape we rely on. Any other event that does not fit our view
#: struct (an unknown type reusing a field name differently) is skipped.
_HANDLED: Final = (
    _STARTS
    | _REASONING_DELTAS
    | {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.custom_tool_call_input.delta",
        "response.custom_tool_call_input.done",
        "response.output_item.added",
        "response.output_item.done",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "error",
    }
)
_INCOMPLETE: Final[dict[str, FinishReason]] = {
    "max_output_tokens": "length",
    "max_tokens": "length",
    "content_filter": "content_filter",
}


def incomplete_reason(raw: str | None) -> FinishReason:
    return _INCOMPLETE.get(raw, "other") if raw else "other"


def usage_from(u: _Usage) -> Usage:
    total_in = u.input_tokens or 0
    cached = (u.input_tokens_details.cached_tokens or 0) if u.input_tokens_details else 0
    reasoning = (u.output_tokens_details.reasoning_tokens or 0) if u.output_tokens_details else 0
    return Usage(
        input_tokens=max(total_in - cached, 0),
        output_tokens=u.output_tokens or 0,
        cache_read_tokens=cached,
        reasoning_tokens=reasoning,
    )


def _json_string_body(text: str) -> str:
    """``text`` escaped as the inside of a JSON string; pieces escape independently."""
    return _encode_json(text)[1:-1].decode()


def _item(raw: msgspec.Raw) -> _Item | None:
    """The item, if it is of a type we read; other types are skipped."""
    if not raw or bytes(raw) == b"null":
        return None
    try:
        item = _decode_item(raw)
    except msgspec.ValidationError:
        if _decode_head(raw).type in _ITEMS:
            raise
        return None
    return item if item.type in _ITEMS else None


class OpenAIResponsesDecoder(BaseDecoder):
    provider = "openai-responses"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._framer = SSEFramer()
        self._keys: dict[str, object] = {}  # item id → assembler key, for events without output_index
        self._with_args: set[object] = set()  # open calls that received argument text
        self._closed: set[object] = set()  # calls already ended
        self._streamed: set[object] = set()  # items whose text arrived as deltas
        self._custom: set[object] = set()  # open custom tool calls (free-text input)

    def _feed(self, data: bytes) -> None:
        self._messages(self._framer.feed(data))

    def _close(self) -> None:
        self._messages(self._framer.close())

    def _messages(self, messages: list[SSEMessage]) -> None:
        for name, data in messages:
            self._payload(name, data)
            if self._done:
                return

    def _payload(self, name: str, data: bytes) -> None:
        if not data.strip() or data == b"[DONE]":
            # Not sent by OpenAI; compatible servers that add it still need their
            # ``response.completed`` to finish.
            return
        try:
            ev = _decode_event(data)
        except msgspec.ValidationError:
            if (_decode_head(data).type or name) in _HANDLED:
                raise
            return
        self._event(ev.type or name, ev)

    def _event(self, kind: str, ev: _Event) -> None:
        if kind == "response.output_text.delta":
            key = self._key(ev)
            self._streamed.add(key)
            self.text(ev.delta or "", ev.output_index or 0)
        elif kind in _REASONING_DELTAS:
            self._streamed.add(self._key(ev))
            self.reasoning(ev.delta or "")
        elif kind == "response.function_call_arguments.delta":
            self._args(self._key(ev), ev.delta)
        elif kind == "response.refusal.delta":
            self._streamed.add(self._key(ev))
            if ev.delta:
                self.emit(RefusalDelta(ev.delta))
        elif kind == "response.output_item.added":
            item = _item(ev.item)
            if item is not None:
                self._item_added(ev, item)
        elif kind == "response.output_item.done":
            item = _item(ev.item)
            if item is not None:
                self._item_done(ev, item)
        elif kind == "response.function_call_arguments.done":
            key = self._key(ev)
            if key in self.tools:
                self._end_call(key, ev.arguments)
        elif kind == "response.custom_tool_call_input.delta":
            self._input(self._key(ev), ev.delta)
        elif kind == "response.custom_tool_call_input.done":
            key = self._key(ev)
            if key in self.tools:
                self._end_call(key, ev.input)
        elif kind in _STARTS:
            resp = ev.response or _Response()
            self.start(resp.id, resp.model)
        elif kind in ("response.completed", "response.incomplete"):
            self._end(ev.response or _Response())
        elif kind == "response.failed":
            resp = ev.response or _Response()
            if resp.usage is not None:
                self.set_usage(usage_from(resp.usage))
            err = resp.error or _ErrorBody()
            self.fail(in_band_error(self.provider, err.code or err.type, err.message, self.secrets))
        elif kind == "error":
            err = ev.error or _ErrorBody()
            code = ev.code or err.code or err.type
            self.fail(in_band_error(self.provider, code, ev.message or err.message, self.secrets))
        # Anything else (content_part.*, *.done echoes, built-in tool progress,
        # annotations, audio …) carries nothing we emit.

    def _key(self, ev: _Event) -> object:
        if ev.output_index is not None:
            return ev.output_index
        if ev.item_id is not None:
            return self._keys.get(ev.item_id, ev.item_id)
        return 0

    def _item_key(self, ev: _Event, item: _Item) -> object:
        key: object = ev.output_index if ev.output_index is not None else (item.id or self.tools.count)
        if item.id is not None:
            self._keys[item.id] = key
        return key

    def _item_added(self, ev: _Event, item: _Item) -> None:
        key = self._item_key(ev, item)  # registered for every item, so deltas keyed by id find it
        if item.type not in _CALLS or key in self.tools or key in self._closed:
            return
        call_id = item.call_id or item.id or f"call_{self.tools.count}"
        custom = item.type == "custom_tool_call"
        self.emit(self.tools.start(key, call_id, item.name or "", "custom" if custom else msgspec.UNSET))
        if custom:
            self._custom.add(key)
            self._input(key, item.input)
        else:
            self._args(key, item.arguments)

    def _item_done(self, ev: _Event, item: _Item) -> None:
        key = self._item_key(ev, item)
        if item.type in _CALLS:
            if key not in self.tools and key not in self._closed:
                self._item_added(ev, item)  # a server that skipped ``output_item.added``
            if key in self.tools:
                self._end_call(key, item.input if key in self._custom else item.arguments)
        elif item.type == "reasoning":
            if key not in self._streamed:
                for part in item.summary or ():
                    self.reasoning(part.text or "")
                for part in item.content or ():  # raw reasoning (gpt-oss) sent only whole
                    if part.type == "reasoning_text":
                        self.reasoning(part.text or "")
            if item.encrypted_content:
                self.reasoning("", item.encrypted_content)
        elif item.type == "message" and key not in self._streamed:
            for part in item.content or ():
                if part.type == "output_text":
                    self.text(part.text or "", ev.output_index or 0)
                elif part.type == "refusal" and part.refusal:
                    self.emit(RefusalDelta(part.refusal))

    def _args(self, key: object, fragment: str | None) -> None:
        if fragment:
            delta = self.tools.delta(key, fragment)
            if delta is not None:
                self._with_args.add(key)
                self.emit_all([delta])

    def _input(self, key: object, fragment: str | None) -> None:
        """A piece of a custom call's free-text input, as a piece of ``{"input": "…"}``."""
        if fragment:
            head = "" if key in self._with_args else _INPUT_HEAD
            self._args(key, head + _json_string_body(fragment))

    def _end_call(self, key: object, arguments: str | None) -> None:
        if key in self._custom:
            self._custom.discard(key)
            if key in self._with_args:
                self._args(key, _INPUT_TAIL)
            else:  # the input only arrived whole (or is empty)
                self._args(key, _INPUT_HEAD + _json_string_body(arguments or "") + _INPUT_TAIL)
        elif key not in self._with_args:
            # No deltas came (some servers send the arguments only when done).
            self._args(key, arguments)
        self._with_args.discard(key)
        self._closed.add(key)
        self.emit_all(self.tools.end(key))

    def _end(self, resp: _Response) -> None:
        if resp.usage is not None:
            self.set_usage(usage_from(resp.usage))
        details = resp.incomplete_details
        if details is not None or resp.status == "incomplete":
            raw = details.reason if details is not None else None
            self.finish(incomplete_reason(raw), raw or "incomplete")
            return
        # A completed response's custom calls are whole even if their ``.done`` was
        # not sent; close them here, as ``finish`` would leave their JSON open. (A cut
        # one, at ``response.incomplete``, stays invalid: never salvaged.)
        for key in [k for k in self._custom if k in self.tools]:
            self._end_call(key, None)
        self.finish("tool_calls" if self.tools.count else "stop", resp.status or "completed")
