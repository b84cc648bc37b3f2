"""The two clients the streaming benchmark compares, reading the same bytes from the same server.

**floor**: the least work a correct Python client can do over aiohttp. One
``ClientSession``; the body read with ``content.readany()``; SSE events split on
``b"\\n\\n"``; the ``data:`` payload decoded with a module-level
``msgspec.json.Decoder`` into a Struct that declares only the fields read; the
text (or tool arguments) joined once at the end. It checks the end marker and the
usage count, as any real client must, and nothing else: no CR/LF normalisation,
no multi-line ``data``, no size limits, no error mapping, no typed events.

**lluminary**: ``Engine.stream`` with the provider built by ``create_provider``,
consumed as a user would (``async with`` and ``async for``), assembling the text
from ``TextDelta`` (or ``ToolArgsDelta``) events.

**lluminary-pipeline**: the same behind a typical operator stack (Tracing to an
in-memory exporter, Cost, a Cache that always misses, Retry, Timeout). It is not
in :data:`CLIENTS` (``bench_stream.py`` compares the bare engine); ``peers.py``
registers it with the other clients of ``bench_all.py``.

Both sessions use the same connection-pool limit as LLuMinary's default
transport. The floor sets no read timeout: aiohttp then schedules no timer per
socket read, the least work a client over aiohttp can do. LLuMinary keeps its
300 s read timeout (one lazy timer per body, see ``lluminary.providers._http``),
so the ratio measures LLuMinary's own layers (framing, decoding, event objects,
generators, the engine, the timeout) against the cheapest correct reader. Each
client returns an :class:`Outcome`; the harness checks it against the expected
text, usage and end marker, so no client can skip work.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import aiohttp
import msgspec

from lluminary import (
    ChatRequest,
    Engine,
    Error,
    Finish,
    Message,
    Operator,
    TextDelta,
    ToolArgsDelta,
    ToolCallEnd,
    Usage,
)
from lluminary.providers import create_provider

__all__ = [
    "CLIENTS",
    "BenchError",
    "Outcome",
    "StreamFn",
    "Target",
    "floor_client",
    "lluminary_client",
    "lluminary_pipeline_client",
]

#: The pool limit and read buffer of LLuMinary's AiohttpTransport; the floor uses the same.
POOL_LIMIT = 1000
READ_BUFFER = 16 * 1024
#: No read timeout for the floor: aiohttp's ``sock_read`` would move a loop timer on every read.
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10.0)
API_KEY = "bench"


class BenchError(Exception):
    """A client got something other than the stream it was promised."""


@dataclass(frozen=True)
class Target:
    """Where one scenario's streams come from: the server origin, the provider shape and its options."""

    origin: str
    provider: str  # "openai" or "anthropic"
    query: str  # the server's stream configuration, as a query string
    tool: bool = False  # the stream carries one tool call instead of text

    @property
    def base_url(self) -> str:
        """The base URL in the provider SDK's convention (OpenAI's includes ``/v1``)."""
        root = f"{self.origin}/cfg/{self.query}"
        return f"{root}/v1" if self.provider == "openai" else root

    @property
    def url(self) -> str:
        path = "/chat/completions" if self.provider == "openai" else "/v1/messages"
        return self.base_url + path


@dataclass
class Outcome:
    """What one stream gave a client."""

    text: str = ""
    arguments: Any = None  # the parsed tool arguments, for tool streams
    output_tokens: int = -1
    finished: bool = False
    events: int = 0  # events the client handled: SSE events (floor) or LLuMinary events
    first_at: float = 0.0  # perf_counter() when the first text piece reached the consumer (S3)


#: What a client yields once its session (or engine) is open: run one stream.
StreamFn = Callable[[], Awaitable[Outcome]]


# -- the floor ------------------------------------------------------------------------


class _Function(msgspec.Struct):
    arguments: str | None = None


