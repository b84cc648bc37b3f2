"""Cohere v2 Chat."""

from lluminary.providers.cohere._decode import CohereDecoder
from lluminary.providers.cohere._provider import Cohere
from lluminary.providers.cohere._request import encode_body

__all__ = ["Cohere", "CohereDecoder", "encode_body"]
