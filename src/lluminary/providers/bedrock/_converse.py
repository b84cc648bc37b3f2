"""Bedrock Converse (non-streaming) decoder: one JSON response in, the same events out.

``POST /model/{modelId}/converse`` answers with one JSON object::

    {"output": {"message": {"role": "assistant", "content": [block, …]}},
     "stopReason": "end_turn", "usage": {…TokenUsage…}, "metrics": {"latencyMs": …}}

where each content block is one of ``{"text"}``, ``{"toolUse": {"toolUseId", "name",
"input": {…}}}`` or ``{"reasoningContent": {"reasoningText": {"text", "signature"}}
| {"redactedContent"}}``. The decoder buffers the body and, at its end, emits what a
stream would have: ``start``, the blocks in order (text with its block index, each
tool call as start / one arguments delta / end, except those of tools Bedrock runs
itself, ``"type": "server_tool_use"``; encrypted reasoning as one
``ReasoningDelta`` with ``redacted``), usage and ``finish``. The end
marker is a complete JSON object with a ``stopReason``; anything else (a cut
body, no ``stopReason``) is a ``protocol`` error. Stop reasons and usage share
the streaming decoder's mapping.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from lluminary.events import ReasoningDelta
from lluminary.providers._decoder import BaseDecoder, ProtocolViolationError
from lluminary.providers._framing._common import MAX_MESSAGE_BYTES, FramingError
from lluminary.providers.bedrock._decode import SERVER_TOOL_USE, BedrockUsage, stop_reason, usage_from

__all__ = ["BedrockConverseDecoder"]


class _ToolUse(msgspec.Struct, gc=False):
    toolUseId: str = ""  # noqa: N815 - wire names
    name: str = ""
    input: Any = None
    type: str | None = None


class _ReasoningText(msgspec.Struct, gc=False):
    text: str = ""
    signature: str | None = None


class _Reasoning(msgspec.Struct, gc=False):
    reasoningText: _ReasoningText | None = None  # noqa: N815
    redactedContent: str | None = None  # noqa: N815


class _Block(msgspec.Struct, gc=False):
    text: str | None = None
    toolUse: _ToolUse | None = None  # noqa: N815
    reasoningContent: _Reasoning | None = None  # noqa: N815


class _Message(msgspec.Struct, gc=False):
    content: list[_Block] = msgspec.field(default_factory=list)


class _Output(msgspec.Struct, gc=False):
    message: _Message | None = None


class _Response(msgspec.Struct, gc=False):
    output: _Output | None = None
    stopReason: str | None = None  # noqa: N815
    usage: BedrockUsage | None = None


_decode_response: Final = msgspec.json.Decoder(_Response).decode


class BedrockConverseDecoder(BaseDecoder):
    provider = "bedrock"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._body = bytearray()

    def _feed(self, data: bytes) -> None:
        self._body += data
        if len(self._body) > MAX_MESSAGE_BYTES:
            raise FramingError("the Converse response exceeds the size limit")

    def _close(self) -> None:
        response = _decode_response(bytes(self._body))
        self._body = bytearray()
        if not response.stopReason:
            raise ProtocolViolationError("the Converse response has no stopReason")
        self.start("")
        message = response.output.message if response.output is not None else None
        for index, block in enumerate(message.content if message is not None else ()):
            if block.text is not None:
                self.text(block.text, index)
            elif block.toolUse is not None:
                tool = block.toolUse
                if tool.type == SERVER_TOOL_USE:
                    continue  # run by Bedrock, its result is in the response: not a call for us
                self.emit_all(self.tools.whole(index, tool.toolUseId or f"tooluse_{index}", tool.name, tool.input))
            elif block.reasoningContent is not None:
                content = block.reasoningContent
                if content.reasoningText is not None:
                    self.reasoning(content.reasoningText.text, content.reasoningText.signature or None)
                elif content.redactedContent:
                    self.emit(ReasoningDelta("", redacted=content.redactedContent))
        if response.usage is not None:
            self.set_usage(usage_from(response.usage))
        self.finish(stop_reason(response.stopReason), response.stopReason)
