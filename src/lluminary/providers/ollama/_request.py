"""ChatRequest → Ollama ``/api/chat`` request body.

Where Ollama differs from OpenAI's shape:

- images travel as a list of bare base64 strings on the message (``images``),
  never as URLs. Inline data and ``data:`` URLs are sent; an http(s) URL cannot
  be, and raises :class:`~lluminary.errors.ConfigError` (the provider turns that
  into an ``invalid_request`` error event before any network I/O);
- assistant tool calls are ``{"function": {"name", "arguments": <object>}}``
  (arguments as an object, not a JSON string) and tool results are messages
  ``{"role": "tool", "content", "tool_name"}``; Ollama matches results by tool
  name, which we take from the result or look up from the call it answers;
- earlier reasoning goes back in the assistant message's ``thinking`` field;
- sampling parameters live in ``options`` (``num_predict`` is the token cap);
  ``request.extra`` merges into the body, and ``extra["options"]`` into the
  options, so ``num_ctx``, ``keep_alive`` or ``think`` pass straight through;
- structured output is ``format``: ``"json"`` or a JSON Schema object;
- there is no ``tool_choice``. ``"none"`` is honoured by sending no tools and a
  named tool by sending only that tool; ``"required"`` cannot be enforced and is
  left to the model.
"""

from __future__ import annotations

from typing import Any, Final

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

__all__ = ["check_request", "encode_body", "image_data"]

_BASE64_MARKER: Final = ";base64,"


def image_data(part: ImagePart) -> str:
    """The bare base64 of an image, which is all Ollama accepts."""
    if part.data:
        return part.data
    url = part.url or ""
    if url.startswith("data:") and _BASE64_MARKER in url:
        return url.split(_BASE64_MARKER, 1)[1]
    raise ConfigError(
        "Ollama takes images only as inline base64: pass ImagePart(data=..., media_type=...) "
        "or a data: URL instead of an http(s) URL"
    )


def check_request(request: ChatRequest) -> None:
    """Raise :class:`ConfigError` for what Ollama cannot be sent (image URLs)."""
    for message in request.messages:
        if isinstance(message.content, list):
            for part in message.content:
                if isinstance(part, ImagePart):
                    image_data(part)


def _tool_names(request: ChatRequest) -> dict[str, str]:
    """Call id → tool name, for results that do not name their tool."""
    names: dict[str, str] = {}
    for message in request.messages:
        if message.role == "assistant" and isinstance(message.content, list):
            for part in message.content:
                if isinstance(part, ToolCallPart):
                    names[part.id] = part.name
    return names


def _tool_result(part: ToolResultPart, names: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "tool", "content": part.content}
    name = part.name or names.get(part.tool_call_id)
    if name:
        out["tool_name"] = name
    return out


def _user(message: Message, names: dict[str, str]) -> list[dict[str, Any]]:
    if isinstance(message.content, str):
        return [{"role": "user", "content": message.content}]
    out = [_tool_result(p, names) for p in message.content if isinstance(p, ToolResultPart)]
    text = "".join(p.text for p in message.content if isinstance(p, TextPart))
    images = [image_data(p) for p in message.content if isinstance(p, ImagePart)]
    if text or images or not out:
        entry: dict[str, Any] = {"role": "user", "content": text}
        if images:
            entry["images"] = images
        out.append(entry)
    return out


def _assistant(message: Message) -> dict[str, Any]:
    if isinstance(message.content, str):
        return {"role": "assistant", "content": message.content}
    out: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(p.text for p in message.content if isinstance(p, TextPart)),
    }
    thinking = "".join(p.text for p in message.content if isinstance(p, ReasoningPart))
    if thinking:
        out["thinking"] = thinking
    images = [image_data(p) for p in message.content if isinstance(p, ImagePart)]
    if images:
        out["images"] = images
    calls = [
        {"function": {"name": p.name, "arguments": p.arguments}} for p in message.content if isinstance(p, ToolCallPart)
    ]
    if calls:
        out["tool_calls"] = calls
    return out


def encode_messages(request: ChatRequest) -> list[dict[str, Any]]:
    names = _tool_names(request)
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    for message in request.messages:
        if message.role == "system":
            messages.append({"role": "system", "content": message.text})
        elif message.role == "user":
            messages.extend(_user(message, names))
        elif message.role == "tool":
            messages.extend(_tool_result(p, names) for p in message.parts if isinstance(p, ToolResultPart))
        else:
            messages.append(_assistant(message))
    return messages


def _tools(request: ChatRequest) -> list[dict[str, Any]]:
    choice = request.tool_choice
    if choice == "none":
        return []
    tools = request.tools
    if isinstance(choice, ToolChoice):
        tools = [t for t in tools if t.name == choice.name] or tools
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
        }
        for t in tools
    ]


def encode_body(request: ChatRequest, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": encode_messages(request), "stream": True}
    tools = _tools(request)
    if tools:
        body["tools"] = tools
    options: dict[str, Any] = {}
    if request.temperature is not None:
        options["temperature"] = request.temperature
    if request.top_p is not None:
        options["top_p"] = request.top_p
    if request.max_tokens is not None:
        options["num_predict"] = request.max_tokens
    if request.stop:
        options["stop"] = list(request.stop)
    if request.seed is not None:
        options["seed"] = request.seed
    fmt = request.response_format
    if fmt is not None and fmt.type != "text":
        body["format"] = fmt.schema if fmt.type == "json_schema" and fmt.schema is not None else "json"
    extra = dict(request.extra)
    if isinstance(extra.get("options"), dict):
        # Merged, not replaced, so ``extra={"options": {"num_ctx": 8192}}`` keeps the
        # temperature and token cap set through the request's own fields.
        options.update(extra.pop("options"))
    if options:
        body["options"] = options
    body.update(extra)
    return body
