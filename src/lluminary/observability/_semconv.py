"""Our vocabulary in the words of the OpenTelemetry GenAI semantic conventions.

The Tracing and Metrics operators both describe a request the same way: which
provider (``gen_ai.provider.name`` uses the spec's well-known values:
``openai``, ``anthropic``, ``gcp.gemini``, ``aws.bedrock``, ``cohere``,
``mistral_ai``; ``ollama`` and ``lluminary.local`` have none, so they are our
own), which model, which server. This module holds those names and mappings in
one place, plus the converters from requests and responses to the spec's
``gen_ai.input.messages`` / ``gen_ai.output.messages`` JSON, which only run when
content capture was asked for.

Conventions followed: the GenAI spans and metrics documents of
open-telemetry/semantic-conventions-genai (status "development"). Every
request is ``gen_ai.operation.name = "chat"``, Gemini included: our API is a
chat API whatever the vendor calls its endpoint, and one operation name keeps
span names and dashboards uniform across providers.

Token counts: our ``Usage.input_tokens`` excludes cache reads and writes (so
cost can price them separately), while the spec says ``gen_ai.usage.input_tokens``
SHOULD include all input tokens, cached ones too. :func:`total_input_tokens`
adds them back; the cached parts are reported separately in
``gen_ai.usage.cache_read.input_tokens`` and ``…cache_creation.input_tokens``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, NamedTuple
from urllib.parse import urlsplit

import msgspec

from lluminary.events import (
    ChatRequest,
    Error,
    Finish,
    ImagePart,
    ReasoningPart,
    Response,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
)

__all__ = [
    "PROVIDER_NAMES",
    "Target",
    "error_type",
    "finish_reason",
    "input_messages",
    "output_messages",
    "parse_servers",
    "request_attributes",
    "resolve_target",
    "system_instructions",
    "tool_definitions",
    "total_input_tokens",
]

# -- attribute names ------------------------------------------------------------------

OPERATION_NAME: Final = "gen_ai.operation.name"
PROVIDER_NAME: Final = "gen_ai.provider.name"
REQUEST_MODEL: Final = "gen_ai.request.model"
REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
REQUEST_TOP_P: Final = "gen_ai.request.top_p"
REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
REQUEST_SEED: Final = "gen_ai.request.seed"
REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
REQUEST_STREAM: Final = "gen_ai.request.stream"
OUTPUT_TYPE: Final = "gen_ai.output.type"
RESPONSE_MODEL: Final = "gen_ai.response.model"
RESPONSE_ID: Final = "gen_ai.response.id"
RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ: Final = "gen_ai.usage.cache_read.input_tokens"
USAGE_CACHE_CREATION: Final = "gen_ai.usage.cache_creation.input_tokens"
USAGE_REASONING: Final = "gen_ai.usage.reasoning.output_tokens"
TOKEN_TYPE: Final = "gen_ai.token.type"  # noqa: S105 - an attribute name, not a secret
INPUT_MESSAGES: Final = "gen_ai.input.messages"
OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
TOOL_DEFINITIONS: Final = "gen_ai.tool.definitions"
ERROR_TYPE: Final = "error.type"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"

#: Our own attributes, namespaced so they never collide with a future spec name.
LLUMINARY_PROVIDER: Final = "lluminary.provider"
LLUMINARY_TENANT: Final = "lluminary.tenant"

CHAT: Final = "chat"

#: Our provider names → ``gen_ai.provider.name``. OpenAI Responses is still OpenAI.
PROVIDER_NAMES: Final[Mapping[str, str]] = {
    "openai": "openai",
    "openai-responses": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "bedrock": "aws.bedrock",
    "cohere": "cohere",
    "mistral": "mistral_ai",
    "ollama": "ollama",
    "local": "lluminary.local",
}

# The spec's output-message finish reasons say "tool_call" where we say "tool_calls".
_FINISH_REASONS: Final = {"tool_calls": "tool_call"}
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


class Target(NamedTuple):
    """Where a request goes, as the telemetry names it."""

    provider: str  # ours: "openai-responses"
    model: str  # the provider's model id: "gpt-4o-mini"
    system: str  # gen_ai.provider.name: "openai"
    address: str | None
    port: int | None

    def attributes(self) -> dict[str, Any]:
        """The attributes every span and metric of this request carries."""
        attrs: dict[str, Any] = {OPERATION_NAME: CHAT, PROVIDER_NAME: self.system}
        if self.model:
            attrs[REQUEST_MODEL] = self.model
        if self.address is not None:
            attrs[SERVER_ADDRESS] = self.address
            if self.port is not None:
                attrs[SERVER_PORT] = self.port
        return attrs


def parse_servers(servers: Mapping[str, object] | None) -> dict[str, tuple[str, int | None]]:
    """Provider name → (host, port), from base URLs or configured providers.

    A value is a base URL string or anything with a ``base_url`` attribute (an
    :class:`~lluminary.providers.HttpProvider`), so the mapping handed to
    ``Engine(providers=…)`` can be passed as it is. Done once, at construction,
    so no URL is parsed per request.
    """
    parsed: dict[str, tuple[str, int | None]] = {}
    for name, value in (servers or {}).items():
        url = value if isinstance(value, str) else getattr(value, "base_url", None)
        if not isinstance(url, str) or not url:
            continue
        parts = urlsplit(url)
        if parts.hostname:
            parsed[name] = (parts.hostname, parts.port or _DEFAULT_PORTS.get(parts.scheme))
    return parsed


def resolve_target(model: str, servers: Mapping[str, tuple[str, int | None]]) -> Target:
    """Split ``"provider:model"`` (never raising: a bad name is the engine's to report)."""
    provider, sep, name = model.partition(":")
    if not sep:
        provider, name = "", model
    system = PROVIDER_NAMES.get(provider) or provider or "_OTHER"
    address, port = servers.get(provider, (None, None))
    return Target(provider, name, system, address, port)


def total_input_tokens(usage: Usage) -> int:
    """Input tokens as the spec counts them: cache reads and writes included."""
    return usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens


def error_type(terminal: Finish | Error | None, failure: BaseException | None) -> str | None:
    """``error.type`` for a stream that ended this way; None when it finished.

    ``terminal`` is the ``finish``/``error`` seen (if any), ``failure`` what was
    raised through the operator (if anything). No terminal and nothing raised
    means the inner stream ran dry: ``protocol``, as EventStream reports it. An
    exception is named by its class; GeneratorExit (the consumer stopped early)
    and cancellation are ``cancelled``.
    """
    if isinstance(terminal, Finish):
        return None
    if terminal is not None:
        return terminal.code
    if failure is None:
        return "protocol"
    if isinstance(failure, Exception):
        return type(failure).__qualname__
    return "cancelled"


def finish_reason(finish: Finish) -> str:
    return _FINISH_REASONS.get(finish.reason, finish.reason)


def request_attributes(request: ChatRequest) -> dict[str, Any]:
    """The sampling settings the request set, none of them content."""
    attrs: dict[str, Any] = {REQUEST_STREAM: True}
    if request.temperature is not None:
        attrs[REQUEST_TEMPERATURE] = request.temperature
    if request.top_p is not None:
        attrs[REQUEST_TOP_P] = request.top_p
    if request.max_tokens is not None:
        attrs[REQUEST_MAX_TOKENS] = request.max_tokens
    if request.seed is not None:
        attrs[REQUEST_SEED] = request.seed
    if request.stop:
        attrs[REQUEST_STOP_SEQUENCES] = list(request.stop)
    if request.response_format is not None:
        attrs[OUTPUT_TYPE] = "text" if request.response_format.type == "text" else "json"
    return attrs


# -- content, only ever built when capture_content=True ----------------------------------


def _json(value: Any) -> str:
    # Span attributes hold primitives only in the Python SDK, so the spec's structured
    # values are recorded as JSON strings, as the spec allows for that case.
    return msgspec.json.encode(value).decode()


def _part(part: object) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "content": part.text}
    if isinstance(part, ReasoningPart):
        return {"type": "reasoning", "content": part.text}
    if isinstance(part, ToolCallPart):
        return {"type": "tool_call", "id": part.id, "name": part.name, "arguments": part.arguments}
    if isinstance(part, ToolResultPart):
        return {"type": "tool_call_response", "id": part.tool_call_id, "response": part.content}
    if isinstance(part, ImagePart):
        if part.url is not None:
            return {"type": "uri", "modality": "image", "mime_type": part.media_type, "uri": part.url}
        return {"type": "blob", "modality": "image", "mime_type": part.media_type, "content": part.data}
    return {"type": type(part).__name__}


