"""ChatRequest → OpenAI Chat Completions request body.

Also used, with small switches, by Mistral and by every OpenAI-compatible
server. On the official endpoint the token cap is sent as
``max_completion_tokens`` (the reasoning models reject ``max_tokens``); other
servers get the long-standing ``max_tokens``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from lluminary.events import (
    ChatRequest,
    ImagePart,
    Message,
    Part,
    ResponseFormat,
    TextPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)

__all__ = ["encode_body", "encode_messages", "image_url", "response_format"]

_encode = msgspec.json.encode


def image_url(part: ImagePart) -> str:
    if part.url:
        return part.url
    return f"data:{part.media_type or 'image/png'};base64,{part.data or ''}"


def _user_content(message: Message) -> str | list[dict[str, Any]]:
    if isinstance(message.content, str):
        return message.content
    if all(isinstance(p, TextPart) for p in message.content):
        return message.text
    out: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, TextPart):
            out.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            out.append({"type": "image_url", "image_url": {"url": image_url(part)}})
    return out


def encode_messages(request: ChatRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    for message in request.messages:
        if message.role == "system":
            messages.append({"role": "system", "content": message.text})
        elif message.role == "user":
            results = [p for p in message.parts if isinstance(p, ToolResultPart)]
            rest: list[Part] = [p for p in message.parts if not isinstance(p, ToolResultPart)]
            messages.extend(_tool_result(p) for p in results)
            if rest:
                messages.append({"role": "user", "content": _user_content(Message("user", rest))})
        elif message.role == "tool":
            messages.extend(_tool_result(p) for p in message.parts if isinstance(p, ToolResultPart))
        else:
            messages.append(_assistant(message))
    return messages


def _tool_result(part: ToolResultPart) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": part.tool_call_id, "content": part.content}


def _assistant(message: Message) -> dict[str, Any]:
    if isinstance(message.content, str):
        return {"role": "assistant", "content": message.content}
    text = "".join(p.text for p in message.content if isinstance(p, TextPart))
    calls = [
        {
            "id": p.id,
            "type": "function",
            "function": {"name": p.name, "arguments": _encode(p.arguments).decode()},
        }
        for p in message.content
        if isinstance(p, ToolCallPart)
    ]
    # With tool calls and no text the documented form is ``"content": null``;
    # without tool calls, content is required.
    out: dict[str, Any] = {"role": "assistant", "content": (text or None) if calls else text}
    if calls:
        out["tool_calls"] = calls
    # Reasoning parts are not sent back: Chat Completions has no field for them.
    return out


def response_format(fmt: ResponseFormat) -> dict[str, Any]:
    """``response_format`` as Chat Completions spells it (Mistral uses the same shape)."""
    if fmt.type != "json_schema":
        return {"type": fmt.type}
    schema: dict[str, Any] = {"name": fmt.name, "strict": fmt.strict}
    if fmt.schema is not None:
        schema["schema"] = fmt.schema
    return {"type": "json_schema", "json_schema": schema}


def encode_body(request: ChatRequest, model: str, *, official: bool, include_usage: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": encode_messages(request), "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
            }
            for t in request.tools
        ]
    choice = request.tool_choice
    if isinstance(choice, ToolChoice):
        body["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    elif choice is not None:
        body["tool_choice"] = choice
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.max_tokens is not None:
        body["max_completion_tokens" if official else "max_tokens"] = request.max_tokens
    if request.stop:
        body["stop"] = list(request.stop)
    if request.seed is not None:
        body["seed"] = request.seed
    if request.response_format is not None:
        body["response_format"] = response_format(request.response_format)
    body.update(request.extra)
    return body
