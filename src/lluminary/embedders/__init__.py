"""Embedders: text to vectors, for the semantic cache (and anything else that needs them).

:class:`LocalEmbedder` runs all-MiniLM-L6-v2 offline, no key and no network; the
API embedders call OpenAI, Gemini, Cohere, Mistral, Bedrock (Titan) and Ollama.
All follow the :class:`Embedder` protocol and raise :class:`EmbedderError`.
"""

from lluminary.embedders._bedrock import BedrockEmbedder
from lluminary.embedders._cohere import CohereEmbedder
from lluminary.embedders._gemini import GeminiEmbedder
from lluminary.embedders._http import HttpEmbedder
from lluminary.embedders._local import LocalEmbedder
from lluminary.embedders._ollama import OllamaEmbedder
from lluminary.embedders._openai import MistralEmbedder, OpenAIEmbedder
from lluminary.embedders._protocol import Embedder, EmbedderError
from lluminary.embedders._registry import EMBEDDERS, create_embedder

__all__ = [
    "EMBEDDERS",
    "BedrockEmbedder",
    "CohereEmbedder",
    "Embedder",
    "EmbedderError",
    "GeminiEmbedder",
    "HttpEmbedder",
    "LocalEmbedder",
    "MistralEmbedder",
    "OllamaEmbedder",
    "OpenAIEmbedder",
    "create_embedder",
]
