"""What every HTTP provider is: an encoder, a decoder factory and an error mapper.

:class:`HttpProvider` holds a provider's configuration (its key, base URL and
extra headers) and runs the one generic streaming loop over a transport. A
provider package supplies only the three pure parts. The key lives in a
:class:`Secret`, whose ``repr`` and ``str`` never show it, and it is only ever
sent to the base URL it was configured with.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import aclosing
from types import CodeType
from typing import Any, ClassVar, TypeVar

from lluminary.events import ChatRequest, Error, Event
from lluminary.providers._decoder import Decoder
from lluminary.providers._errors import error_event, error_from_http
from lluminary.providers._http import MAX_ERROR_BODY, HttpRequest, Transport, TransportError

__all__ = ["HttpProvider", "Provider", "Secret", "is_guarded", "keeps_invariants"]

F = TypeVar("F", bound=Callable[..., Any])


class Secret:
    """A credential. Printing, logging or formatting it shows ``'***'``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> str | tuple[object, ...]:  # pragma: no cover - refuse to be pickled
        raise TypeError("Secret values cannot be pickled")


class Provider:
    """Anything the engine can send a request to."""

    name: ClassVar[str] = "unknown"

    def stream(self, request: ChatRequest, model: str, transport: Transport) -> AsyncIterator[Event]:
        raise NotImplementedError

    def input_estimate(self, request: ChatRequest) -> int:
        """Our estimate of the input tokens, used when the provider reports no usage."""
        from lluminary.providers._tokens import estimate_request_tokens

        return estimate_request_tokens(request)


class HttpProvider(Provider):
    """A provider reached over HTTP. Subclasses implement the three pure parts."""

    default_base_url: ClassVar[str] = ""
    key_env: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        api_key: str | Secret | None = None,
        base_url: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if isinstance(api_key, str):
            api_key = Secret(api_key) if api_key else None
        self.api_key: Secret | None = api_key
        self.base_url: str = (base_url or self.default_base_url).rstrip("/")
        self.extra_headers: dict[str, str] = dict(headers or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={'***' if self.api_key else None})"

    def requires_key(self) -> bool:
        """Whether a request without a key is a configuration mistake."""
        return True

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.api_key.get(),) if self.api_key else ()

    # -- the three pure parts ---------------------------------------------------------

    def build_request(self, request: ChatRequest, model: str) -> HttpRequest:
        raise NotImplementedError

    def decoder(self, request: ChatRequest, model: str) -> Decoder:
        raise NotImplementedError

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> Error:
        return error_from_http(self.name, status, headers, body, secrets=self.secrets)

    # -- the loop ---------------------------------------------------------------------

    async def stream(self, request: ChatRequest, model: str, transport: Transport) -> AsyncIterator[Event]:
        """The one streaming loop: exactly one terminal event, and the response released before it.

        The batch that holds the terminal event goes out after the response is closed,
        so a consumer that stops at ``finish`` (or ``error``) holds no connection, and
        nothing comes after it. :class:`~lluminary.engine.EventStream` relies on both
        to hand this generator to the consumer without a guard (see ``is_guarded``).
        """
        http = self.build_request(request, model)
        decoder = self.decoder(request, model)
        try:
            async with transport.open(http) as resp:
                status = resp.status
                if status < 200 or status >= 300:
                    events: list[Event] = [self.map_error(status, resp.headers, await resp.read(MAX_ERROR_BODY))]
                else:
                    feed = decoder.feed
                    # aclosing: leaving early (after the terminal event, or on cancellation)
                    # closes the chunk iterator here and now, instead of leaving it to the
                    # loop's async-generator finalizer, which would cost a task per stream.
                    async with aclosing(resp.iter_chunks()) as chunks:
                        async for chunk in chunks:
                            events = feed(chunk)
                            if events:
                                if decoder.done:
                                    break
                                for event in events:
                                    yield event
                        else:
                            events = decoder.close()
        except TransportError as exc:
            events = decoder.interrupt(error_event(exc.code, exc.message, provider=self.name, secrets=self.secrets))
        for event in events:
            yield event


def is_guarded(stream: AsyncIterator[Event]) -> bool:
    """Whether ``stream`` keeps the stream invariants on its own, so that nothing need guard it.

    True for the generators of :meth:`HttpProvider.stream` and of the handlers
    marked with :func:`keeps_invariants`: an async generator's ``ag_code`` is its
    function's code, shared by every call (and by every closure made from it).
    """
    return getattr(stream, "ag_code", None) in _GUARDED


def keeps_invariants(fn: F) -> F:
    """Mark an async generator function whose every stream keeps the invariants, whatever it reads.

    That is: it sends exactly one terminal event and nothing after it, turns a
    source that ends without one into a ``protocol`` error, and has closed what it
    reads from, its own cleanup done, before it sends the terminal event. The
    engine then hands its streams to the consumer without a guard. Internal: a
    mark on a function that breaks any of this would break the consumer's stream.
    """
    _GUARDED.add(fn.__code__)
    return fn


_GUARDED: set[CodeType] = {HttpProvider.stream.__code__}
