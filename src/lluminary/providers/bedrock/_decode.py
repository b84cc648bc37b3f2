"""Bedrock ConverseStream decoder: AWS event stream frames in, events out.

The body is ``application/vnd.amazon.eventstream`` (see ``_framing/_eventstream.py``).
Each frame's ``:message-type`` header says what it is:

- ``event``: ``:event-type`` names the event and the payload is its JSON:
  ``messageStart`` {role}; ``contentBlockStart`` {contentBlockIndex, start:
  {toolUse: {toolUseId, name}}}; ``contentBlockDelta`` {contentBlockIndex, delta:
  one of text, toolUse.input (a string fragment of the JSON arguments, possibly
  empty), reasoningContent.text / .signature / .redactedContent};
  ``contentBlockStop`` {contentBlockIndex}; ``messageStop`` {stopReason};
  ``metadata`` {usage, metrics}, which comes *after* ``messageStop``. Payloads
  also carry a ``p`` field of random padding, which we ignore like every field
  we do not read.
- ``exception``: ``:exception-type`` (``throttlingException``,
  ``modelStreamErrorException`` …) with a JSON ``{"message"}`` payload. It ends
  the stream as a typed error after HTTP 200.
- ``error``: the generic event stream error, with ``:error-code`` and
  ``:error-message`` headers.

The end marker is ``metadata`` after ``messageStop``: only then do we have the
usage, and ``finish`` follows it. If the body ends cleanly, on a frame boundary,
right after ``messageStop`` with no ``metadata``, we still ``finish`` (the content
is complete and the model said why it stopped) with estimated usage; a body that
ends before ``messageStop``, or inside any frame, is a ``protocol`` error.

``reasoningContent.redactedContent`` is a reasoning block the model provider
encrypted (a blob, base64 in the JSON). It has no text, but a later turn must
send it back verbatim, so it becomes one ``ReasoningDelta`` with ``redacted``
set, emitted when its block stops (or at ``messageStop``): should a block's blob
come in several deltas, their bytes are joined into one value, never left as
pieces that would go back as separate blocks.

Tool calls are keyed by ``contentBlockIndex``; text keeps it as its ``index``.
A ``toolUse`` start whose ``type`` is ``server_tool_use`` is a tool Bedrock runs
itself (its result streams back in the same response as a ``toolResult``
block): it is not a call for the client, so it and its input deltas produce no
tool-call events (a call sent back without its result would be rejected).
Bedrock does not stream a message id (the request id is an HTTP header, which a
decoder never sees), so ``start`` carries an empty id. Unknown event types and
delta kinds (citations, images, tool results of server-side tools) are skipped.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

import msgspec

from lluminary.events import FinishReason, ReasoningDelta, Usage
from lluminary.providers._decoder import BaseDecoder, ProtocolViolationError
from lluminary.providers._framing._eventstream import EventStreamFramer, EventStreamMessage
from lluminary.providers.bedrock._errors import TYPE_CODES, exception_event

__all__ = ["SERVER_TOOL_USE", "BedrockDecoder", "BedrockUsage", "stop_reason", "usage_from"]


class BedrockUsage(msgspec.Struct, gc=False):
    """``TokenUsage``, shared by ConverseStream's ``metadata`` and Converse's response."""

    inputTokens: int | None = None  # noqa: N815 - wire names
    outputTokens: int | None = None  # noqa: N815
    totalTokens: int | None = None  # noqa: N815
    cacheReadInputTokens: int | None = None  # noqa: N815
    cacheWriteInputTokens: int | None = None  # noqa: N815


class _ToolUseStart(msgspec.Struct, gc=False):
    toolUseId: str = ""  # noqa: N815
    name: str = ""
    type: str | None = None  # "server_tool_use" for the tools Bedrock runs itself


class _Start(msgspec.Struct, gc=False):
    toolUse: _ToolUseStart | None = None  # noqa: N815


class _ToolUseDelta(msgspec.Struct, gc=False):
    # A string fragment on the wire; an object is accepted too, for servers that send it whole.
    input: str | dict[str, Any] | None = None


class _ReasoningDelta(msgspec.Struct, gc=False):
    text: str | None = None
    signature: str | None = None
    redactedContent: str | None = None  # noqa: N815


class _Delta(msgspec.Struct, gc=False):
    text: str | None = None
    toolUse: _ToolUseDelta | None = None  # noqa: N815
    reasoningContent: _ReasoningDelta | None = None  # noqa: N815


class _Frame(msgspec.Struct, gc=False):
    """Every event payload we read; each event type fills its own fields."""

    contentBlockIndex: int = 0  # noqa: N815
    start: _Start | None = None
    delta: _Delta | None = None
    stopReason: str | None = None  # noqa: N815
    usage: BedrockUsage | None = None


_decode_frame: Final = msgspec.json.Decoder(_Frame).decode
#: ``ToolUseBlockStart.type`` (and ``ToolUseBlock.type``) of a tool that Bedrock runs.
SERVER_TOOL_USE: Final = "server_tool_use"
_encode_json: Final = msgspec.json.encode
_KNOWN: Final = frozenset(
    {"messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata"}
)
_STOP: Final[dict[str, FinishReason]] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "malformed_model_output": "other",
    "malformed_tool_use": "other",
}


def stop_reason(raw: str | None) -> FinishReason:
    return _STOP.get(raw, "other") if raw else "other"


def usage_from(u: BedrockUsage) -> Usage:
    """Bedrock's ``inputTokens`` already excludes cache reads and writes, as ours must.

    ``totalTokens`` is then input + output + cache reads + cache writes. Should a
    model report cached tokens inside ``inputTokens`` instead (its total is then
    just input + output), they are taken out, so the cache is never counted twice.
    """
    inp = u.inputTokens or 0
    out = u.outputTokens or 0
    read = u.cacheReadInputTokens or 0
    write = u.cacheWriteInputTokens or 0
    cached = read + write
    if cached and u.totalTokens is not None and u.totalTokens == inp + out and inp >= cached:
        inp -= cached
    return Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=read, cache_write_tokens=write)


class BedrockDecoder(BaseDecoder):
    provider = "bedrock"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._framer = EventStreamFramer()
        self._stop: str | None = None
        self._metadata = False
        #: redactedContent pieces of blocks not yet stopped, by contentBlockIndex.
        self._redacted: dict[int, list[str]] = {}
        self._server_blocks: set[int] = set()

    def _feed(self, data: bytes) -> None:
        self._frames(self._framer.feed(data))

    def _close(self) -> None:
        # A partial frame raises here, which the base turns into a protocol error.
        self._frames(self._framer.close())
        if self._stop is not None:
            # messageStop arrived but metadata did not: see the module docstring.
            self._finish()

    def _frames(self, frames: list[EventStreamMessage]) -> None:
        for frame in frames:
            kind = frame.header(":message-type") or "event"
            if kind == "event":
                self._event(frame.header(":event-type"), frame.payload)
            elif kind == "exception":
                self.fail(exception_event(self.provider, frame.header(":exception-type"), frame.payload, self.secrets))
            elif kind == "error":
                code = frame.header(":error-code") or ""
                self.error(
                    TYPE_CODES.get(code.lower(), "server"),
                    frame.header(":error-message") or code or "event stream error",
                )
            # Unknown message types are skipped for forward compatibility.
            if self._done:
                return

    def _event(self, kind: str | None, payload: bytes) -> None:
        if kind not in _KNOWN:
            return  # unknown events (and payloads we would not read) are skipped
        ev = _decode_frame(payload)
        self.start("")
        index = ev.contentBlockIndex
        if kind == "contentBlockDelta":
            if ev.delta is not None:
                self._delta(index, ev.delta)
        elif kind == "contentBlockStart":
            tool = ev.start.toolUse if ev.start is not None else None
            if tool is not None:
                if tool.type == SERVER_TOOL_USE:
                    self._server_blocks.add(index)
                else:
                    self.emit(self.tools.start(index, tool.toolUseId or f"tooluse_{index}", tool.name))
        elif kind == "contentBlockStop":
            if index in self.tools:
                self.emit_all(self.tools.end(index))
            elif index in self._redacted:
                self._flush_redacted(index)
        elif kind == "messageStop":
            for open_index in sorted(self._redacted):
                self._flush_redacted(open_index)
            self._stop = ev.stopReason or ""
            if self._metadata:
                self._finish()  # metadata came first: the end marker is complete
        elif kind == "metadata":
            self._metadata = True
            if ev.usage is not None:
                self.set_usage(usage_from(ev.usage))
            if self._stop is not None:
                self._finish()

    def _delta(self, index: int, delta: _Delta) -> None:
        if delta.text is not None:
            self.text(delta.text, index)
        elif delta.toolUse is not None:
            if index in self._server_blocks:
                return  # the input of a tool Bedrock runs itself
            fragment = delta.toolUse.input
            if isinstance(fragment, dict):
                fragment = _encode_json(fragment).decode()
            # An empty fragment still has to belong to a started call.
            event = self.tools.delta(index, fragment or "")
            if event is not None:
                self.emit_all([event])
        elif delta.reasoningContent is not None:
            reasoning = delta.reasoningContent
            if reasoning.redactedContent:
                self._redacted.setdefault(index, []).append(reasoning.redactedContent)
            else:
                self.reasoning(reasoning.text or "", reasoning.signature or None)

    def _flush_redacted(self, index: int) -> None:
        pieces = self._redacted.pop(index)
        if len(pieces) == 1:
            data = pieces[0]  # the usual case: sent back exactly as received
        else:
            try:
                blob = b"".join(base64.b64decode(p, validate=True) for p in pieces)
            except (binascii.Error, ValueError):
                raise ProtocolViolationError("redactedContent is not base64") from None
            data = base64.b64encode(blob).decode("ascii")
        self.emit(ReasoningDelta("", redacted=data))

    def _finish(self) -> None:
        raw = self._stop or None
        self.finish(stop_reason(raw), raw)
