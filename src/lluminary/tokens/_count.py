"""Counting a request's input tokens offline: tiktoken for OpenAI models, else the documented estimate.

:func:`count_tokens` never touches the network. For OpenAI models whose tiktoken
data is on disk (see :mod:`lluminary.tokens._tiktoken`) it counts with the real
encoding and OpenAI's documented chat accounting (the openai-cookbook recipe
"How to count tokens with tiktoken": 3 tokens framing each message, the role and
content encoded, 3 tokens priming the reply). That is exact for Chat Completions
requests of plain text; tool schemas, tool calls and results, images and the
Responses API add framing OpenAI does not document, so such counts say
``exact=False``. Every other case uses the estimate the decoders use when a
provider reports no usage (four characters per token,
:func:`lluminary.providers._tokens.estimate_request_tokens`), marked ``exact=False``.
"""

from __future__ import annotations

from typing import Final

import msgspec

from lluminary.events import ChatRequest, ImagePart, TextPart, ToolCallPart, ToolResultPart
from lluminary.providers._registry import parse_model
from lluminary.providers._tokens import PER_IMAGE_TOKENS, estimate_request_tokens
from lluminary.tokens._tiktoken import Encoder, encoding_for_model, load_encoding

__all__ = ["ESTIMATE", "TokenCount", "count_tokens", "count_with_encoding"]

#: ``method`` of a count made with the four-characters-per-token estimate.
ESTIMATE: Final = "estimate"
# OpenAI's chat accounting (openai-cookbook, "How to count tokens with tiktoken").
TOKENS_PER_MESSAGE: Final = 3
REPLY_PRIMER: Final = 3
_OPENAI_EXACT: Final = frozenset({"openai"})
_OPENAI_FAMILY: Final = frozenset({"openai", "openai-responses"})


class TokenCount(msgspec.Struct, frozen=True):
    """``tokens`` input tokens, counted by ``method``; ``exact`` only when the provider would agree."""

    tokens: int
    exact: bool
    method: str


def count_tokens(request: ChatRequest, provider: str | None = None, model: str | None = None) -> TokenCount:
    """The input tokens of ``request`` for ``provider``'s ``model`` (from ``request.model`` when not given)."""
    if provider is None or model is None:
        parsed_provider, parsed_model = parse_model(request.model)
        provider = provider or parsed_provider
        model = model or parsed_model
    if provider in _OPENAI_FAMILY:
        name = encoding_for_model(model)
        encoder = load_encoding(name) if name else None
        if encoder is not None:
            counted = count_with_encoding(request, encoder)
            if provider not in _OPENAI_EXACT and counted.exact:
                counted = TokenCount(counted.tokens, False, counted.method)
            return counted
    return TokenCount(estimate_request_tokens(request), exact=False, method=ESTIMATE)


def count_with_encoding(request: ChatRequest, encoder: Encoder) -> TokenCount:
    """OpenAI's chat accounting of ``request`` with ``encoder`` (any object with tiktoken's ``encode``)."""

    def n(text: str) -> int:
        # Special-token text in a prompt is ordinary text to the API, so it is encoded as such.
        return len(encoder.encode(text, disallowed_special=()))

    exact = True
    total = REPLY_PRIMER
    if request.system:
        total += TOKENS_PER_MESSAGE + n("system") + n(request.system)
    for message in request.messages:
        total += TOKENS_PER_MESSAGE + n(message.role)
        if isinstance(message.content, str):
            total += n(message.content)
            continue
        for part in message.content:
            if isinstance(part, TextPart):
                total += n(part.text)
            elif isinstance(part, ToolResultPart):
                total += n(part.content)
                exact = False
            elif isinstance(part, ToolCallPart):
                total += n(part.name) + n(msgspec.json.encode(part.arguments).decode())
                exact = False
            elif isinstance(part, ImagePart):
                total += PER_IMAGE_TOKENS
                exact = False
            else:  # reasoning from an earlier turn: how (and whether) it is sent back varies
                total += n(part.text)
                exact = False
    if request.tools:
        for tool in request.tools:
            total += n(tool.name) + n(tool.description) + n(msgspec.json.encode(tool.parameters).decode())
        exact = False
    return TokenCount(total, exact, f"tiktoken:{encoder.name}")
