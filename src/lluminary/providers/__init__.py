"""Providers: one package each, sharing framing, tool-call assembly, errors and the HTTP loop."""

from lluminary.providers._base import HttpProvider, Provider, Secret
from lluminary.providers._decoder import BaseDecoder, Decoder, estimate_tokens
from lluminary.providers._errors import parse_retry_after, redact
from lluminary.providers._http import (
    AiohttpTransport,
    HttpRequest,
    HttpResponse,
    HttpxTransport,
    Transport,
    TransportError,
)
from lluminary.providers._registry import PROVIDERS, create_provider, parse_model
from lluminary.providers._toolcalls import ToolArgumentsError, ToolCallAssembler

__all__ = [
    "PROVIDERS",
    "AiohttpTransport",
    "BaseDecoder",
    "Decoder",
    "HttpProvider",
    "HttpRequest",
    "HttpResponse",
    "HttpxTransport",
    "Provider",
    "Secret",
    "ToolArgumentsError",
    "ToolCallAssembler",
    "Transport",
    "TransportError",
    "create_provider",
    "estimate_tokens",
    "parse_model",
    "parse_retry_after",
    "redact",
]
