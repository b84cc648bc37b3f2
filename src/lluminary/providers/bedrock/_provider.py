"""The AWS Bedrock provider: ``bedrock:MODEL_ID`` over ConverseStream (or Converse).

``base_url`` is the bare origin, ``https://bedrock-runtime.{region}.amazonaws.com``
by default; we append ``/model/{modelId}/converse-stream`` (``/converse`` when
built with ``streaming=False``).

Authentication, first match wins:

1. ``credentials=`` (an :class:`AwsCredentials` or a credential source) → SigV4;
2. ``api_key=``: ``"ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]"`` → SigV4, or a
   Bedrock API key (it has no colon) → ``Authorization: Bearer``;
3. ``AWS_BEARER_TOKEN_BEDROCK`` → Bedrock API key, as the AWS SDKs do;
4. ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN`` → SigV4;
5. botocore's credential chain (profiles, SSO, container and instance roles),
   only when reading the real process environment: a caller who hands in its own
   ``env`` mapping (a test, one tenant of a server) must not silently pick up the
   host's identity instead.

The region comes from ``region=``, ``AWS_REGION``, ``AWS_DEFAULT_REGION``, with the
chain the profile, or else the host of an AWS ``base_url``. Missing credentials or
region raise :class:`MissingKeyError` when the provider is built, before any request.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Mapping
from typing import Final
from urllib.parse import quote

import msgspec

from lluminary.errors import ConfigError, MissingKeyError
from lluminary.events import ChatRequest, Error, Event
from lluminary.providers._base import HttpProvider, Secret
from lluminary.providers._decoder import Decoder
from lluminary.providers._errors import error_event
from lluminary.providers._http import HttpRequest, Transport
from lluminary.providers.bedrock._converse import BedrockConverseDecoder
from lluminary.providers.bedrock._decode import BedrockDecoder
from lluminary.providers.bedrock._errors import map_error
from lluminary.providers.bedrock._request import encode_body
from lluminary.providers.bedrock._signing import AwsCredentials, CredentialSource, load_chain, sign_headers

__all__ = ["Bedrock", "model_path"]

EVENTSTREAM: Final = "application/vnd.amazon.eventstream"
_REGION: Final = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+-\d+$")
_URL_REGION: Final = re.compile(r"\.([a-z]{2}(?:-[a-z0-9]+)+-\d+)\.(?:vpce\.)?amazonaws\.com(?::\d+)?(?:/|$)")
# RFC 3986 path-segment characters that stay literal. aiohttp's URL library decodes
# any escape of these (":" above all, in every versioned model id), httpx keeps
# escapes as given; leaving them literal makes both send the same bytes, which is
# the path SigV4 signed. "/" and everything else are percent-encoded.
_PCHAR_SAFE: Final = "-._~!$&'()*+,;=:@"


def model_path(model: str, *, streaming: bool = True) -> str:
    """``/model/{modelId}/converse-stream``, with the id encoded as one path segment."""
    return f"/model/{quote(model, safe=_PCHAR_SAFE)}/{'converse-stream' if streaming else 'converse'}"


class Bedrock(HttpProvider):
    name = "bedrock"
    key_env = None

    def __init__(
        self,
        *,
        region: str | None = None,
        api_key: str | Secret | None = None,
        credentials: AwsCredentials | CredentialSource | None = None,
        base_url: str | None = None,
        headers: Mapping[str, str] | None = None,
        streaming: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        key = api_key.get() if isinstance(api_key, Secret) else api_key
        bearer: str | None = None
        chain_region: str | None = None
        if credentials is None and key:
            if ":" in key:
                credentials = AwsCredentials.parse(key)
            else:
                bearer = key
        if credentials is None and bearer is None:
            bearer = env.get("AWS_BEARER_TOKEN_BEDROCK") or None
        if credentials is None and bearer is None:
            credentials = AwsCredentials.from_env(env)
        if credentials is None and bearer is None and env is os.environ:
            credentials, chain_region = load_chain()
        if credentials is None and bearer is None:
            raise MissingKeyError(
                "bedrock needs AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus "
                "AWS_SESSION_TOKEN for temporary ones) or AWS_BEARER_TOKEN_BEDROCK, or pass "
                "api_key='ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]' (--api-key on the command line)"
            )
        region = region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or chain_region
        if region is None and base_url:
            # A regional or VPC endpoint names its region: bedrock-runtime.eu-west-1.amazonaws.com.
            found = _URL_REGION.search(base_url)
            region = found.group(1) if found else None
        if region is None and (bearer is None or not base_url):
            raise MissingKeyError("bedrock needs an AWS region: set AWS_REGION (e.g. us-east-1) or pass region=")
        if region is not None and not _REGION.match(region):
            raise ConfigError(f"{region!r} is not an AWS region name (e.g. us-east-1)")
        super().__init__(
            api_key=bearer,
            base_url=base_url or f"https://bedrock-runtime.{region}.amazonaws.com",
            headers=headers,
        )
        self.region = region
        self.streaming = streaming
        # A source is asked afresh per request; ``_frozen`` holds what the next signature uses.
        self._source: CredentialSource | None = None
        self._frozen: AwsCredentials | None = None
        if isinstance(credentials, AwsCredentials):
            self._frozen = credentials
        else:
            self._source = credentials

    @classmethod
    def from_env(cls, *, api_key: str | None, base_url: str | None, env: Mapping[str, str]) -> Bedrock:
        """What ``create_provider("bedrock", …)`` calls."""
        return cls(api_key=api_key, base_url=base_url, env=env)

    def __repr__(self) -> str:
        auth = "bearer" if self.api_key else "sigv4"
        return f"Bedrock(region={self.region!r}, base_url={self.base_url!r}, auth={auth!r})"

    @property
    def secrets(self) -> tuple[str, ...]:
        found = super().secrets
        if self._frozen is not None:
            found += self._frozen.secrets
        return found

    def stream(self, request: ChatRequest, model: str, transport: Transport) -> AsyncIterator[Event]:
        if self._source is None:
            return super().stream(request, model, transport)  # fixed credentials: no extra layer
        return self._stream_refreshed(request, model, transport)

    async def _stream_refreshed(self, request: ChatRequest, model: str, transport: Transport) -> AsyncIterator[Event]:
        """Freeze the source's credentials for this request, then stream as usual.

        A chain may refresh over the network (STS, SSO, instance metadata), so that
        runs off the event loop; a failure is an ``auth`` error event, not an exception.
        """
        import anyio

        source = self._source
        if source is None:  # pragma: no cover - stream() routes here only with a source
            return
        try:
            self._frozen = await anyio.to_thread.run_sync(source.get)
        except Exception as exc:  # noqa: BLE001 - botocore's refresh errors are many; all mean "cannot sign"
            yield error_event(
                "auth",
                f"could not load AWS credentials ({type(exc).__name__})",
                provider=self.name,
                retryable=False,
                secrets=self.secrets,
            )
            return
        events = super().stream(request, model, transport)
        try:  # a consumer that stops early must close the HTTP response now, not at GC
            async for event in events:
                yield event
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()

    def build_request(self, request: ChatRequest, model: str) -> HttpRequest:
        url = self.base_url + model_path(model, streaming=self.streaming)
        headers = {
            "content-type": "application/json",
            "accept": EVENTSTREAM if self.streaming else "application/json",
            **self.extra_headers,
        }
        body = msgspec.json.encode(encode_body(request))
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key.get()}"
        else:
            credentials = self._frozen
            if credentials is None and self._source is not None:
                # Called directly rather than through ``stream``, which freezes them first.
                credentials = self._frozen = self._source.get()
            if credentials is None or self.region is None:  # pragma: no cover - __init__ ensures both
                raise MissingKeyError("bedrock has no AWS credentials or region to sign with")
            headers = sign_headers("POST", url, headers, body, credentials, self.region)
        return HttpRequest("POST", url, headers, body)

    def decoder(self, request: ChatRequest, model: str) -> Decoder:
        kind = BedrockDecoder if self.streaming else BedrockConverseDecoder
        return kind(model=model, input_estimate=self.input_estimate(request), secrets=self.secrets)

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> Error:
        return map_error(self.name, status, headers, body, self.secrets)
