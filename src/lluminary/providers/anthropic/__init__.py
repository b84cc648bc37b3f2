"""Anthropic Messages."""

from lluminary.providers.anthropic._decode import AnthropicDecoder
from lluminary.providers.anthropic._provider import Anthropic
from lluminary.providers.anthropic._request import encode_body

__all__ = ["Anthropic", "AnthropicDecoder", "encode_body"]
