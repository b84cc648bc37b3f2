"""What a caller asks for: ``ChatRequest``, its messages, content parts and tools.

A request is provider-neutral. Each provider's encoder turns it into that API's
body, so everything here is plain data: frozen structs that hash into cache keys
and serialise with the same codecs as events.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "ChatRequest",
    "ImagePart",
    "Message",
    "Part",
    "ReasoningPart",
    "ResponseFormat",
    "Role",
    "TextPart",
    "ToolCallPart",
    "ToolChoice",
    "ToolResultPart",
    "ToolSpec",
]

Role = Literal["system", "user", "assistant", "tool"]


class _Part(msgspec.Struct, frozen=True, tag_field="type"):
    pass


class TextPart(_Part, frozen=True, tag="text"):
    text: str


class ImagePart(_Part, frozen=True, tag="image"):
    """An image, by URL or inline base64 ``data`` with its ``media_type``."""

    url: str | None = None
    data: str | None = None
    media_type: str | None = None


class ReasoningPart(_Part, frozen=True, tag="reasoning"):
    """Reasoning from an earlier assistant turn, sent back with its signature.

    ``redacted`` is an encrypted reasoning block (see ``ReasoningDelta.redacted``),
    sent back verbatim; ``UNSET`` (and absent from the encoded request, so cache
    keys of requests without it do not change) for readable reasoning.
    """

    text: str
    signature: str | None = None
    redacted: str | msgspec.UnsetType = msgspec.UNSET


class ToolCallPart(_Part, frozen=True, tag="tool-call"):
    """A tool call made by the assistant in an earlier turn (``kind``: see ``ToolCallStart``)."""

    id: str
    name: str
    arguments: dict[str, Any]
    kind: str | msgspec.UnsetType = msgspec.UNSET


class ToolResultPart(_Part, frozen=True, tag="tool-result"):
    """The result of running a tool, answering the call with ``tool_call_id``."""

    tool_call_id: str
    content: str
    name: str | None = None
    is_error: bool = False


Part = TextPart | ImagePart | ReasoningPart | ToolCallPart | ToolResultPart


class Message(msgspec.Struct, frozen=True):
    """One turn. ``content`` is plain text or a list of parts."""

    role: Role
    content: str | list[Part]

    @classmethod
    def system(cls, text: str) -> Message:
        return cls("system", text)

    @classmethod
    def user(cls, content: str | list[Part]) -> Message:
        return cls("user", content)

    @classmethod
    def assistant(cls, content: str | list[Part]) -> Message:
        return cls("assistant", content)

    @classmethod
    def tool(cls, tool_call_id: str, content: str, *, name: str | None = None, is_error: bool = False) -> Message:
        return cls("tool", [ToolResultPart(tool_call_id, content, name=name, is_error=is_error)])

    @property
    def parts(self) -> list[Part]:
        """The content as parts, whatever form it was given in."""
        if isinstance(self.content, str):
            return [TextPart(self.content)]
        return self.content

    @property
    def text(self) -> str:
        """The concatenated text parts."""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


class ToolSpec(msgspec.Struct, frozen=True):
    """A tool the model may call; ``parameters`` is a JSON Schema object."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = msgspec.field(default_factory=lambda: {"type": "object", "properties": {}})


class ToolChoice(msgspec.Struct, frozen=True):
    """Force a call to one named tool."""

    name: str


class ResponseFormat(msgspec.Struct, frozen=True):
    """Structured output: free text, any JSON object, or JSON matching ``schema``."""

    type: Literal["text", "json_object", "json_schema"] = "json_schema"
    schema: dict[str, Any] | None = None
    name: str = "response"
    strict: bool = True


class ChatRequest(msgspec.Struct, frozen=True):
    """A provider-neutral chat request.

    ``model`` is ``"provider:model"`` (``"openai:gpt-4o-mini"``), or a bare model
    name when the engine has a default provider. ``extra`` is merged into the
    provider's request body as-is, for parameters we do not model (``num_ctx``,
    ``thinking``, ``reasoning_effort`` …); it is part of the cache key.
    """

    model: str
    messages: list[Message]
    system: str | None = None
    tools: list[ToolSpec] = msgspec.field(default_factory=list)
    tool_choice: Literal["auto", "none", "required"] | ToolChoice | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] = msgspec.field(default_factory=list)
    seed: int | None = None
    response_format: ResponseFormat | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    extra: dict[str, Any] = msgspec.field(default_factory=dict)
