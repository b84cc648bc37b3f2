"""The OpenAI Responses API (``/v1/responses``), streamed as typed SSE events."""

from lluminary.providers.openai_responses._decode import OpenAIResponsesDecoder
from lluminary.providers.openai_responses._provider import OpenAIResponses
from lluminary.providers.openai_responses._request import encode_body

__all__ = ["OpenAIResponses", "OpenAIResponsesDecoder", "encode_body"]
