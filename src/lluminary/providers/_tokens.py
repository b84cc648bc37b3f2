"""Input-token estimates for when a provider reports no usage.

The estimate is deliberately simple and documented: one token per four
characters of everything we send (system prompt, message text, tool results,
tool names and schemas), plus a small per-message overhead for the role
markers chat templates add. Usage built from it is always marked ``estimated``.
"""

from __future__ import annotations

import msgspec

from lluminary.events import ChatRequest, ImagePart, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from lluminary.providers._decoder import estimate_tokens

__all__ = ["estimate_request_tokens"]

#: Tokens a chat template spends on each message's role markers.
PER_MESSAGE_TOKENS = 4
#: A flat guess for one image; providers charge between ~85 and ~1,600.
PER_IMAGE_TOKENS = 765


def estimate_request_tokens(request: ChatRequest) -> int:
    chars = len(request.system or "")
    images = 0
    for message in request.messages:
        if isinstance(message.content, str):
            chars += len(message.content)
            continue
        for part in message.content:
            if isinstance(part, (TextPart, ReasoningPart)):
                chars += len(part.text)
            elif isinstance(part, ToolResultPart):
                chars += len(part.content)
            elif isinstance(part, ToolCallPart):
                chars += len(part.name) + len(msgspec.json.encode(part.arguments))
            elif isinstance(part, ImagePart):
                images += 1
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description) + len(msgspec.json.encode(tool.parameters))
    return estimate_tokens(chars) + PER_MESSAGE_TOKENS * (len(request.messages) + 1) + PER_IMAGE_TOKENS * images
