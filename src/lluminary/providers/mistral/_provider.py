"""The Mistral provider: ``mistral:MODEL``."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from lluminary.events import ChatRequest, Error
from lluminary.providers._base import HttpProvider
from lluminary.providers._decoder import Decoder
from lluminary.providers._http import HttpRequest
from lluminary.providers.mistral._decode import MistralDecoder
from lluminary.providers.mistral._errors import map_error
from lluminary.providers.mistral._request import encode_body

__all__ = ["Mistral"]


class Mistral(HttpProvider):
    """``base_url`` includes ``/v1``, as in Mistral's SDK; we append ``/chat/completions``."""

    name = "mistral"
    default_base_url = "https://api.mistral.ai/v1"
    key_env = "MISTRAL_API_KEY"

    def build_request(self, request: ChatRequest, model: str) -> HttpRequest:
        headers = {"content-type": "application/json", "accept": "text/event-stream", **self.extra_headers}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key.get()}"
        body = encode_body(request, model)
        return HttpRequest("POST", f"{self.base_url}/chat/completions", headers, msgspec.json.encode(body))

    def decoder(self, request: ChatRequest, model: str) -> Decoder:
        return MistralDecoder(model=model, input_estimate=self.input_estimate(request), secrets=self.secrets)

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> Error:
        return map_error(self.name, status, headers, body, self.secrets)
