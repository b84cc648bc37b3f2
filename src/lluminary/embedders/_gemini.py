"""Gemini embeddings: ``POST {base_url}/v1beta/models/{model}:batchEmbedContents``.

Request ``{"requests": [{"model": "models/{model}", "content": {"parts":
[{"text": …}]}, "taskType": …, "outputDimensionality": …}]}``, one entry per
text; response ``{"embeddings": [{"values": [...]}]}`` in request order. The key
goes in the ``x-goog-api-key`` header, never in the URL (URLs end up in logs).
``task_type`` defaults to ``SEMANTIC_SIMILARITY``, what a semantic cache compares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import quote

import msgspec

from lluminary.embedders._http import HttpEmbedder
from lluminary.events import Error
from lluminary.providers import HttpRequest

__all__ = ["GeminiEmbedder"]


class _Embedding(msgspec.Struct):
    values: list[float]


class _Response(msgspec.Struct):
    embeddings: list[_Embedding]


_decode = msgspec.json.Decoder(_Response).decode


class GeminiEmbedder(HttpEmbedder):
    provider = "gemini"
    default_base_url = "https://generativelanguage.googleapis.com"
    key_envs = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    known_dimensions: ClassVar[Mapping[str, int]] = {
        "gemini-embedding-001": 3072,
        "text-embedding-004": 768,
        "embedding-001": 768,
    }
    max_batch = 100

    def __init__(self, model: str, *, task_type: str | None = "SEMANTIC_SIMILARITY", **kwargs: Any) -> None:
        super().__init__(model.removeprefix("models/"), **kwargs)
        self.task_type = task_type

    def build(self, texts: Sequence[str]) -> HttpRequest:
        name = f"models/{self.model}"
        requests = []
        for text in texts:
            entry: dict[str, Any] = {"model": name, "content": {"parts": [{"text": text}]}}
            if self.task_type:
                entry["taskType"] = self.task_type
            if self.requested_dimension is not None:
                entry["outputDimensionality"] = self.requested_dimension
            requests.append(entry)
        headers = self.json_headers()
        if self.api_key:
            headers["x-goog-api-key"] = self.api_key.get()
        url = f"{self.base_url}/v1beta/models/{quote(self.model, safe='-._~')}:batchEmbedContents"
        return HttpRequest("POST", url, headers, self.encode({"requests": requests}))

    def parse(self, body: bytes) -> list[list[float]]:
        return [e.values for e in _decode(body).embeddings]

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> Error:
        from lluminary.providers.gemini import map_error  # the chat provider loads only when used

        return map_error(self.provider, status, headers, body, self.secrets)
