"""The engine: providers resolved by name, operators folded around them.

``Engine.stream()`` returns an :class:`EventStream`; ``Engine.complete()``
assembles the same events into a :class:`Response`. The engine owns the default
transport (one aiohttp session shared by all streams) unless one is handed in,
and closes it in ``aclose()`` / ``async with``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any

from lluminary.engine._operator import Handler, Operator, compose
from lluminary.engine._stream import EventStream
from lluminary.errors import ConfigError, MissingKeyError, UnknownModelError
from lluminary.events import ChatRequest, ErrorCode, Event, Message, Response
from lluminary.providers._base import Provider
from lluminary.providers._errors import error_event
from lluminary.providers._http import AiohttpTransport, Transport
from lluminary.providers._registry import create_provider, parse_model

__all__ = ["Engine"]

#: The model used when none is given and ``LLUMINARY_MODEL`` is unset: in-process, no key, no network.
DEFAULT_MODEL = "local:"


class Engine:
    """Streams chat requests to any provider through a pipeline of operators.

    ``providers`` maps provider names to configured instances; any other provider
    is built on first use from its environment variables. ``model`` is the default
    model for requests given as plain text (else ``LLUMINARY_MODEL``, else the
    local model).
    """

    def __init__(
        self,
        operators: Sequence[Operator] = (),
        *,
        model: str | None = None,
        providers: Mapping[str, Provider] | None = None,
        transport: Transport | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._env = os.environ if env is None else env
        self.model = model or self._env.get("LLUMINARY_MODEL") or DEFAULT_MODEL
        self._providers: dict[str, Provider] = dict(providers or {})
        self._transport = transport if transport is not None else AiohttpTransport()
        self._owns_transport = transport is None
        self._operators = list(operators)
        self._handler: Handler = compose(self._dispatch, self._operators)

    @property
    def transport(self) -> Transport:
        return self._transport

    @property
    def operators(self) -> list[Operator]:
        return list(self._operators)

    def provider(self, name: str) -> Provider:
        """The provider called ``name``, built from the environment on first use."""
        provider = self._providers.get(name)
        if provider is None:
            provider = create_provider(name, env=self._env)
            self._providers[name] = provider
        return provider

    def request(self, prompt: str | ChatRequest, **fields: Any) -> ChatRequest:
        """A :class:`ChatRequest` from text (or a request with ``fields`` replaced)."""
        if isinstance(prompt, ChatRequest):
            if not fields:
                return prompt
            import msgspec

            return msgspec.structs.replace(prompt, **fields)
        fields.setdefault("model", self.model)
        return ChatRequest(messages=[Message.user(prompt)], **fields)

    def stream(self, prompt: str | ChatRequest, /, **fields: Any) -> EventStream:
        """Start streaming. Configuration mistakes (unknown provider, missing key) raise here."""
        request = self.request(prompt, **fields)
        name, _ = parse_model(request.model)
        self.provider(name)
        return EventStream(self._handler(request), provider=name)

    async def complete(self, prompt: str | ChatRequest, /, **fields: Any) -> Response:
        """Run a request to the end. A stream that ends in ``error`` raises :class:`StreamError`."""
        return await self.stream(prompt, **fields).response()

    def _dispatch(self, request: ChatRequest) -> AsyncIterator[Event]:
        """The innermost handler: resolve the provider and return its stream.

        Operators such as Fallback may change the model, so resolution happens per
        call; a configuration problem here becomes an ``error`` event, not an exception.
        It returns the provider's iterator itself, adding no layer to the hot path.
        """
        try:
            name, model = parse_model(request.model)
            provider = self.provider(name)
        except ConfigError as exc:
            if isinstance(exc, MissingKeyError):
                code: ErrorCode = "auth"
            elif isinstance(exc, UnknownModelError):
                code = "not_found"
            else:
                code = "invalid_request"
            return _single(error_event(code, str(exc), provider=None, retryable=False))
        return provider.stream(request, model, self._transport)

    async def aclose(self) -> None:
        if self._owns_transport:
            await self._transport.aclose()
        for provider in self._providers.values():
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


async def _single(event: Event) -> AsyncIterator[Event]:
    yield event
