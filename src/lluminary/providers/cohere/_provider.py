"""The Cohere v2 Chat provider: ``cohere:MODEL``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import msgspec

from lluminary.errors import MissingKeyError
from lluminary.events import ChatRequest, Error
from lluminary.providers._base import HttpProvider
from lluminary.providers._decoder import Decoder
from lluminary.providers._http import HttpRequest
from lluminary.providers.cohere._decode import CohereDecoder
from lluminary.providers.cohere._errors import map_error
from lluminary.providers.cohere._request import encode_body

__all__ = ["Cohere"]

#: The official SDK reads ``CO_API_KEY``; many tools (LangChain, Haystack) use ``COHERE_API_KEY``.
KEY_ENVS: Final = ("CO_API_KEY", "COHERE_API_KEY")


class Cohere(HttpProvider):
    """``base_url`` is the bare origin, as in Cohere's SDK; we append ``/v2/chat``."""

    name = "cohere"
    default_base_url = "https://api.cohere.com"
    key_env = "CO_API_KEY"

    @classmethod
    def from_env(cls, *, api_key: str | None, base_url: str | None, env: Mapping[str, str]) -> Cohere:
        key = api_key or next((env[k] for k in KEY_ENVS if env.get(k)), None)
        if not key:
            raise MissingKeyError(
                "cohere needs an API key: set CO_API_KEY (or COHERE_API_KEY) or pass api_key "
                "(--api-key on the command line)"
            )
        return cls(api_key=key, base_url=base_url)

    def build_request(self, request: ChatRequest, model: str) -> HttpRequest:
        headers = {"content-type": "application/json", "accept": "text/event-stream", **self.extra_headers}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key.get()}"
        body = encode_body(request, model)
        return HttpRequest("POST", f"{self.base_url}/v2/chat", headers, msgspec.json.encode(body))

    def decoder(self, request: ChatRequest, model: str) -> Decoder:
        return CohereDecoder(model=model, input_estimate=self.input_estimate(request), secrets=self.secrets)

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> Error:
        return map_error(self.name, status, headers, body, self.secrets)
