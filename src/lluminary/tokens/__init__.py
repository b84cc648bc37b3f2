"""Token counting: exact where we can be, a marked estimate where we cannot.

- :func:`count_tokens` counts offline: tiktoken for OpenAI models when its data
  is on disk (it is never downloaded), else four characters per token.
- :func:`count_tokens_remote` asks the provider's own count endpoint (Anthropic,
  Gemini, OpenAI, Cohere) over the engine's transport.

Every answer is a :class:`TokenCount` saying how it was counted and whether it is exact.
"""

from lluminary.tokens._count import ESTIMATE, TokenCount, count_tokens, count_with_encoding
from lluminary.tokens._remote import REMOTE_COUNTERS, TokenCountError, count_tokens_remote
from lluminary.tokens._tiktoken import ENCODINGS, cache_path, encoding_for_model, load_encoding

__all__ = [
    "ENCODINGS",
    "ESTIMATE",
    "REMOTE_COUNTERS",
    "TokenCount",
    "TokenCountError",
    "cache_path",
    "count_tokens",
    "count_tokens_remote",
    "count_with_encoding",
    "encoding_for_model",
    "load_encoding",
]
