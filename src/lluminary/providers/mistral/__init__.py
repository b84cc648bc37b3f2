"""Mistral Chat Completions (La Plateforme), including the reasoning (magistral) models."""

from lluminary.providers.mistral._decode import MistralDecoder
from lluminary.providers.mistral._provider import Mistral
from lluminary.providers.mistral._request import encode_body, tool_call_id

__all__ = ["Mistral", "MistralDecoder", "encode_body", "tool_call_id"]
