"""Counting input tokens with the providers' own endpoints, over the engine's transport.

The provider's tokenizer is the only exact one, and four providers expose it:

- Anthropic ``POST /v1/messages/count_tokens`` takes the Messages body (model,
  messages, system, tools, tool_choice, thinking) and answers ``{"input_tokens": N}``.
- Gemini ``POST /v1beta/models/{model}:countTokens`` takes
  ``{"generateContentRequest": {"model": "models/…", contents, systemInstruction, tools, …}}``
  and answers ``{"totalTokens": N, …}``.
- OpenAI ``POST /v1/responses/input_tokens`` takes the Responses body and answers
  ``{"object": "response.input_tokens", "input_tokens": N}``; it serves Chat
  Completions models too.
- Cohere ``POST /v1/tokenize`` takes ``{"text", "model"}`` and answers
  ``{"tokens": […], "token_strings": […]}``. It tokenizes text, not a chat, so
  the template's own tokens are missing and the count says ``exact=False``.

Requests are built by the provider itself (``build_request``), so the key goes
only where the provider was configured to send it and in the same header; only
the path and body change. A failure raises :class:`TokenCountError` carrying
the provider's typed ``error`` event (keys already scrubbed), or, with
``fallback=True``, returns the offline count instead.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import msgspec

from lluminary.errors import LLuminaryError
from lluminary.events import ChatRequest, Error
from lluminary.providers._base import HttpProvider, Provider
from lluminary.providers._errors import error_event
from lluminary.providers._http import HttpRequest, Transport, TransportError
from lluminary.tokens._count import TokenCount, count_tokens

__all__ = ["REMOTE_COUNTERS", "TokenCountError", "count_tokens_remote"]

log = logging.getLogger("lluminary.tokens")

#: Providers with a count endpoint; any other provider is counted offline.
REMOTE_COUNTERS: Final = frozenset({"anthropic", "gemini", "openai", "openai-responses", "cohere"})
_ANTHROPIC_FIELDS: Final = ("model", "messages", "system", "tools", "tool_choice", "thinking")
_OPENAI_FIELDS: Final = (
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning",
    "text",
    "truncation",
    "previous_response_id",
    "conversation",
)
_GEMINI_DROP: Final = ("cachedContent",)
# Cohere's tokenize answers with every token id and string: allow more than an error body.
_MAX_BODY: Final = 4 * 1024 * 1024


class TokenCountError(LLuminaryError):
    """A count endpoint failed. ``event`` is the mapped ``error`` event, when there was an HTTP answer."""

    def __init__(self, message: str, event: Error | None = None) -> None:
        super().__init__(message)
        self.event = event


class _InputTokens(msgspec.Struct):
    input_tokens: int


class _TotalTokens(msgspec.Struct, rename="camel"):
    total_tokens: int


class _Tokenized(msgspec.Struct):
    tokens: list[int]


async def count_tokens_remote(
    request: ChatRequest,
    provider: Provider,
    model: str,
    transport: Transport,
    *,
    fallback: bool = False,
) -> TokenCount:
    """The input tokens of ``request`` as ``provider``'s count endpoint reports them."""
    try:
        if not isinstance(provider, HttpProvider) or provider.name not in REMOTE_COUNTERS:
            raise TokenCountError(f"{provider.name} has no token-count endpoint")
        http, method, exact, parse = _build(request, provider, model)
        body = await _post(provider, http, transport)
        return TokenCount(parse(body), exact, method)
    except TokenCountError as exc:
        if not fallback:
            raise
        log.info("token count endpoint unavailable (%s); counting offline", exc)
        return count_tokens(request, provider.name, model)


def _build(request: ChatRequest, provider: HttpProvider, model: str) -> tuple[HttpRequest, str, bool, Any]:
    base = provider.build_request(request, model)
    headers = {**base.headers, "accept": "application/json"}
    name = provider.name
    if name == "anthropic":
        from lluminary.providers.anthropic import encode_body as anthropic_body

        full = anthropic_body(request, model)
        body: dict[str, Any] = {k: full[k] for k in _ANTHROPIC_FIELDS if k in full}
        url = f"{provider.base_url}/v1/messages/count_tokens"
        return _request(url, headers, body), "anthropic:count_tokens", True, _parse_input_tokens
    if name == "gemini":
        from lluminary.providers.gemini import encode_body as gemini_body

        content = {k: v for k, v in gemini_body(request).items() if k not in _GEMINI_DROP}
        content["model"] = model if "/" in model else f"models/{model}"
        # The streaming URL with its method swapped: same root, same model path, no query.
        url = base.url.split(":streamGenerateContent", 1)[0] + ":countTokens"
        return _request(url, headers, {"generateContentRequest": content}), "gemini:countTokens", True, _parse_total
    if name in ("openai", "openai-responses"):
        from lluminary.providers.openai_responses import encode_body as responses_body

        full = responses_body(request, model)
        body = {k: full[k] for k in _OPENAI_FIELDS if k in full}
        url = f"{provider.base_url}/responses/input_tokens"
        return _request(url, headers, body), "openai:responses/input_tokens", True, _parse_input_tokens
    # cohere: text only, so the chat template's tokens are not in the count
    texts = [request.system or ""] + [m.text for m in request.messages]
    body = {"text": "\n".join(t for t in texts if t), "model": model}
    url = f"{provider.base_url}/v1/tokenize"
    return _request(url, headers, body), "cohere:tokenize", False, _parse_tokenized


def _request(url: str, headers: dict[str, str], body: dict[str, Any]) -> HttpRequest:
    return HttpRequest("POST", url, headers, msgspec.json.encode(body))


async def _post(provider: HttpProvider, http: HttpRequest, transport: Transport) -> bytes:
    try:
        async with transport.open(http) as resp:
            body = await resp.read(_MAX_BODY)
            status = resp.status
            if not 200 <= status < 300:
                event = provider.map_error(status, resp.headers, body)
                raise TokenCountError(f"{provider.name} token count failed: {event.code}: {event.message}", event)
            return body
    except TransportError as exc:
        event = error_event(exc.code, exc.message, provider=provider.name, secrets=provider.secrets)
        raise TokenCountError(f"{provider.name} token count failed: {exc.code}: {event.message}", event) from None


def _decode(body: bytes, kind: type[Any]) -> Any:
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.DecodeError as exc:
        raise TokenCountError(f"unexpected token count response: {exc}") from None


def _parse_input_tokens(body: bytes) -> int:
    return int(_decode(body, _InputTokens).input_tokens)


def _parse_total(body: bytes) -> int:
    return int(_decode(body, _TotalTokens).total_tokens)


def _parse_tokenized(body: bytes) -> int:
    return len(_decode(body, _Tokenized).tokens)
