"""The peers ``bench_all.py`` measures beside the floor and LLuMinary, and the registry of every client.

Each peer does the job the floor does, through its own public API and as its
documentation shows: open the stream, read every chunk, assemble the text (or the
tool-call arguments), note the usage and the end of the stream. It returns an
:class:`~clients.Outcome`, which the harness checks against the expected text,
usage and end marker, so a peer that skipped work would fail, not win.

- **httpx**: ``httpx.AsyncClient`` + ``httpx_sse.aconnect_sse``, chunks decoded
  by the floor's msgspec structs: the transport and SSE layer of the SDKs, alone.
- **openai**: ``AsyncOpenAI(...).chat.completions.create(stream=True,
  stream_options={"include_usage": True})``. The SDK has no end marker of its
  own (it ends silently without ``[DONE]``), so the finish reason counts as one.
- **anthropic**: ``AsyncAnthropic(...).messages.create(stream=True)``, on the
  Anthropic wire format.
- **litellm**: ``litellm.acompletion(model="openai/bench", api_base=..., stream=True)``.
- **pydantic-ai**: an ``Agent`` over ``OpenAIChatModel`` pointed at the server,
  ``run_stream`` + ``stream_text(delta=True, debounce_by=None)`` (text only:
  pydantic-ai would run a tool call, not hand its arguments over).

Every HTTP pool allows 1,000 connections, LLuMinary's default (the openai and
anthropic SDKs' own default too), so S2's 1,000 streams run at once for every
client; the SDKs keep their default of 100 idle connections. Peers are imported inside their
client, so a missing one is reported as skipped (see :func:`missing`), never a crash.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from clients import (
    _ANTHROPIC_BODY,
    _ANTHROPIC_HEADERS,
    _OPENAI_BODY,
    _OPENAI_HEADERS,
    API_KEY,
    POOL_LIMIT,
    BenchError,
    Outcome,
    StreamFn,
    Target,
    _decode_anthropic,
    _decode_any,
    _decode_openai,
    floor_client,
    lluminary_client,
    lluminary_pipeline_client,
)

__all__ = ["REGISTRY", "ClientSpec", "missing"]

#: Typed Any: each SDK declares its own TypedDict for a message.
MESSAGES: Any = [{"role": "user", "content": "hi"}]


def _finish(out: Outcome, parts: list[str], tool: bool) -> Outcome:
    out.text = "".join(parts)
    if tool:
        out.arguments = _decode_any(out.text)
    return out


def _piece(out: Outcome, parts: list[str], piece: str) -> None:
    if not parts:
        out.first_at = perf_counter()
    parts.append(piece)


# -- httpx + httpx-sse --------------------------------------------------------------------


@asynccontextmanager
async def httpx_client(target: Target) -> AsyncIterator[StreamFn]:
    import httpx
    from httpx_sse import aconnect_sse

    openai = target.provider == "openai"
    body, headers = (_OPENAI_BODY, _OPENAI_HEADERS) if openai else (_ANTHROPIC_BODY, _ANTHROPIC_HEADERS)
    limits = httpx.Limits(max_connections=POOL_LIMIT, max_keepalive_connections=POOL_LIMIT)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(300.0, connect=10.0)) as client:

        async def one() -> Outcome:
            out, parts = Outcome(), list[str]()
            async with aconnect_sse(client, "POST", target.url, content=body, headers=headers) as source:
                if source.response.status_code != 200:
                    raise BenchError(f"HTTP {source.response.status_code}")
                async for sse in source.aiter_sse():
                    out.events += 1
                    if openai:
                        if sse.data == "[DONE]":
                            out.finished = True
                            continue
                        chunk = _decode_openai(sse.data)
                        if chunk.choices and (delta := chunk.choices[0].delta) is not None:
                            if delta.content:
                                _piece(out, parts, delta.content)
                            elif delta.tool_calls and (fn := delta.tool_calls[0].function) and fn.arguments:
                                _piece(out, parts, fn.arguments)
                        if chunk.usage is not None:
                            out.output_tokens = chunk.usage.completion_tokens
                    else:
                        event = _decode_anthropic(sse.data)
                        if event.type == "content_block_delta" and event.delta is not None:
                            piece = event.delta.text if event.delta.text is not None else event.delta.partial_json
                            if piece:
                                _piece(out, parts, piece)
                        elif event.type == "message_delta" and event.usage is not None:
                            out.output_tokens = event.usage.output_tokens
                        elif event.type == "message_stop":
                            out.finished = True
            return _finish(out, parts, target.tool)

        yield one


# -- the openai SDK ------------------------------------------------------------------------


def _openai_chunk(out: Outcome, parts: list[str], chunk: Any) -> None:
    """One ``ChatCompletionChunk`` (the SDK's, or LiteLLM's look-alike) into the outcome."""
    out.events += 1
    if chunk.choices:
        choice = chunk.choices[0]
        delta = choice.delta
        if delta is not None:
            if delta.content:
                _piece(out, parts, delta.content)
            elif delta.tool_calls and (fn := delta.tool_calls[0].function) and fn.arguments:
                _piece(out, parts, fn.arguments)
        if choice.finish_reason:
            out.finished = True
    usage = getattr(chunk, "usage", None)
    if usage is not None:
        out.output_tokens = usage.completion_tokens


@asynccontextmanager
async def openai_client(target: Target) -> AsyncIterator[StreamFn]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=target.base_url, api_key=API_KEY, max_retries=0)
    async with client:

        async def one() -> Outcome:
            out, parts = Outcome(), list[str]()
            stream = await client.chat.completions.create(
                model="bench", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
            async with stream:
                async for chunk in stream:
                    _openai_chunk(out, parts, chunk)
            return _finish(out, parts, target.tool)

        yield one


# -- the anthropic SDK ---------------------------------------------------------------------


@asynccontextmanager
async def anthropic_client(target: Target) -> AsyncIterator[StreamFn]:
    from anthropic import AsyncAnthropic

    client = AsyncAnthropic(base_url=target.base_url, api_key=API_KEY, max_retries=0)
    async with client:

        async def one() -> Outcome:
            out, parts = Outcome(), list[str]()
            stream = await client.messages.create(model="bench", max_tokens=4096, messages=MESSAGES, stream=True)
            events: Any = stream  # a union of event classes, told apart by ``type`` as the docs do
            async with stream:
                async for event in events:
                    out.events += 1
                    if event.type == "content_block_delta":
                        delta = event.delta
                        if delta.type == "text_delta":
                            _piece(out, parts, delta.text)
                        elif delta.type == "input_json_delta":
                            _piece(out, parts, delta.partial_json)
                    elif event.type == "message_delta":
                        out.output_tokens = event.usage.output_tokens
                    elif event.type == "message_stop":
                        out.finished = True
            return _finish(out, parts, target.tool)

        yield one


# -- LiteLLM -------------------------------------------------------------------------------


@asynccontextmanager
async def litellm_client(target: Target) -> AsyncIterator[StreamFn]:
    # Without this, importing litellm fetches its price list from GitHub (no network here).
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.telemetry = False

    async def one() -> Outcome:
        out, parts = Outcome(), list[str]()
        response = await litellm.acompletion(
            model="openai/bench",
            api_base=target.base_url,
            api_key=API_KEY,
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
            max_retries=0,
        )
        async for chunk in response:
            _openai_chunk(out, parts, chunk)
        return _finish(out, parts, target.tool)

    yield one


# -- pydantic-ai ---------------------------------------------------------------------------


@asynccontextmanager
async def pydantic_ai_client(target: Target) -> AsyncIterator[StreamFn]:
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    if target.tool:
        raise BenchError("pydantic-ai runs tool calls itself; the benchmark measures it on text only")
    # pydantic-ai's shared client pools 100 connections; give it the SDKs' 1,000 (httpx2: its transport).
    import httpx2

    limits = httpx2.Limits(max_connections=POOL_LIMIT, max_keepalive_connections=POOL_LIMIT)
    async with httpx2.AsyncClient(limits=limits, timeout=httpx2.Timeout(300.0, connect=10.0)) as http:
        provider = OpenAIProvider(base_url=target.base_url, api_key=API_KEY, http_client=http)
        agent = Agent(OpenAIChatModel("bench", provider=provider))

        async def one() -> Outcome:
            out, parts = Outcome(), list[str]()
            async with agent.run_stream("hi") as result:
                async for piece in result.stream_text(delta=True, debounce_by=None):
                    out.events += 1
                    if piece:
                        _piece(out, parts, piece)
                out.output_tokens = result.usage.output_tokens
                out.finished = result.is_complete
            out.text = "".join(parts)
            return out

        yield one


# -- the registry --------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientSpec:
    """One client of ``bench_all.py``: how to open it and what it can stream."""

    name: str
    factory: Callable[[Target], AbstractAsyncContextManager[StreamFn]]
    providers: tuple[str, ...]  # the wire formats it speaks here
    modules: tuple[str, ...] = ()  # what must be importable (else: skipped, with the reason)
    packages: tuple[str, ...] = ()  # distributions whose versions the JSON records
    slow: bool = False  # gets the reduced S2 scale and fewer repetitions
    text_only: bool = False


REGISTRY: dict[str, ClientSpec] = {
    spec.name: spec
    for spec in (
        ClientSpec("floor", floor_client, ("openai", "anthropic"), ("aiohttp", "msgspec"), ("aiohttp", "msgspec")),
        ClientSpec("lluminary", lluminary_client, ("openai", "anthropic"), ("lluminary",), ("lluminary",)),
        ClientSpec(
            "lluminary-pipeline",
            lluminary_pipeline_client,
            ("openai", "anthropic"),
            ("lluminary", "opentelemetry.sdk"),
            ("lluminary", "opentelemetry-sdk"),
        ),
        ClientSpec("httpx", httpx_client, ("openai", "anthropic"), ("httpx", "httpx_sse"), ("httpx", "httpx-sse")),
        ClientSpec("openai", openai_client, ("openai",), ("openai",), ("openai", "httpx2"), slow=True),
        ClientSpec("anthropic", anthropic_client, ("anthropic",), ("anthropic",), ("anthropic", "httpx2"), slow=True),
        ClientSpec("litellm", litellm_client, ("openai",), ("litellm",), ("litellm",), slow=True),
        ClientSpec(
            "pydantic-ai",
            pydantic_ai_client,
            ("openai",),
            ("pydantic_ai", "httpx2"),
            ("pydantic-ai-slim", "httpx2"),
            slow=True,
            text_only=True,
        ),
    )
}


def missing(spec: ClientSpec) -> str | None:
    """Why ``spec`` cannot run here (a module it needs is not installed), or None."""
    for module in spec.modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"{module} is not installed (uv sync --group bench)"
    return None
