"""What every API embedder shares: configuration, batching, the HTTP call and error mapping.

A subclass supplies three pure parts, as a chat provider does: ``build`` (texts →
:class:`HttpRequest`), ``parse`` (response body → vectors) and ``map_error``
(status, headers, body → typed ``error``), reusing the chat provider's mapper so
an embedding 429 looks exactly like a chat 429. The one loop here sends each
batch over a :class:`~lluminary.providers.Transport` (an aiohttp session unless
one is handed in), reads the body up to a bound, and checks the answer: one
vector per text, each of ``dimension`` finite numbers. Anything else raises
:class:`EmbedderError`.

The key is held in a :class:`~lluminary.providers.Secret`, goes only to the
configured base URL (transports never follow redirects), and is scrubbed from
every message. ``dimension`` is the model's native size when we know the model,
else it must be given; an explicit size different from the native one is sent
to the API (OpenAI ``dimensions``, Gemini ``outputDimensionality`` …) for the
models that can shorten their vectors.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Final, Self

import msgspec

from lluminary.embedders._protocol import EmbedderError
from lluminary.errors import ConfigError, MissingKeyError
from lluminary.events import Error
from lluminary.providers import AiohttpTransport, HttpRequest, Secret, Transport, TransportError
from lluminary.providers._errors import error_event, error_from_http
from lluminary.providers._http import MAX_ERROR_BODY

__all__ = ["MAX_RESPONSE_BYTES", "HttpEmbedder"]

#: A response larger than this is refused: 2048 vectors of 3072 floats fit with room to spare.
MAX_RESPONSE_BYTES: Final = 128 * 1024 * 1024


class HttpEmbedder:
    """Base class of the API embedders. ``model`` is the provider's model id."""

    provider: ClassVar[str] = "http"
    default_base_url: ClassVar[str] = ""
    key_envs: ClassVar[tuple[str, ...]] = ()
    key_required: ClassVar[bool] = True
    #: Native vector sizes of the models we know.
    known_dimensions: ClassVar[Mapping[str, int]] = {}
    #: The most texts the API takes in one request.
    max_batch: ClassVar[int] = 96

    def __init__(
        self,
        model: str,
        *,
        api_key: str | Secret | None = None,
        base_url: str | None = None,
        dimension: int | None = None,
        headers: Mapping[str, str] | None = None,
        transport: Transport | None = None,
        batch_size: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        if not model:
            raise ConfigError(f"{self.provider} embedder needs a model id")
        key = api_key if api_key is not None else next((env[n] for n in self.key_envs if env.get(n)), None)
        if isinstance(key, str):
            key = Secret(key) if key else None
        self.api_key: Secret | None = key if key else None
        if self.api_key is None and self.key_required:
            names = " or ".join(self.key_envs) or "api_key"
            raise MissingKeyError(f"{self.provider} embeddings need an API key: set {names} or pass api_key")
        self.model = model
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        native = self.native_dimension(model)
        if dimension is None and native is None:
            raise ConfigError(f"the dimension of {self.provider} model {model!r} is not known: pass dimension=")
        if dimension is not None and dimension < 1:
            raise ValueError("dimension must be positive")
        self.dimension: int = dimension if dimension is not None else native  # type: ignore[assignment]
        #: The size to ask the API for, when it is not the model's own.
        self.requested_dimension: int | None = dimension if dimension is not None and dimension != native else None
        self.extra_headers = dict(headers or {})
        self.batch_size = min(batch_size or self.max_batch, self.max_batch)
        if self.batch_size < 1:
            raise ValueError("batch_size must be positive")
        self._transport = transport if transport is not None else AiohttpTransport()
        self._owns_transport = transport is None

    @classmethod
    def native_dimension(cls, model: str) -> int | None:
        """The size of ``model``'s vectors when we know it."""
        return cls.known_dimensions.get(model)

    def __repr__(self) -> str:
        key = "'***'" if self.api_key else None
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r}, api_key={key})"

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.api_key.get(),) if self.api_key else ()

    # -- the three pure parts ------------------------------------------------------------

    def build(self, texts: Sequence[str]) -> HttpRequest:
        raise NotImplementedError

    def parse(self, body: bytes) -> list[list[float]]:
        raise NotImplementedError

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> Error:
        return error_from_http(self.provider, status, headers, body, secrets=self.secrets)

    # -- the loop --------------------------------------------------------------------------

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        vectors: list[list[float]] = []
        for first in range(0, len(texts), self.batch_size):
            vectors.extend(await self.embed_batch(texts[first : first + self.batch_size]))
        return vectors

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        """One request for up to ``batch_size`` texts."""
        body = await self.send(self.build(texts))
        try:
            vectors = self.parse(body)
        except (msgspec.DecodeError, msgspec.ValidationError, KeyError, TypeError, ValueError) as exc:
            raise self.protocol_error(f"unexpected response body ({type(exc).__name__})") from None
        return self.check(vectors, len(texts))

    async def send(self, http: HttpRequest) -> bytes:
        try:
            async with self._transport.open(http) as resp:
                if not 200 <= resp.status < 300:
                    raise EmbedderError(self.map_error(resp.status, resp.headers, await resp.read(MAX_ERROR_BODY)))
                out = bytearray()
                async for chunk in resp.iter_chunks():
                    out += chunk
                    if len(out) > MAX_RESPONSE_BYTES:
                        raise self.protocol_error(f"response larger than {MAX_RESPONSE_BYTES} bytes")
                return bytes(out)
        except TransportError as exc:
            raise EmbedderError(
                error_event(exc.code, exc.message, provider=self.provider, secrets=self.secrets)
            ) from None

    def check(self, vectors: list[list[float]], expected: int) -> list[list[float]]:
        if len(vectors) != expected:
            raise self.protocol_error(f"{len(vectors)} vectors for {expected} texts")
        for vector in vectors:
            if len(vector) != self.dimension:
                raise self.protocol_error(f"a vector of {len(vector)} dimensions, expected {self.dimension}")
            if not all(math.isfinite(x) for x in vector):
                raise self.protocol_error("a vector with non-finite values")
        return vectors

    def protocol_error(self, message: str) -> EmbedderError:
        return EmbedderError.of("protocol", message, provider=self.provider)

    def json_headers(self, **more: str) -> dict[str, str]:
        return {"content-type": "application/json", "accept": "application/json", **self.extra_headers, **more}

    @staticmethod
    def encode(body: Any) -> bytes:
        return msgspec.json.encode(body)

    async def aclose(self) -> None:
        if self._owns_transport:
            await self._transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
