"""Embedders by name: ``"provider:model"``, as chat models are named, or ``"local"``.

``create_embedder("openai:text-embedding-3-small")``, ``create_embedder("local")``.
Keys, hosts and regions come from the same environment variables as the chat
providers unless given as keyword arguments, which are passed on unchanged.
"""

from __future__ import annotations

from typing import Any, Final

from lluminary.embedders._bedrock import BedrockEmbedder
from lluminary.embedders._cohere import CohereEmbedder
from lluminary.embedders._gemini import GeminiEmbedder
from lluminary.embedders._http import HttpEmbedder
from lluminary.embedders._local import LocalEmbedder
from lluminary.embedders._ollama import OllamaEmbedder
from lluminary.embedders._openai import MistralEmbedder, OpenAIEmbedder
from lluminary.embedders._protocol import Embedder
from lluminary.errors import UnknownModelError, UnknownProviderError

__all__ = ["EMBEDDERS", "create_embedder"]

EMBEDDERS: Final[dict[str, type[HttpEmbedder]]] = {
    "openai": OpenAIEmbedder,
    "gemini": GeminiEmbedder,
    "cohere": CohereEmbedder,
    "mistral": MistralEmbedder,
    "bedrock": BedrockEmbedder,
    "ollama": OllamaEmbedder,
}


def create_embedder(name: str, **options: Any) -> Embedder:
    """The embedder ``name`` names; unknown providers and empty model ids raise :class:`ConfigError`."""
    provider, _, model = name.partition(":")
    if provider == "local":
        if model and model != "all-MiniLM-L6-v2":
            raise UnknownModelError(f"the local embedder runs all-MiniLM-L6-v2 only, not {model!r}")
        return LocalEmbedder(**options)
    cls = EMBEDDERS.get(provider)
    if cls is None:
        known = ", ".join(["local", *sorted(EMBEDDERS)])
        raise UnknownProviderError(f"no embedder for {provider!r}; known: {known}")
    if not model:
        raise UnknownModelError(f"{name!r} names no embedding model after the provider")
    return cls(model, **options)
