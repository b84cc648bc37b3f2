"""A :class:`ChatRequest` as the arguments of llama-cpp-python's ``create_chat_completion``.

Pure data in, plain dicts out: nothing here imports llama_cpp, so it is tested
without loading a model. llama-cpp renders the messages with the GGUF file's own
chat template, and templates are strict in ways an HTTP API is not (Mistral's and
Gemma's raise unless user and assistant turns alternate; most accept a system turn
only first), so the conversation is normalised to what every template accepts:

- one system message, first: ``request.system`` and any system turns, in order;
- only ``user`` and ``assistant`` turns after it, adjacent turns of one role merged;
- tool calls and tool results from earlier turns (made through another provider,
  say after a fallback) written as text, so the model still sees what happened.

What the local path does not support is left out rather than refused, so a
request written for a bigger model still runs: tool specs and ``tool_choice``
(SmolLM2 cannot call tools, and llama-cpp would force a call through a grammar),
image parts (the chat path is text-only), and reasoning from earlier turns (the
model's scratch work, for which templates have no place).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from lluminary.events import ChatRequest, Message, TextPart, ToolCallPart, ToolResultPart

__all__ = ["SAMPLING_EXTRAS", "completion_kwargs", "to_messages"]

#: ``ChatRequest.extra`` keys passed on to llama-cpp as sampling parameters. Other
#: keys are meant for other providers (``num_ctx`` for Ollama …) and are ignored,
#: so one request can fall back from a remote model to the local one.
SAMPLING_EXTRAS: Final = frozenset(
    {
        "top_k",
        "min_p",
        "typical_p",
        "repeat_penalty",
        "presence_penalty",
        "frequency_penalty",
        "tfs_z",
        "mirostat_mode",
        "mirostat_tau",
        "mirostat_eta",
        "logit_bias",
    }
)


def to_messages(request: ChatRequest) -> list[dict[str, str]]:
    """The conversation as llama-cpp chat messages (see the module docstring for the rules)."""
    system: list[str] = [request.system] if request.system else []
    turns: list[dict[str, str]] = []
    for message in request.messages:
        text = _text(message)
        if message.role == "system":
            if text:
                system.append(text)
            continue
        role = "assistant" if message.role == "assistant" else "user"
        if turns and turns[-1]["role"] == role:
            # Merge rather than drop: two user turns in a row (a tool result, then a
            # question) are both part of what the model must answer.
            turns[-1]["content"] = _join(turns[-1]["content"], text)
        else:
            turns.append({"role": role, "content": text})
    if system:
        turns.insert(0, {"role": "system", "content": "\n\n".join(system)})
    return turns


def completion_kwargs(request: ChatRequest) -> dict[str, Any]:
    """Sampling and length settings; unset fields keep llama-cpp's defaults."""
    kwargs: dict[str, Any] = {}
    if request.max_tokens is not None:
        kwargs["max_tokens"] = request.max_tokens
    if request.temperature is not None:
        kwargs["temperature"] = request.temperature
    if request.top_p is not None:
        kwargs["top_p"] = request.top_p
    if request.seed is not None:
        kwargs["seed"] = request.seed
    if request.stop:
        kwargs["stop"] = list(request.stop)
    fmt = request.response_format
    if fmt is not None and fmt.type != "text":
        # llama-cpp turns this into a grammar, so the output is JSON token by token;
        # with a schema, JSON of that shape.
        kwargs["response_format"] = (
            {"type": "json_object", "schema": fmt.schema} if fmt.schema is not None else {"type": "json_object"}
        )
    for key, value in request.extra.items():
        if key in SAMPLING_EXTRAS:
            kwargs[key] = value
    return kwargs


def _text(message: Message) -> str:
    if isinstance(message.content, str):
        return message.content
    pieces: list[str] = []
    for part in message.content:
        if isinstance(part, TextPart):
            pieces.append(part.text)
        elif isinstance(part, ToolCallPart):
            arguments = msgspec.json.encode(part.arguments).decode()
            pieces.append(f"[called tool {part.name} with {arguments}]")
        elif isinstance(part, ToolResultPart):
            label = part.name or part.tool_call_id
            outcome = "failed" if part.is_error else "returned"
            pieces.append(f"[tool {label} {outcome}: {part.content}]")
        # ImagePart and ReasoningPart are left out: see the module docstring.
    return "\n".join(pieces)


def _join(first: str, second: str) -> str:
    return f"{first}\n\n{second}" if first and second else first or second
