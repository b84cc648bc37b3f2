"""Google Gemini (the Generative Language API): ``gemini:MODEL``."""

from lluminary.providers.gemini._decode import GeminiDecoder, GeminiJSONDecoder
from lluminary.providers.gemini._errors import map_error
from lluminary.providers.gemini._provider import Gemini
from lluminary.providers.gemini._request import encode_body

__all__ = ["Gemini", "GeminiDecoder", "GeminiJSONDecoder", "encode_body", "map_error"]
