"""The assembled ``Response`` and the one assembler that builds it from events.

``Engine.complete()``, the CLI and the tests all go through
:class:`ResponseBuilder`, so "what a stream means" is defined in exactly one place.
"""

from __future__ import annotations

from typing import Any

import msgspec

from lluminary.events._events import (
    Error,
    Event,
    Finish,
    FinishReason,
    ReasoningDelta,
    RefusalDelta,
    Start,
    TextDelta,
    ToolCallEnd,
    Usage,
)
from lluminary.events._request import Message, Part, ReasoningPart, TextPart, ToolCallPart

__all__ = ["Response", "ResponseBuilder", "ToolCall"]


class ToolCall(msgspec.Struct, frozen=True):
    id: str
    name: str
    arguments: dict[str, Any]
    kind: str | msgspec.UnsetType = msgspec.UNSET  # see ToolCallStart


class Response(msgspec.Struct, frozen=True):
    """Everything a finished stream said, put together."""

    text: str
    reasoning: str
    tool_calls: list[ToolCall]
    usage: Usage | None
    finish_reason: FinishReason | None
    raw_finish_reason: str | None = None
    id: str | None = None
    provider: str | None = None
    model: str | None = None
    refusal: str | None = None
    reasoning_parts: list[ReasoningPart] = msgspec.field(default_factory=list)
    error: Error | None = None

    def message(self) -> Message:
        """This response as the assistant turn of a conversation, for the next request.

        Each signed reasoning block goes back as its own part: a signature is an
        opaque token for one block (an Anthropic thinking block, a Gemini thought,
        a Responses reasoning item) and must never be merged with another. So does
        each redacted (encrypted) block, in its place among them.
        """
        parts: list[Part] = list(self.reasoning_parts)
        if self.text:
            parts.append(TextPart(self.text))
        parts.extend(ToolCallPart(c.id, c.name, c.arguments, c.kind) for c in self.tool_calls)
        return Message("assistant", parts)


class ResponseBuilder:
    """Folds events into a :class:`Response`; feed it every event of one stream."""

    __slots__ = (
        "_block",
        "_blocks",
        "_error",
        "_finish",
        "_reasoning",
        "_refusal",
        "_start",
        "_text",
        "_tools",
        "_usage",
    )

    def __init__(self) -> None:
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._refusal: list[str] = []
        self._block: list[str] = []  # reasoning text of the block still open
        self._blocks: list[ReasoningPart] = []
        self._tools: list[ToolCall] = []
        self._usage: Usage | None = None
        self._finish: Finish | None = None
        self._error: Error | None = None
        self._start: Start | None = None

    def add(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            self._text.append(event.text)
        elif isinstance(event, ReasoningDelta):
            if event.redacted is not msgspec.UNSET:
                # An encrypted block is a block of its own: what was open before it ends here.
                if any(self._block):
                    self._blocks.append(ReasoningPart("".join(self._block)))
                self._block = []
                self._blocks.append(ReasoningPart("", redacted=event.redacted))
                self._reasoning.append(event.text)  # empty from every provider we know
                return
            self._reasoning.append(event.text)
            self._block.append(event.text)
            if event.signature:
                # A signature closes its block: providers send it after the block's text.
                self._blocks.append(ReasoningPart("".join(self._block), signature=event.signature))
                self._block = []
        elif isinstance(event, ToolCallEnd):
            self._tools.append(ToolCall(event.id, event.name, event.arguments, event.kind))
        elif isinstance(event, Usage):
            # Providers report usage once; operators may re-report it (e.g. after a
            # retry). The latest report is the one that counts.
            self._usage = event
        elif isinstance(event, Finish):
            self._finish = event
        elif isinstance(event, Error):
            self._error = event
        elif isinstance(event, Start):
            self._start = event
        elif isinstance(event, RefusalDelta):
            self._refusal.append(event.text)

    def build(self) -> Response:
        start = self._start
        blocks = list(self._blocks)
        if any(self._block):
            blocks.append(ReasoningPart("".join(self._block)))
        return Response(
            text="".join(self._text),
            reasoning="".join(self._reasoning),
            tool_calls=list(self._tools),
            usage=self._usage,
            finish_reason=self._finish.reason if self._finish else None,
            raw_finish_reason=self._finish.raw_reason if self._finish else None,
            id=start.id if start else None,
            provider=start.provider if start else None,
            model=start.model if start else None,
            refusal="".join(self._refusal) if self._refusal else None,
            reasoning_parts=blocks,
            error=self._error,
        )
