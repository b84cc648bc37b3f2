"""The Google Gemini provider: ``gemini:MODEL``, over ``streamGenerateContent?alt=sse``.

The key travels only in the ``x-goog-api-key`` header. Google also accepts it as
a ``?key=`` query parameter, but URLs end up in exception messages, proxy logs
and tracing spans, so we never put it there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from urllib.parse import quote

import msgspec

from lluminary.errors import MissingKeyError
from lluminary.events import ChatRequest, Error
from lluminary.providers._base import HttpProvider
from lluminary.providers._decoder import Decoder
from lluminary.providers._http import HttpRequest
from lluminary.providers.gemini._decode import GeminiDecoder
from lluminary.providers.gemini._errors import map_error
from lluminary.providers.gemini._request import encode_body

__all__ = ["Gemini"]

API_VERSION: Final = "v1beta"
#: Checked in this order; the Google SDKs read the same two variables.
KEY_ENVS: Final = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
_VERSIONS: Final = ("/v1beta", "/v1", "/v1alpha")


class Gemini(HttpProvider):
    """``base_url`` is the bare origin; we append ``/v1beta/models/{model}:streamGenerateContent?alt=sse``.

    A base URL that already ends in an API version (``…/v1beta``) is used as is,
    since that is an easy mistake to make and its meaning is clear.
    """

    name = "gemini"
    default_base_url = "https://generativelanguage.googleapis.com"
    key_env = KEY_ENVS[0]

    @classmethod
    def from_env(cls, *, api_key: str | None, base_url: str | None, env: Mapping[str, str]) -> Gemini:
        key = api_key or next((env[name] for name in KEY_ENVS if env.get(name)), None)
        if not key:
            raise MissingKeyError(
                "gemini needs an API key: set GEMINI_API_KEY (or GOOGLE_API_KEY) "
                "or pass api_key (--api-key on the command line)"
            )
        return cls(api_key=key, base_url=base_url)

    def url(self, model: str) -> str:
        """The streaming endpoint for ``model`` (``gemini-2.0-flash``, ``models/…`` or ``tunedModels/…``)."""
        resource = model if "/" in model else f"models/{model}"
        root = self.base_url if self.base_url.endswith(_VERSIONS) else f"{self.base_url}/{API_VERSION}"
        return f"{root}/{quote(resource, safe='/')}:streamGenerateContent?alt=sse"

    def build_request(self, request: ChatRequest, model: str) -> HttpRequest:
        headers = {"content-type": "application/json", "accept": "text/event-stream", **self.extra_headers}
        if self.api_key:
            headers["x-goog-api-key"] = self.api_key.get()
        return HttpRequest("POST", self.url(model), headers, msgspec.json.encode(encode_body(request)))

    def decoder(self, request: ChatRequest, model: str) -> Decoder:
        return GeminiDecoder(model=model, input_estimate=self.input_estimate(request), secrets=self.secrets)

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> Error:
        return map_error(self.name, status, headers, body, self.secrets)
