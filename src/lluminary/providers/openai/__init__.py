"""OpenAI Chat Completions, and every server that speaks it."""

from lluminary.providers.openai._decode import OpenAIChatDecoder
from lluminary.providers.openai._provider import OpenAIChat
from lluminary.providers.openai._request import encode_body

__all__ = ["OpenAIChat", "OpenAIChatDecoder", "encode_body"]
