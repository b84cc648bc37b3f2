"""ChatRequest → Cohere v2 Chat (``POST /v2/chat``) request body.

The v2 API speaks in ``messages`` with the roles ``system``, ``user``,
``assistant`` and ``tool``, close to OpenAI's but with its own names:

- an assistant turn that called tools carries ``tool_calls`` (``{id, type:
  "function", function: {name, arguments}}``, arguments as a JSON *string*) and
  the ``tool_plan`` the model wrote before calling them. Our decoder streams
  that plan as reasoning, so the reasoning of an earlier turn goes back as its
  ``tool_plan``; Cohere has no field for reasoning on a turn without calls;
- a tool result is its own ``tool`` message whose content is a list of
  ``document`` blocks (``{"type": "document", "document": {"data": "…"}}``), the
  form Cohere can cite from;
- images are ``{"type": "image_url", "image_url": {"url": …}}`` content blocks;
- sampling names differ: ``p`` (top-p), ``stop_sequences``; ``tool_choice`` is
  ``REQUIRED`` or ``NONE`` (leaving it out means "auto"). Cohere cannot force one
  named tool, so a :class:`ToolChoice` sends only that tool, with ``REQUIRED``;
- ``response_format`` is ``{"type": "json_object"}``, with an optional
  ``json_schema`` beside the type.
"""

from __future__ import annotations

from typing import Any

import msgspec

from lluminary.events import (
    ChatRequest,
    ImagePart,
    Message,
    Part,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
)
from lluminary.providers.openai._request import image_url

__all__ = ["encode_body", "encode_messages"]

_encode = msgspec.json.encode


def encode_messages(request: ChatRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    for message in request.messages:
        if message.role == "system":
            messages.append({"role": "system", "content": message.text})
        elif message.role == "assistant":
            messages.append(_assistant(message))
        else:
            # Tool results may come as a ``tool`` message or inside a ``user`` one;
            # each becomes its own ``tool`` message, in order, before any user text.
            rest: list[Part] = []
            for part in message.parts:
                if isinstance(part, ToolResultPart):
                    messages.append(_tool_result(part))
                else:
                    rest.append(part)
            if rest and message.role == "user":
                messages.append({"role": "user", "content": _user_content(message, rest)})
    return messages


def _user_content(message: Message, parts: list[Part]) -> str | list[dict[str, Any]]:
    if isinstance(message.content, str):
        return message.content
    if all(isinstance(p, TextPart) for p in parts):
        return "".join(p.text for p in parts if isinstance(p, TextPart))
    out: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextPart):
            out.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            out.append({"type": "image_url", "image_url": {"url": image_url(part)}})
    return out


def _assistant(message: Message) -> dict[str, Any]:
    if isinstance(message.content, str):
        return {"role": "assistant", "content": message.content}
    text = "".join(p.text for p in message.content if isinstance(p, TextPart))
    plan = "".join(p.text for p in message.content if isinstance(p, ReasoningPart))
    calls = [
        {
            "id": p.id,
            "type": "function",
            "function": {"name": p.name, "arguments": _encode(p.arguments).decode()},
        }
        for p in message.content
        if isinstance(p, ToolCallPart)
    ]
    out: dict[str, Any] = {"role": "assistant"}
    if text or not calls:
        out["content"] = text
    if calls:
        if plan:
            out["tool_plan"] = plan
        out["tool_calls"] = calls
    return out


def _tool_result(part: ToolResultPart) -> dict[str, Any]:
    return {
        "role": "tool",
        "tool_call_id": part.tool_call_id,
        "content": [{"type": "document", "document": {"data": part.content}}],
    }


def _tool(spec: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": spec.name, "description": spec.description, "parameters": spec.parameters},
    }


def encode_body(request: ChatRequest, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": encode_messages(request), "stream": True}
    tools = list(request.tools)
    choice = request.tool_choice
    if isinstance(choice, ToolChoice):
        # No named choice in v2: offer only the named tool and require a call.
        named = [t for t in tools if t.name == choice.name]
        tools = named or tools
        body["tool_choice"] = "REQUIRED"
    elif choice == "required":
        body["tool_choice"] = "REQUIRED"
    elif choice == "none":
        body["tool_choice"] = "NONE"
    if tools:
        body["tools"] = [_tool(t) for t in tools]
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["p"] = request.top_p
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.seed is not None:
        body["seed"] = request.seed
    fmt = request.response_format
    if fmt is not None:
        if fmt.type == "text":
            body["response_format"] = {"type": "text"}
        else:
            out: dict[str, Any] = {"type": "json_object"}
            if fmt.type == "json_schema" and fmt.schema is not None:
                out["json_schema"] = fmt.schema
            body["response_format"] = out
    body.update(request.extra)
    return body
