"""OpenAI and Mistral embeddings: ``POST {base_url}/embeddings``, the same shape for both.

Request ``{"model", "input": [texts], "encoding_format": "float"}`` plus
``dimensions`` (OpenAI, text-embedding-3 models) or ``output_dimension``
(Mistral) when a shorter vector is asked for. Response ``{"object": "list",
"data": [{"object": "embedding", "index": i, "embedding": [...]}], "usage": …}``;
vectors are put in ``index`` order, which the API does not promise to keep.
As for chat, ``base_url`` includes ``/v1``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import msgspec

from lluminary.embedders._http import HttpEmbedder
from lluminary.events import Error
from lluminary.providers import HttpRequest

__all__ = ["MistralEmbedder", "OpenAIEmbedder"]


class _Item(msgspec.Struct):
    embedding: list[float]
    index: int = 0


class _Response(msgspec.Struct):
    data: list[_Item]


_decode = msgspec.json.Decoder(_Response).decode


class OpenAIEmbedder(HttpEmbedder):
    provider = "openai"
    default_base_url = "https://api.openai.com/v1"
    key_envs = ("OPENAI_API_KEY",)
    known_dimensions: ClassVar[Mapping[str, int]] = {
        "text-embedding-3-small": 1536,
        "text-embedding-3-large": 3072,
        "text-embedding-ada-002": 1536,
    }
    max_batch = 2048
    dimension_field: ClassVar[str] = "dimensions"

    def build(self, texts: Sequence[str]) -> HttpRequest:
        body: dict[str, Any] = {"model": self.model, "input": list(texts), "encoding_format": "float"}
        if self.requested_dimension is not None:
            body[self.dimension_field] = self.requested_dimension
        headers = self.json_headers()
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key.get()}"
        return HttpRequest("POST", f"{self.base_url}/embeddings", headers, self.encode(body))

    def parse(self, body: bytes) -> list[list[float]]:
        items = sorted(_decode(body).data, key=lambda item: item.index)
        return [item.embedding for item in items]

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> Error:
        from lluminary.providers.openai._errors import map_error  # the chat provider loads only when used

        return map_error(self.provider, status, headers, body, self.secrets)


class MistralEmbedder(OpenAIEmbedder):
    provider = "mistral"
    default_base_url = "https://api.mistral.ai/v1"
    key_envs = ("MISTRAL_API_KEY",)
    known_dimensions: ClassVar[Mapping[str, int]] = {"mistral-embed": 1024, "codestral-embed": 1536}
    max_batch = 128
    dimension_field = "output_dimension"

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> Error:
        from lluminary.providers.mistral._errors import map_error

        return map_error(self.provider, status, headers, body, self.secrets)
