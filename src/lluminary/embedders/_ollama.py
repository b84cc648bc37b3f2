"""Ollama embeddings: ``POST {base_url}/api/embed``.

Request ``{"model", "input": [texts], "truncate": true}`` plus ``dimensions``
for a shorter vector; response ``{"model", "embeddings": [[...]],
"total_duration", "load_duration", "prompt_eval_count"}``. The host comes from
``base_url``, else ``OLLAMA_HOST`` read as the Ollama CLI reads it, else
``http://127.0.0.1:11434``. A key is optional (for Ollama behind a proxy).
Model tags (``nomic-embed-text:latest``) do not change the native size.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import msgspec

from lluminary.embedders._http import HttpEmbedder
from lluminary.events import Error
from lluminary.providers import HttpRequest

__all__ = ["OllamaEmbedder"]


class _Response(msgspec.Struct):
    embeddings: list[list[float]]


_decode = msgspec.json.Decoder(_Response).decode


class OllamaEmbedder(HttpEmbedder):
    provider = "ollama"
    default_base_url = "http://127.0.0.1:11434"
    key_required = False
    known_dimensions: ClassVar[Mapping[str, int]] = {
        "nomic-embed-text": 768,
        "mxbai-embed-large": 1024,
        "all-minilm": 384,
        "snowflake-arctic-embed": 1024,
        "bge-m3": 1024,
        "embeddinggemma": 768,
    }
    max_batch = 64

    def __init__(
        self, model: str, *, base_url: str | None = None, env: Mapping[str, str] | None = None, **kwargs: Any
    ) -> None:
        from lluminary.providers.ollama import normalize_host  # the chat provider loads only when used

        host = base_url or (os.environ if env is None else env).get("OLLAMA_HOST")
        super().__init__(model, base_url=normalize_host(host) if host else None, env=env, **kwargs)

    @classmethod
    def native_dimension(cls, model: str) -> int | None:
        return cls.known_dimensions.get(model.split(":", 1)[0])

    def build(self, texts: Sequence[str]) -> HttpRequest:
        body: dict[str, Any] = {"model": self.model, "input": list(texts), "truncate": True}
        if self.requested_dimension is not None:
            body["dimensions"] = self.requested_dimension
        headers = self.json_headers()
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key.get()}"
        return HttpRequest("POST", f"{self.base_url}/api/embed", headers, self.encode(body))

    def parse(self, body: bytes) -> list[list[float]]:
        return _decode(body).embeddings

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> Error:
        from lluminary.providers.ollama._errors import map_error

        return map_error(self.provider, status, headers, body, self.secrets)
