"""ChatRequest → Anthropic Messages request body.

Anthropic differs from OpenAI where it matters: the system prompt is a top-level
field; tool results travel in a *user* message as ``tool_result`` blocks (several
consecutive results merge into one message, as the API requires alternating
roles, with the results first); earlier thinking goes back as ``thinking`` blocks
with their signature (thinking without one is dropped: the API rejects it), and
encrypted thinking as ``redacted_thinking`` blocks with their ``data`` verbatim;
``max_tokens`` is required; ``tool_choice`` is an object.
"""

from __future__ import annotations

from typing import Any, Final

from lluminary.events import (
    ChatRequest,
    ImagePart,
    Message,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)

__all__ = ["DEFAULT_MAX_TOKENS", "encode_body"]

#: Anthropic requires ``max_tokens``; this is used when the request sets none.
DEFAULT_MAX_TOKENS: Final = 4096


def _image(part: ImagePart) -> dict[str, Any]:
    url = part.url
    if url and url.startswith("data:") and ";base64," in url:
        # The ``url`` source takes only http(s) URLs; a data URL goes inline.
        header, _, data = url.partition(",")
        media_type = header[len("data:") :].split(";")[0] or part.media_type or "image/png"
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url:
        return {"type": "image", "source": {"type": "url", "url": url}}
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": part.media_type or "image/png", "data": part.data or ""},
    }


def _blocks(message: Message) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            if part.text:
                out.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            out.append(_image(part))
        elif isinstance(part, ReasoningPart):
            if isinstance(part.redacted, str):
                out.append({"type": "redacted_thinking", "data": part.redacted})
            elif part.signature:
                out.append({"type": "thinking", "thinking": part.text, "signature": part.signature})
        elif isinstance(part, ToolCallPart):
            out.append({"type": "tool_use", "id": part.id, "name": part.name, "input": part.arguments})
        elif isinstance(part, ToolResultPart):
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.tool_call_id, "content": part.content}
            if part.is_error:
                block["is_error"] = True
            out.append(block)
    return out


def encode_messages(request: ChatRequest) -> tuple[list[str], list[dict[str, Any]]]:
    """The system texts and the alternating user/assistant messages."""
    system = [request.system] if request.system else []
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "system":
            system.append(message.text)
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if not blocks:
            continue
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    for turn in messages:
        if turn["role"] == "user":
            # The API wants a user turn's tool_result blocks before any other content
            # (a stable sort keeps each group in order).
            turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    return system, messages


def encode_body(request: ChatRequest, model: str) -> dict[str, Any]:
    system, messages = encode_messages(request)
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": messages,
        "stream": True,
    }
    if system:
        body["system"] = "\n\n".join(system)
    if request.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in request.tools
        ]
    choice = request.tool_choice
    if isinstance(choice, ToolChoice):
        body["tool_choice"] = {"type": "tool", "name": choice.name}
    elif choice == "required":
        body["tool_choice"] = {"type": "any"}
    elif choice is not None:
        body["tool_choice"] = {"type": choice}
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.metadata.get("user_id"):
        body["metadata"] = {"user_id": request.metadata["user_id"]}
    # ``seed`` has no Anthropic equivalent and is not sent; ``response_format`` is
    # expressed on Anthropic through a forced tool, which callers do explicitly.
    body.update(request.extra)
    return body
