"""ChatRequest → Bedrock Converse / ConverseStream request body (the model id goes in the URL).

The Converse shape, as documented:

- ``system``: ``[{"text"}]``, from ``request.system`` and any system messages;
- ``messages``: ``{"role": "user" | "assistant", "content": [block]}`` with roles
  alternating, so consecutive turns of one role (several tool results above all)
  merge into one message. Blocks: ``{"text"}``; ``{"image": {"format",
  "source": {"bytes": base64}}}`` (or ``{"s3Location": {"uri"}}`` for ``s3://``
  URLs); ``{"toolUse": {"toolUseId", "name", "input"}}``; ``{"toolResult":
  {"toolUseId", "content": [{"text"}], "status": "error"?}}``; earlier reasoning as
  ``{"reasoningContent": {"reasoningText": {"text", "signature"}}}``, only with
  its signature, which the API requires to accept it back, and encrypted
  reasoning as ``{"reasoningContent": {"redactedContent": base64}}``, verbatim;
- ``toolConfig``: ``{"tools": [{"toolSpec": {"name", "description", "inputSchema":
  {"json": schema}}}], "toolChoice": {"auto": {}} | {"any": {}} | {"tool": {"name"}}}``;
- ``inferenceConfig``: ``maxTokens``, ``temperature``, ``topP``, ``stopSequences``;
- ``outputConfig.textFormat`` for a JSON-schema ``response_format`` (the schema
  travels as a JSON *string*).

``request.extra`` is merged last, so fields we do not model go through as-is
(``additionalModelRequestFields``, ``guardrailConfig``, ``performanceConfig`` …);
where both sides are objects they merge one level deep, so
``extra={"inferenceConfig": {...}}`` adds to ours instead of replacing it.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec

from lluminary.errors import ConfigError
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

__all__ = ["encode_body", "encode_messages"]

_DATA_URL: Final = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(;[^,]*)?;base64,(?P<data>.*)$", re.DOTALL)
# Converse names image formats by their subtype; "jpg" is a common misspelling of jpeg.
_FORMATS: Final = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "gif": "gif", "webp": "webp"}


def _image(part: ImagePart) -> dict[str, Any]:
    media_type, data = part.media_type, part.data
    url = part.url
    if url:
        if url.startswith("s3://"):
            source: dict[str, Any] = {"s3Location": {"uri": url}}
            return {"image": {"format": _format(media_type or _guess(url)), "source": source}}
        match = _DATA_URL.match(url)
        if match is None:
            # Converse cannot fetch web URLs; guessing or dropping the image would change the prompt.
            raise ConfigError("Bedrock takes images as base64 data or s3:// URLs, not web URLs: pass ImagePart(data=…)")
        media_type = media_type or match.group("type")
        data = match.group("data")
    return {"image": {"format": _format(media_type), "source": {"bytes": data or ""}}}


def _guess(url: str) -> str | None:
    return url.rsplit(".", 1)[-1].lower() if "." in url.rsplit("/", 1)[-1] else None


def _format(media_type: str | None) -> str:
    if not media_type:
        return "png"
    subtype = media_type.rsplit("/", 1)[-1].lower()
    return _FORMATS.get(subtype, subtype)


def _tool_result(part: ToolResultPart) -> dict[str, Any]:
    result: dict[str, Any] = {"toolUseId": part.tool_call_id, "content": [{"text": part.content}]}
    if part.is_error:
        result["status"] = "error"
    return {"toolResult": result}


def _blocks(message: Message) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            if part.text:  # Converse rejects blank text blocks
                out.append({"text": part.text})
        elif isinstance(part, ImagePart):
            out.append(_image(part))
        elif isinstance(part, ReasoningPart):
            if isinstance(part.redacted, str):
                out.append({"reasoningContent": {"redactedContent": part.redacted}})
            elif part.signature:
                reasoning = {"reasoningText": {"text": part.text, "signature": part.signature}}
                out.append({"reasoningContent": reasoning})
        elif isinstance(part, ToolCallPart):
            out.append({"toolUse": {"toolUseId": part.id, "name": part.name, "input": part.arguments}})
        elif isinstance(part, ToolResultPart):
            out.append(_tool_result(part))
    return out


def encode_messages(request: ChatRequest) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The system blocks and the alternating user/assistant messages."""
    system = [{"text": request.system}] if request.system else []
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "system":
            if message.text:
                system.append({"text": message.text})
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if not blocks:
            continue
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    return system, messages


def _uses_tools(messages: list[dict[str, Any]]) -> bool:
    return any("toolUse" in block or "toolResult" in block for m in messages for block in m["content"])


def _tool_config(request: ChatRequest, messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not request.tools:
        return None
    choice = request.tool_choice
    # Converse has no "none" choice. Not sending the tools is the way to forbid calls,
    # except that the API insists on toolConfig once the history holds tool blocks.
    if choice == "none" and not _uses_tools(messages):
        return None
    specs: list[dict[str, Any]] = []
    for tool in request.tools:
        spec: dict[str, Any] = {"name": tool.name, "inputSchema": {"json": tool.parameters}}
        if tool.description:  # the API rejects an empty description, not a missing one
            spec["description"] = tool.description
        specs.append({"toolSpec": spec})
    config: dict[str, Any] = {"tools": specs}
    if isinstance(choice, ToolChoice):
        config["toolChoice"] = {"tool": {"name": choice.name}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    return config


def encode_body(request: ChatRequest) -> dict[str, Any]:
    system, messages = encode_messages(request)
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = system
    tool_config = _tool_config(request, messages)
    if tool_config is not None:
        body["toolConfig"] = tool_config
    inference: dict[str, Any] = {}
    if request.max_tokens is not None:
        inference["maxTokens"] = request.max_tokens
    if request.temperature is not None:
        inference["temperature"] = request.temperature
    if request.top_p is not None:
        inference["topP"] = request.top_p
    if request.stop:
        inference["stopSequences"] = list(request.stop)
    if inference:
        body["inferenceConfig"] = inference
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_schema" and fmt.schema is not None:
        schema = {"schema": msgspec.json.encode(fmt.schema).decode(), "name": fmt.name}
        body["outputConfig"] = {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": schema}}}
    # ``seed`` has no Converse field; ``json_object`` without a schema has no equivalent either.
    for key, value in request.extra.items():
        current = body.get(key)
        body[key] = {**current, **value} if isinstance(current, dict) and isinstance(value, dict) else value
    return body
