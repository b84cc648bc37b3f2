"""Ollama's native API (``/api/chat``), streamed as NDJSON."""

from lluminary.providers.ollama._decode import OllamaDecoder
from lluminary.providers.ollama._provider import Ollama, normalize_host
from lluminary.providers.ollama._request import encode_body

__all__ = ["Ollama", "OllamaDecoder", "encode_body", "normalize_host"]
