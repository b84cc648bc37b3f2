"""Amazon Titan text embeddings on Bedrock: ``POST {base_url}/model/{modelId}/invoke``.

Titan embeds one text per call: request ``{"inputText": …}`` (v2 adds
``"normalize": true`` and, for a shorter vector, ``"dimensions"``: 256 or 512);
response ``{"embedding": [...], "inputTextTokenCount": n}`` (v2 also
``embeddingsByType``). A batch is therefore one request per text, sent in turn.

Authentication follows the Bedrock chat provider, with the same helpers: SigV4
(``credentials=``, ``api_key="ACCESS_KEY_ID:SECRET[:SESSION_TOKEN]"``, or
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``) or a
Bedrock API key (``api_key`` without a colon, or ``AWS_BEARER_TOKEN_BEDROCK``).
The region comes from ``region=``, ``AWS_REGION`` or ``AWS_DEFAULT_REGION``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final
from urllib.parse import quote

import msgspec

from lluminary.embedders._http import HttpEmbedder
from lluminary.errors import MissingKeyError
from lluminary.events import Error
from lluminary.providers import HttpRequest, Secret

if TYPE_CHECKING:
    from lluminary.providers.bedrock import AwsCredentials

__all__ = ["BedrockEmbedder"]

# The path-segment characters left literal, as the chat provider does, so that
# aiohttp and httpx send exactly the path SigV4 signed.
_PCHAR_SAFE: Final = "-._~!$&'()*+,;=:@"


class _Response(msgspec.Struct):
    embedding: list[float]


_decode = msgspec.json.Decoder(_Response).decode


class BedrockEmbedder(HttpEmbedder):
    provider = "bedrock"
    key_required = False  # credentials are checked here, in __init__
    known_dimensions: ClassVar[Mapping[str, int]] = {
        "amazon.titan-embed-text-v2:0": 1024,
        "amazon.titan-embed-text-v1": 1536,
        "amazon.titan-embed-g1-text-02": 1536,
    }
    max_batch = 1

    def __init__(
        self,
        model: str = "amazon.titan-embed-text-v2:0",
        *,
        region: str | None = None,
        api_key: str | Secret | None = None,
        credentials: AwsCredentials | None = None,
        base_url: str | None = None,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        # The chat provider's helpers, loaded only when a Bedrock embedder is built.
        from lluminary.providers.bedrock import AwsCredentials

        environ = os.environ if env is None else env
        key = api_key.get() if isinstance(api_key, Secret) else api_key
        bearer: str | None = None
        if credentials is None and key:
            if ":" in key:
                credentials = AwsCredentials.parse(key)
            else:
                bearer = key
        if credentials is None and bearer is None:
            bearer = environ.get("AWS_BEARER_TOKEN_BEDROCK") or None
        if credentials is None and bearer is None:
            credentials = AwsCredentials.from_env(environ)
        if credentials is None and bearer is None:
            raise MissingKeyError(
                "bedrock embeddings need AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or AWS_BEARER_TOKEN_BEDROCK, or pass credentials= or api_key="
            )
        self.region = region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
        if self.region is None:
            raise MissingKeyError("bedrock embeddings need an AWS region: set AWS_REGION or pass region=")
        self.credentials = credentials
        default = f"https://bedrock-runtime.{self.region}.amazonaws.com"
        super().__init__(model, api_key=bearer, base_url=base_url or default, env={}, **kwargs)

    @property
    def secrets(self) -> tuple[str, ...]:
        found = super().secrets
        return found + self.credentials.secrets if self.credentials is not None else found

    def build(self, texts: Sequence[str]) -> HttpRequest:
        (text,) = texts
        body: dict[str, Any] = {"inputText": text}
        if "titan-embed-text-v2" in self.model:
            body["normalize"] = True
            if self.requested_dimension is not None:
                body["dimensions"] = self.requested_dimension
        data = self.encode(body)
        url = f"{self.base_url}/model/{quote(self.model, safe=_PCHAR_SAFE)}/invoke"
        headers = self.json_headers()
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key.get()}"
        elif self.credentials is not None and self.region is not None:
            from lluminary.providers.bedrock._signing import sign_headers

            headers = sign_headers("POST", url, headers, data, self.credentials, self.region)
        return HttpRequest("POST", url, headers, data)

    def parse(self, body: bytes) -> list[list[float]]:
        return [_decode(body).embedding]

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> Error:
        from lluminary.providers.bedrock._errors import map_error

        return map_error(self.provider, status, headers, body, self.secrets)
