"""ChatRequest → Mistral Chat Completions (``POST /v1/chat/completions``) request body.

Mistral's body is OpenAI's in shape, and it shares the OpenAI encoder's image
helper, but it differs where a copy of the OpenAI body would be rejected (the
API refuses unknown fields with HTTP 422):

- the token cap is ``max_tokens`` and the seed ``random_seed``; there is no
  ``stream_options`` (usage always comes on the last chunk);
- ``tool_choice`` is ``auto`` / ``none`` / ``any`` (our ``required``) or
  ``{"type": "function", "function": {"name": …}}``;
- a ``tool`` message carries the ``name`` of the function it answers beside
  ``tool_call_id``; when the caller did not give it, we take it from the
  assistant turn that made the call;
- tool-call ids must be exactly nine characters from ``[A-Za-z0-9]``. Ids made
  by other providers (``call_…``, ``toolu_…``) are mapped to such an id by a
  hash, the same way for the call and for its result, so a conversation can
  move to Mistral mid-way;
- images are ``{"type": "image_url", "image_url": "<url or data URL>"}``.

Reasoning from earlier turns is not sent back. ``safe_prompt``,
``prompt_mode``, ``parallel_tool_calls`` and the rest go through
``ChatRequest.extra``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Final

import msgspec

from lluminary.events import (
    ChatRequest,
    ImagePart,
    Message,
    Part,
    TextPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from lluminary.providers.openai._request import image_url, response_format

__all__ = ["encode_body", "encode_messages", "tool_call_id"]

_encode = msgspec.json.encode
_VALID_ID: Final = re.compile(r"[A-Za-z0-9]{9}")
_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_TOOL_CHOICE: Final = {"auto": "auto", "none": "none", "required": "any"}


def tool_call_id(raw: str) -> str:
    """``raw`` if Mistral accepts it, else a stable nine-character id derived from it."""
    if _VALID_ID.fullmatch(raw):
        return raw
    number = int.from_bytes(hashlib.sha256(raw.encode()).digest()[:8], "big")
    chars = []
    for _ in range(9):
        number, digit = divmod(number, 62)
        chars.append(_ALPHABET[digit])
    return "".join(chars)


def encode_messages(request: ChatRequest) -> list[dict[str, Any]]:
    names = {
        p.id: p.name
        for m in request.messages
        if m.role == "assistant" and not isinstance(m.content, str)
        for p in m.content
        if isinstance(p, ToolCallPart)
    }
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    for message in request.messages:
        if message.role == "system":
            messages.append({"role": "system", "content": message.text})
        elif message.role == "assistant":
            messages.append(_assistant(message))
        else:
            rest: list[Part] = []
            for part in message.parts:
                if isinstance(part, ToolResultPart):
                    messages.append(_tool_result(part, part.name or names.get(part.tool_call_id)))
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
            out.append({"type": "image_url", "image_url": image_url(part)})
    return out


def _assistant(message: Message) -> dict[str, Any]:
    if isinstance(message.content, str):
        return {"role": "assistant", "content": message.content}
    text = "".join(p.text for p in message.content if isinstance(p, TextPart))
    calls = [
        {
            "id": tool_call_id(p.id),
            "type": "function",
            "function": {"name": p.name, "arguments": _encode(p.arguments).decode()},
        }
        for p in message.content
        if isinstance(p, ToolCallPart)
    ]
    out: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        out["tool_calls"] = calls
    return out


def _tool_result(part: ToolResultPart, name: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "tool", "tool_call_id": tool_call_id(part.tool_call_id), "content": part.content}
    if name:
        out["name"] = name
    return out


def encode_body(request: ChatRequest, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": encode_messages(request), "stream": True}
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
        body["tool_choice"] = _TOOL_CHOICE[choice]
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.stop:
        body["stop"] = list(request.stop)
    if request.seed is not None:
        body["random_seed"] = request.seed
    if request.response_format is not None:
        body["response_format"] = response_format(request.response_format)
    body.update(request.extra)
    return body