class _ToolCall(msgspec.Struct):
    function: _Function | None = None


class _OpenAIDelta(msgspec.Struct):
    content: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(msgspec.Struct):
    delta: _OpenAIDelta | None = None


class _OpenAIUsage(msgspec.Struct):
    completion_tokens: int = 0


class _OpenAIChunk(msgspec.Struct):
    choices: list[_Choice] | None = None
    usage: _OpenAIUsage | None = None


class _AnthropicDelta(msgspec.Struct):
    text: str | None = None
    partial_json: str | None = None


class _AnthropicUsage(msgspec.Struct):
    output_tokens: int = 0


class _AnthropicEvent(msgspec.Struct):
    type: str = ""
    delta: _AnthropicDelta | None = None
    usage: _AnthropicUsage | None = None


_decode_openai = msgspec.json.Decoder(_OpenAIChunk).decode
_decode_anthropic = msgspec.json.Decoder(_AnthropicEvent).decode
_decode_any = msgspec.json.Decoder().decode

_OPENAI_BODY = msgspec.json.encode(
    {
        "model": "bench",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
)
_ANTHROPIC_BODY = msgspec.json.encode(
    {"model": "bench", "max_tokens": 4096, "messages": [{"role": "user", "content": "hi"}], "stream": True}
)
_OPENAI_HEADERS = {
    "content-type": "application/json",
    "accept": "text/event-stream",
    "authorization": f"Bearer {API_KEY}",
}
_ANTHROPIC_HEADERS = {
    "content-type": "application/json",
    "accept": "text/event-stream",
    "anthropic-version": "2023-06-01",
    "x-api-key": API_KEY,
}


async def _floor_openai(session: aiohttp.ClientSession, url: str, tool: bool) -> Outcome:
    out = Outcome()
    parts: list[str] = []
    async with session.post(url, data=_OPENAI_BODY, headers=_OPENAI_HEADERS) as resp:
        if resp.status != 200:
            raise BenchError(f"HTTP {resp.status}")
        content = resp.content
        buf = b""
        while True:
            data = await content.readany()
            if not data:
                break
            buf = buf + data if buf else data
            blocks = buf.split(b"\n\n")
            buf = blocks.pop()
            for block in blocks:
                out.events += 1
                payload = block[6:]  # after "data: "
                if payload == b"[DONE]":
                    out.finished = True
                    continue
                chunk = _decode_openai(payload)
                if chunk.choices:
                    delta = chunk.choices[0].delta
                    if delta is not None:
                        if delta.content:
                            if not parts:
                                out.first_at = perf_counter()
                            parts.append(delta.content)
                        elif delta.tool_calls:
                            fn = delta.tool_calls[0].function
                            if fn is not None and fn.arguments:
                                if not parts:
                                    out.first_at = perf_counter()
                                parts.append(fn.arguments)
                if chunk.usage is not None:
                    out.output_tokens = chunk.usage.completion_tokens
    out.text = "".join(parts)
    if tool:
        out.arguments = _decode_any(out.text)
    return out


async def _floor_anthropic(session: aiohttp.ClientSession, url: str, tool: bool) -> Outcome:
    out = Outcome()
    parts: list[str] = []
    async with session.post(url, data=_ANTHROPIC_BODY, headers=_ANTHROPIC_HEADERS) as resp:
        if resp.status != 200:
            raise BenchError(f"HTTP {resp.status}")
        content = resp.content
        buf = b""
        while True:
            data = await content.readany()
            if not data:
                break
            buf = buf + data if buf else data
            blocks = buf.split(b"\n\n")
            buf = blocks.pop()
            for block in blocks:
                out.events += 1
                event = _decode_anthropic(block[block.find(b"data: ") + 6 :])
                kind = event.type
                if kind == "content_block_delta":
                    delta = event.delta
                    if delta is not None:
                        piece = delta.text if delta.text is not None else delta.partial_json
                        if piece:
                            if not parts:
                                out.first_at = perf_counter()
                            parts.append(piece)
                elif kind == "message_delta":
                    if event.usage is not None:
                        out.output_tokens = event.usage.output_tokens
                elif kind == "message_stop":
                    out.finished = True
    out.text = "".join(parts)
    if tool:
        out.arguments = _decode_any(out.text)
    return out


@asynccontextmanager
async def floor_client(target: Target) -> AsyncIterator[StreamFn]:
    tool, url = target.tool, target.url
    run = _floor_openai if target.provider == "openai" else _floor_anthropic
    connector = aiohttp.TCPConnector(limit=POOL_LIMIT)
    async with aiohttp.ClientSession(connector=connector, timeout=TIMEOUT, read_bufsize=READ_BUFFER) as session:

        async def one() -> Outcome:
            return await run(session, url, tool)

        yield one


# -- LLuMinary ------------------------------------------------------------------------


async def _lluminary_one(engine: Engine, request: ChatRequest) -> Outcome:
    out = Outcome()
    parts: list[str] = []
    async with engine.stream(request) as stream:
        async for event in stream:
            out.events += 1
            if isinstance(event, TextDelta):
                if not parts:
                    out.first_at = perf_counter()
                parts.append(event.text)
            elif isinstance(event, ToolArgsDelta):
                if not parts:
                    out.first_at = perf_counter()
                parts.append(event.delta)
            elif isinstance(event, ToolCallEnd):
                out.arguments = event.arguments
            elif isinstance(event, Usage):
                out.output_tokens = event.output_tokens
            elif isinstance(event, Finish):
                out.finished = True
            elif isinstance(event, Error):
                raise BenchError(f"LLuMinary stream ended in error: {event.code}: {event.message}")
    out.text = "".join(parts)
    return out


@asynccontextmanager
async def lluminary_client(target: Target) -> AsyncIterator[StreamFn]:
    provider = create_provider(target.provider, api_key=API_KEY, base_url=target.base_url)
    request = ChatRequest(model=f"{target.provider}:bench", messages=[Message.user("hi")])
    async with Engine(providers={target.provider: provider}) as engine:

        async def one() -> Outcome:
            return await _lluminary_one(engine, request)

        yield one


@asynccontextmanager
async def lluminary_pipeline_client(target: Target) -> AsyncIterator[StreamFn]:
    """LLuMinary with a typical pipeline: tracing, cost, a cache that always misses, retry, timeout.

    Every stream sends a prompt of its own, so every cache lookup misses and the
    cache records the stream into an in-memory store (the cost a miss really has).
    Spans go to an in-memory exporter, which is cleared when the client closes.
    """
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from lluminary import Cache, Cost, Retry, Timeout, Tracing
    from lluminary.stores import MemoryCache

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider = create_provider(target.provider, api_key=API_KEY, base_url=target.base_url)
    operators: list[Operator] = [
        Tracing(tracer_provider),
        Cost(),
        Cache(MemoryCache(max_bytes=1 << 30), base_url=target.base_url),
        Retry(),
        Timeout(first_event=20, idle=30),
    ]
    model = f"{target.provider}:bench"
    serial = itertools.count()
    try:
        async with Engine(operators, providers={target.provider: provider}) as engine:

            async def one() -> Outcome:
                request = ChatRequest(model=model, messages=[Message.user(f"hi {next(serial)}")])
                return await _lluminary_one(engine, request)

            yield one
        if not exporter.get_finished_spans():
            raise BenchError("the tracing operator exported no span")
    finally:
        exporter.clear()
        tracer_provider.shutdown()


#: Each client is an async context manager (its session or engine, opened and closed
#: inside the timed window) that yields the function running one stream.
CLIENTS: dict[str, Callable[[Target], AbstractAsyncContextManager[StreamFn]]] = {
    "floor": floor_client,
    "lluminary": lluminary_client,
}
