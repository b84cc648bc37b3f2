"""The only module that does network I/O: transports, and the loop that feeds decoders.

A transport opens one HTTP request and hands back the status, headers and a
chunk iterator. aiohttp is the default because it is the cheapest per chunk;
httpx is equally supported, and a caller can pass their own session or client.
Each transport translates its library's exceptions into :class:`TransportError`
here, in one place, so nothing above this module knows aiohttp or httpx exist.

Redirects are never followed: a redirect would carry the credential headers to
a URL the key was not configured for.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    import asyncio

    import aiohttp
    import aiohttp.client_proto
    import httpx

__all__ = [
    "AiohttpTransport",
    "HttpRequest",
    "HttpResponse",
    "HttpxTransport",
    "Transport",
    "TransportError",
]

#: Error bodies are read up to this size; the rest is not worth the memory.
MAX_ERROR_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """An encoded request. ``repr`` leaves out the headers, where credentials live."""

    method: str
    url: str
    headers: dict[str, str] = field(repr=False)
    body: bytes = field(repr=False, default=b"")


class TransportError(Exception):
    """The request failed below HTTP: no connection, a reset, a cut body or a timeout."""

    def __init__(self, code: Literal["connection", "timeout"], message: str) -> None:
        super().__init__(message)
        self.code: Literal["connection", "timeout"] = code
        self.message = message


class HttpResponse(Protocol):
    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def iter_chunks(self) -> AsyncGenerator[bytes, None]: ...

    async def read(self, limit: int = MAX_ERROR_BODY) -> bytes: ...


class Transport(Protocol):
    def open(self, request: HttpRequest) -> AbstractAsyncContextManager[HttpResponse]: ...

    async def aclose(self) -> None: ...


# -- aiohttp ---------------------------------------------------------------------------


class _AiohttpResponse:
    __slots__ = ("_resp",)

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp

    @property
    def status(self) -> int:
        return self._resp.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._resp.headers

    async def iter_chunks(self) -> AsyncGenerator[bytes, None]:
        import aiohttp

        resp = self._resp
        content = resp.content
        watch = _ReadWatch.take_over(resp)
        try:
            if watch is None:
                while True:
                    chunk = await content.readany()
                    if not chunk:
                        return
                    yield chunk
            else:
                clock = watch.clock
                while True:
                    watch.since = clock()
                    chunk = await content.readany()
                    watch.since = None
                    if not chunk:
                        return
                    yield chunk
        except (aiohttp.ClientError, OSError) as exc:
            raise _translate_aiohttp(exc) from None
        except TimeoutError:
            raise TransportError("timeout", "timed out reading the response") from None
        finally:
            if watch is not None:
                watch.close()

    async def read(self, limit: int = MAX_ERROR_BODY) -> bytes:
        import aiohttp

        try:
            return await self._resp.content.read(limit)
        except (aiohttp.ClientError, OSError) as exc:
            raise _translate_aiohttp(exc) from None
        except TimeoutError:
            raise TransportError("timeout", "timed out reading the response") from None


class _ReadWatch:
    """aiohttp's ``sock_read`` timeout for a streamed body, kept by one lazy timer.

    aiohttp cancels and schedules a loop timer on every read from the socket, about
    2 µs each: with one event per read, as the real APIs write, that was a tenth of
    the cost of a streamed event. Here the timer stays put while data flows and is
    moved on only when it fires: it ends the body only if the read in progress has
    waited the full timeout, and time the consumer spends between reads does not
    count. It ends it the way aiohttp does, so the same ``ServerTimeoutError``
    reaches the consumer as a ``timeout`` error.
    """

    __slots__ = ("_content", "_handle", "_loop", "_protocol", "_timeout", "clock", "since")

    def __init__(
        self, resp: aiohttp.ClientResponse, protocol: aiohttp.client_proto.ResponseHandler, timeout: float
    ) -> None:
        # Imported here: ``import lluminary`` does not load asyncio (a program that
        # streams has it already; one that only builds requests need not pay for it).
        import asyncio

        self._loop = loop = asyncio.get_running_loop()
        self.clock = loop.time
        self._content = resp.content
        self._protocol = protocol
        self._timeout = timeout
        self.since: float | None = None  # when the read in progress began
        self._handle: asyncio.TimerHandle | None = loop.call_at(loop.time() + timeout, self._fire)

    @classmethod
    def take_over(cls, resp: aiohttp.ClientResponse) -> _ReadWatch | None:
        """Switch the connection's own read timer off and watch the body instead, if it has one."""
        connection = resp.connection
        protocol = connection.protocol if connection is not None else None
        if protocol is None or not protocol.read_timeout:
            return None
        watch = cls(resp, protocol, protocol.read_timeout)
        # aiohttp drops its pending timer at the next read; headers have been read already.
        protocol.read_timeout = None
        return watch

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        since = self.since
        now = self._loop.time()
        if since is not None and now - since >= self._timeout:
            import aiohttp

            self._handle = None
            exc = aiohttp.ServerTimeoutError("Timeout on reading data from socket")
            self._protocol.set_exception(exc)
            self._content.set_exception(exc)
            return
        self._handle = self._loop.call_at((now if since is None else since) + self._timeout, self._fire)


