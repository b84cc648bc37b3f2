"""The Anthropic Messages provider: ``anthropic:MODEL``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import msgspec

from lluminary.events import ChatRequest, Error
from lluminary.providers._base import HttpProvider
from lluminary.providers._decoder import Decoder
from lluminary.providers._http import HttpRequest
from lluminary.providers.anthropic._decode import AnthropicDecoder
from lluminary.providers.anthropic._errors import map_error
from lluminary.providers.anthropic._request import encode_body

__all__ = ["Anthropic"]

API_VERSION: Final = "2023-06-01"


class Anthropic(HttpProvider):
    """``base_url`` is the bare origin; we append ``/v1/messages``."""

    name = "anthropic"
    default_base_url = "https://api.anthropic.com"
    key_env = "ANTHROPIC_API_KEY"

    def build_request(self, request: ChatRequest, model: str) -> HttpRequest:
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream",
            "anthropic-version": API_VERSION,
            **self.extra_headers,
        }
        if self.api_key:
            headers["x-api-key"] = self.api_key.get()
        body = encode_body(request, model)
        return HttpRequest("POST", f"{self.base_url}/v1/messages", headers, msgspec.json.encode(body))

    def decoder(self, request: ChatRequest, model: str) -> Decoder:
        return AnthropicDecoder(model=model, input_estimate=self.input_estimate(request), secrets=self.secrets)

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> Error:
        return map_error(self.name, status, headers, body, self.secrets)
