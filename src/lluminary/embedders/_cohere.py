"""Cohere embeddings: ``POST {base_url}/v2/embed``.

Request ``{"model", "texts": [...], "input_type", "embedding_types": ["float"]}``
plus ``output_dimension`` (embed-v4) for a shorter vector; response
``{"id", "embeddings": {"float": [[...]]}, "texts", "meta", "response_type":
"embeddings_by_type"}``. ``input_type`` is required by v3+ models. A cache
compares questions with questions, so both sides must use the same type; the
default is ``search_query``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import msgspec

from lluminary.embedders._http import HttpEmbedder
from lluminary.events import Error
from lluminary.providers import HttpRequest

__all__ = ["CohereEmbedder"]


class _ByType(msgspec.Struct):
    # Named ``float`` on the wire; a field called ``float`` would shadow the type in the annotation.
    floats: list[list[float]] = msgspec.field(name="float")


class _Response(msgspec.Struct):
    embeddings: _ByType


_decode = msgspec.json.Decoder(_Response).decode


class CohereEmbedder(HttpEmbedder):
    provider = "cohere"
    default_base_url = "https://api.cohere.com"
    key_envs = ("CO_API_KEY", "COHERE_API_KEY")
    known_dimensions: ClassVar[Mapping[str, int]] = {
        "embed-v4.0": 1536,
        "embed-english-v3.0": 1024,
        "embed-multilingual-v3.0": 1024,
        "embed-english-light-v3.0": 384,
        "embed-multilingual-light-v3.0": 384,
    }
    max_batch = 96

    def __init__(self, model: str, *, input_type: str = "search_query", **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.input_type = input_type

    def build(self, texts: Sequence[str]) -> HttpRequest:
        body: dict[str, Any] = {
            "model": self.model,
            "texts": list(texts),
            "input_type": self.input_type,
            "embedding_types": ["float"],
        }
        if self.requested_dimension is not None:
            body["output_dimension"] = self.requested_dimension
        headers = self.json_headers()
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key.get()}"
        return HttpRequest("POST", f"{self.base_url}/v2/embed", headers, self.encode(body))

    def parse(self, body: bytes) -> list[list[float]]:
        return _decode(body).embeddings.floats

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> Error:
        from lluminary.providers.cohere._errors import map_error  # the chat provider loads only when used

        return map_error(self.provider, status, headers, body, self.secrets)