class AiohttpTransport:
    """The default transport. Owns its session unless one is passed in.

    ``read_buffer`` is what one connection may hold of a body its consumer has not
    read yet (aiohttp stops reading the socket at twice that, and the rest waits in
    the kernel): streamed events are small, and at thousands of streams a consumer
    that falls behind should not cost 128 KiB of process memory each, aiohttp's
    default. It applies to the session this transport makes, not to one passed in.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float | None = 300.0,
        limit: int = 1000,
        read_buffer: int = 16 * 1024,
    ) -> None:
        if read_buffer < 1024:
            raise ValueError("read_buffer must be at least 1024 bytes")
        self._session = session
        self._owned = session is None
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._limit = limit
        self._read_buffer = read_buffer

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            import aiohttp

            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self._connect_timeout, sock_read=self._read_timeout
                ),
                auto_decompress=True,
                read_bufsize=self._read_buffer,
            )
            self._owned = True
        return self._session

    @asynccontextmanager
    async def open(self, request: HttpRequest) -> AsyncIterator[HttpResponse]:
        import aiohttp

        try:
            resp = await self.session.request(
                request.method, request.url, data=request.body, headers=request.headers, allow_redirects=False
            )
        except (aiohttp.ClientError, OSError) as exc:
            raise _translate_aiohttp(exc) from None
        except TimeoutError:
            raise TransportError("timeout", "timed out connecting") from None
        try:
            yield _AiohttpResponse(resp)
        finally:
            # Always release, also on cancellation. aiohttp returns the connection to
            # the pool only when the body was read to the end; a half-read one is closed.
            resp.release()

    async def aclose(self) -> None:
        if self._owned and self._session is not None:
            await self._session.close()
            self._session = None


def _translate_aiohttp(exc: BaseException) -> TransportError:
    import aiohttp

    if isinstance(exc, aiohttp.ServerTimeoutError):
        return TransportError("timeout", "timed out waiting for the server")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return TransportError("connection", "the response body was cut off")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return TransportError("connection", "could not connect to the server")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return TransportError("connection", "the server closed the connection")
    return TransportError("connection", f"connection failed ({type(exc).__name__})")


# -- httpx -----------------------------------------------------------------------------


class _HttpxResponse:
    __slots__ = ("_resp",)

    def __init__(self, resp: httpx.Response) -> None:
        self._resp = resp

    @property
    def status(self) -> int:
        return self._resp.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._resp.headers

    async def iter_chunks(self) -> AsyncGenerator[bytes, None]:
        import httpx

        try:
            async for chunk in self._resp.aiter_bytes():
                yield chunk
        except httpx.TimeoutException:
            raise TransportError("timeout", "timed out reading the response") from None
        except httpx.HTTPError as exc:
            raise TransportError("connection", _httpx_message(exc)) from None

    async def read(self, limit: int = MAX_ERROR_BODY) -> bytes:
        import httpx

        out = bytearray()
        try:
            async for chunk in self._resp.aiter_bytes():
                out += chunk
                if len(out) >= limit:
                    break
        except httpx.TimeoutException:
            raise TransportError("timeout", "timed out reading the response") from None
        except httpx.HTTPError as exc:
            raise TransportError("connection", _httpx_message(exc)) from None
        return bytes(out[:limit])


class HttpxTransport:
    """httpx as a transport. Owns its client unless one is passed in."""

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float | None = 300.0,
    ) -> None:
        self._client = client
        self._owned = client is None
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self._read_timeout, connect=self._connect_timeout),
                follow_redirects=False,
            )
            self._owned = True
        return self._client

    @asynccontextmanager
    async def open(self, request: HttpRequest) -> AsyncIterator[HttpResponse]:
        import httpx

        client = self.client
        req = client.build_request(request.method, request.url, content=request.body, headers=request.headers)
        try:
            resp = await client.send(req, stream=True, follow_redirects=False)
        except httpx.TimeoutException:
            raise TransportError("timeout", "timed out connecting") from None
        except httpx.HTTPError as exc:
            raise TransportError("connection", _httpx_message(exc)) from None
        try:
            yield _HttpxResponse(resp)
        finally:
            await resp.aclose()

    async def aclose(self) -> None:
        if self._owned and self._client is not None:
            await self._client.aclose()
            self._client = None


def _httpx_message(exc: BaseException) -> str:
    # httpx messages can contain the URL; URLs never carry keys here (see the
    # providers), but keep the text generic anyway.
    return f"connection failed ({type(exc).__name__})"