def input_messages(request: ChatRequest) -> str:
    """``gen_ai.input.messages``: the chat history, in the order it was sent."""
    return _json([{"role": m.role, "parts": [_part(p) for p in m.parts]} for m in request.messages])


def system_instructions(request: ChatRequest) -> str | None:
    """``gen_ai.system_instructions``: the system prompt given apart from the history."""
    if not request.system:
        return None
    return _json([{"type": "text", "content": request.system}])


def tool_definitions(request: ChatRequest) -> str | None:
    if not request.tools:
        return None
    return _json(
        [
            {"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters}
            for t in request.tools
        ]
    )


def output_messages(response: Response) -> str:
    """``gen_ai.output.messages``: the one assistant message the stream produced."""
    parts: list[dict[str, Any]] = [_part(p) for p in response.reasoning_parts]
    if response.text:
        parts.append({"type": "text", "content": response.text})
    if response.refusal:
        parts.append({"type": "refusal", "content": response.refusal})
    parts.extend(
        {"type": "tool_call", "id": c.id, "name": c.name, "arguments": c.arguments} for c in response.tool_calls
    )
    message: dict[str, Any] = {"role": "assistant", "parts": parts}
    if response.finish_reason is not None:
        message["finish_reason"] = _FINISH_REASONS.get(response.finish_reason, response.finish_reason)
    return _json([message])
