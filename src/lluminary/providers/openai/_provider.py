"""The OpenAI Chat Completions provider, and the base of every compatible one."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from lluminary.events import ChatRequest, Error
from lluminary.providers._base import HttpProvider
from lluminary.providers._decoder import Decoder
from lluminary.providers._http import HttpRequest
from lluminary.providers.openai._decode import OpenAIChatDecoder
from lluminary.providers.openai._errors import map_error
from lluminary.providers.openai._request import encode_body

__all__ = ["OpenAIChat"]

OFFICIAL_BASE_URL = "https://api.openai.com/v1"


class OpenAIChat(HttpProvider):
    """``openai:MODEL``. ``base_url`` includes ``/v1``; we append ``/chat/completions``.

    Any OpenAI-compatible server (vLLM, llama.cpp's server, OpenRouter, LM Studio …)
    works by pointing ``base_url`` at it; a key is then optional.
    """

    name = "openai"
    default_base_url = OFFICIAL_BASE_URL
    key_env = "OPENAI_API_KEY"

    @property
    def official(self) -> bool:
        return self.base_url == OFFICIAL_BASE_URL

    def requires_key(self) -> bool:
        # A local compatible server usually has no key; the official API always does.
        return self.official

    def build_request(self, request: ChatRequest, model: str) -> HttpRequest:
        headers = {"content-type": "application/json", "accept": "text/event-stream", **self.extra_headers}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key.get()}"
        body = encode_body(request, model, official=self.official)
        return HttpRequest("POST", f"{self.base_url}/chat/completions", headers, msgspec.json.encode(body))

    def decoder(self, request: ChatRequest, model: str) -> Decoder:
        return OpenAIChatDecoder(
            provider=self.name, model=model, input_estimate=self.input_estimate(request), secrets=self.secrets
        )

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> Error:
        return map_error(self.name, status, headers, body, self.secrets)
