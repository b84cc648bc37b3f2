"""ChatRequest → OpenAI Responses API (``POST /responses``) request body.

The Responses API takes a list of typed input *items* instead of chat messages:

- user, system and assistant turns are message items ``{"role", "content": [...]}``
  whose parts are ``input_text`` / ``input_image`` (user and system) or
  ``output_text`` (assistant: the API rejects ``input_text`` there);
- an assistant tool call is its own item ``{"type": "function_call", "call_id",
  "name", "arguments": <JSON string>}`` and a result is ``{"type":
  "function_call_output", "call_id", "output"}``, in conversation order; a call
  of ``kind`` ``"custom"`` (a custom tool's, decoded as ``{"input": text}``) goes
  back as ``{"type": "custom_tool_call", "call_id", "name", "input": text}``
  and its result as ``custom_tool_call_output``;
- earlier reasoning goes back as a ``reasoning`` item only when it carries the
  ``encrypted_content`` the decoder exposed as the reasoning signature; that is
  the only form a stateless (``store: false``) request can accept, and it is
  sent without the item id, which a non-stored response cannot resolve;
- ``request.system`` is the top-level ``instructions``;
- function tools are sent with ``"strict": false``: the API otherwise defaults to
  strict schemas, which reject ordinary JSON Schemas (optional properties,
  ``additionalProperties`` left open). Pass your own ``tools`` through ``extra`` to
  opt in;
- structured output is ``text.format``; the token cap is ``max_output_tokens``;
- ``stop`` and ``seed`` do not exist in this API and are not sent;
- ``store`` is false unless ``extra`` says otherwise, so nothing is kept on
  OpenAI's side by default. Reasoning models return ``encrypted_content`` only
  when asked with ``extra={"include": ["reasoning.encrypted_content"]}``.
"""

from __future__ import annotations

from typing import Any

import msgspec

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

__all__ = ["encode_body", "encode_input"]

_encode = msgspec.json.encode


def _image_url(part: ImagePart) -> str:
    if part.url:
        return part.url
    return f"data:{part.media_type or 'image/png'};base64,{part.data or ''}"


def _result(part: ToolResultPart, custom: set[str]) -> dict[str, Any]:
    kind = "custom_tool_call_output" if part.tool_call_id in custom else "function_call_output"
    return {"type": kind, "call_id": part.tool_call_id, "output": part.content}


def _call(part: ToolCallPart) -> dict[str, Any]:
    if part.kind == "custom":
        text = part.arguments.get("input")
        return {
            "type": "custom_tool_call",
            "call_id": part.id,
            "name": part.name,
            "input": text if isinstance(text, str) else _encode(part.arguments).decode(),
        }
    return {
        "type": "function_call",
        "call_id": part.id,
        "name": part.name,
        "arguments": _encode(part.arguments).decode(),
    }


def _input_message(role: str, message: Message, custom: set[str]) -> list[dict[str, Any]]:
    """A user or system turn; tool results inside a user turn become their own items."""
    if isinstance(message.content, str):
        return [{"role": role, "content": [{"type": "input_text", "text": message.content}]}]
    items: list[dict[str, Any]] = [_result(p, custom) for p in message.content if isinstance(p, ToolResultPart)]
    content: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, TextPart):
            content.append({"type": "input_text", "text": part.text})
        elif isinstance(part, ImagePart):
            content.append({"type": "input_image", "image_url": _image_url(part)})
    if content:
        items.append({"role": role, "content": content})
    return items


def _assistant(message: Message, custom: set[str]) -> list[dict[str, Any]]:
    if isinstance(message.content, str):
        return [{"role": "assistant", "content": [{"type": "output_text", "text": message.content}]}]
    items: list[dict[str, Any]] = []
    text: list[dict[str, Any]] = []

    def flush_text() -> None:
        if text:
            items.append({"role": "assistant", "content": list(text)})
            text.clear()

    # Parts keep their order: reasoning, then what the model said, then its calls.
    for part in message.content:
        if isinstance(part, TextPart):
            if part.text:
                text.append({"type": "output_text", "text": part.text})
            continue
        flush_text()
        if isinstance(part, ReasoningPart):
            if part.signature:
                summary = [{"type": "summary_text", "text": part.text}] if part.text else []
                items.append({"type": "reasoning", "summary": summary, "encrypted_content": part.signature})
        elif isinstance(part, ToolCallPart):
            items.append(_call(part))
        elif isinstance(part, ToolResultPart):
            items.append(_result(part, custom))
    flush_text()
    return items


def encode_input(request: ChatRequest) -> list[dict[str, Any]]:
    # A result answers a custom call with a custom_tool_call_output: the API matches the two.
    custom = {
        part.id
        for message in request.messages
        if message.role == "assistant"
        for part in message.parts
        if isinstance(part, ToolCallPart) and part.kind == "custom"
    }
    items: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "assistant":
            items.extend(_assistant(message, custom))
        elif message.role == "tool":
            items.extend(_result(p, custom) for p in message.parts if isinstance(p, ToolResultPart))
        else:
            items.extend(_input_message(message.role, message, custom))
    return items


def encode_body(request: ChatRequest, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "input": encode_input(request), "stream": True, "store": False}
    if request.system:
        body["instructions"] = request.system
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
                "strict": False,
            }
            for t in request.tools
        ]
    choice = request.tool_choice
    if isinstance(choice, ToolChoice):
        body["tool_choice"] = {"type": "function", "name": choice.name}
    elif choice is not None:
        body["tool_choice"] = choice
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.max_tokens is not None:
        body["max_output_tokens"] = request.max_tokens
    fmt = request.response_format
    if fmt is not None:
        if fmt.type == "json_schema" and fmt.schema is not None:
            body["text"] = {
                "format": {"type": "json_schema", "name": fmt.name, "schema": fmt.schema, "strict": fmt.strict}
            }
        else:
            # A json_schema format without a schema can only mean "some JSON object".
            body["text"] = {"format": {"type": "text" if fmt.type == "text" else "json_object"}}
    extra = dict(request.extra)
    if isinstance(extra.get("text"), dict) and "text" in body:
        # ``extra={"text": {"verbosity": "low"}}`` adds to the format instead of dropping it.
        body["text"] = {**body["text"], **extra.pop("text")}
    body.update(extra)
    return body
