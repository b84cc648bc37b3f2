"""The OpenAI Responses provider: ``openai-responses:MODEL``.

``base_url`` includes ``/v1``, as in the official SDK, and we append
``/responses``. The key comes from ``OPENAI_API_KEY`` and is sent as a Bearer
token. A compatible server (vLLM, Ollama's ``/v1``, a gateway) works by pointing
``base_url`` at it; a key is then optional.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import msgspec

from lluminary.events import ChatRequest, Error
from lluminary.providers._base import HttpProvider
from lluminary.providers._decoder import Decoder
from lluminary.providers._http import HttpRequest
from lluminary.providers.openai_responses._decode import OpenAIResponsesDecoder
from lluminary.providers.openai_responses._errors import map_error
from lluminary.providers.openai_responses._request import encode_body

__all__ = ["OFFICIAL_BASE_URL", "OpenAIResponses"]

OFFICIAL_BASE_URL: Final = "https://api.openai.com/v1"


class OpenAIResponses(HttpProvider):
    name = "openai-responses"
    default_base_url = OFFICIAL_BASE_URL
    key_env = "OPENAI_API_KEY"

    def requires_key(self) -> bool:
        return self.base_url == OFFICIAL_BASE_URL

    def build_request(self, request: ChatRequest, model: str) -> HttpRequest:
        headers = {"content-type": "application/json", "accept": "text/event-stream", **self.extra_headers}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key.get()}"
        body = encode_body(request, model)
        return HttpRequest("POST", f"{self.base_url}/responses", headers, msgspec.json.encode(body))

    def decoder(self, request: ChatRequest, model: str) -> Decoder:
        return OpenAIResponsesDecoder(model=model, input_estimate=self.input_estimate(request), secrets=self.secrets)

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> Error:
        return map_error(self.name, status, headers, body, self.secrets)
