"""Metrics: the GenAI client metrics, plus cost, cache, retry and in-flight counts.

A separate operator from Tracing, so either can run without the other (metrics
are cheap enough to keep on everywhere; traces are often sampled). It records
through the OpenTelemetry metrics API into ``meter_provider`` (default: the
global one), so any exporter works; :mod:`lluminary.observability` has a
Prometheus one. The instruments and their Prometheus names are listed in
:mod:`lluminary.observability._metrics`.

Every data point carries ``gen_ai.operation.name``, ``gen_ai.provider.name``,
``gen_ai.request.model``, ``gen_ai.response.model`` once ``start`` named it, and
``server.address``/``server.port`` when ``servers`` gives the provider's URL.
The duration carries ``error.type`` when the stream did not finish (our error
code; ``protocol`` when it ended without a terminal event; ``cancelled`` when the
consumer stopped early or the task was cancelled).

What it reads from the stream, per event only a type check and a clock read for
content: the first content event gives time to first chunk; ``usage`` gives
token usage (input counted the spec's way, cache included) and time per output
token, ``(last content - first content) / (output tokens - 1)``, hidden
reasoning tokens left out; ``cost`` events add to the spend counter;
``retry`` and ``fallback`` events count; ``cache-hit`` counts a hit.

A miss is the absence of a hit, which only an operator outside the cache can
see: with ``count_cache_misses=True`` (put Metrics outside Cache) every stream
that produced events without a ``cache-hit`` counts as a miss. Off by default,
since without a cache every request would be a "miss".

``by_tenant=True`` adds ``lluminary.tenant`` (from ``request.metadata["tenant"]``)
to cost and token usage, for per-tenant spend; it multiplies series by the
number of tenants, hence opt-in.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from lluminary.engine._operator import Handler
from lluminary.engine._operator import aclose as aclose_stream
from lluminary.events import (
    CacheHit,
    ChatRequest,
    Cost,
    Error,
    Event,
    Fallback,
    Finish,
    ReasoningDelta,
    RefusalDelta,
    Start,
    TextDelta,
    ToolArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from lluminary.events import Retry as RetryEvent
from lluminary.observability import _semconv as sc
from lluminary.observability._metrics import Instruments

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider

__all__ = ["Metrics"]

_CONTENT: Final = frozenset({TextDelta, ReasoningDelta, RefusalDelta, ToolCallStart, ToolArgsDelta, ToolCallEnd})


class Metrics:
    """Records the request metrics into ``meter_provider`` (default: the global one).

    ``servers`` maps provider names to base URLs or configured providers, for
    ``server.address``/``server.port``. ``count_cache_misses``, ``by_tenant`` and
    ``chunk_timing`` switch on what the module docstring describes; ``clock``
    (seconds, monotonic) is there for tests.
    """

    def __init__(
        self,
        meter_provider: MeterProvider | None = None,
        *,
        servers: Mapping[str, object] | None = None,
        count_cache_misses: bool = False,
        by_tenant: bool = False,
        chunk_timing: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        # Imported here so that ``import lluminary`` does not load OpenTelemetry.
        from opentelemetry import metrics

        from lluminary import __version__

        meter = metrics.get_meter("lluminary", __version__, meter_provider=meter_provider)
        self.instruments = Instruments(meter)
        self.count_cache_misses = count_cache_misses
        self.by_tenant = by_tenant
        self.chunk_timing = chunk_timing
        self._clock = clock
        self._servers = sc.parse_servers(servers)

    def __repr__(self) -> str:
        return (
            f"Metrics(count_cache_misses={self.count_cache_misses!r}, by_tenant={self.by_tenant!r}, "
            f"chunk_timing={self.chunk_timing!r})"
        )

    def __call__(self, inner: Handler) -> Handler:
        ins, servers = self.instruments, self._servers
        per_chunk = ins.time_per_output_chunk if self.chunk_timing else None
        count_misses, by_tenant = self.count_cache_misses, self.by_tenant

        clock = self._clock

        async def handler(request: ChatRequest) -> AsyncIterator[Event]:
            base = sc.resolve_target(request.model, servers).attributes()
            attrs = base  # base + gen_ai.response.model once ``start`` arrives
            started = clock()
            first = last = 0.0
            chunks = 0
            visible_reasoning = hit = seen = False
            usage: Usage | None = None
            terminal: Finish | Error | None = None
            ended: float | None = None
            failure: BaseException | None = None
            stream: AsyncIterator[Event] | None = None
            ins.active_streams.add(1, base)
            try:
                stream = inner(request)
                async for event in stream:
                    seen = True
                    cls = event.__class__
                    if cls in _CONTENT:
                        now = clock()
                        chunks += 1
                        if chunks == 1:
                            first = now
                            ins.time_to_first_chunk.record(now - started, attrs)
                        elif per_chunk is not None:
                            per_chunk.record(now - last, attrs)
                        last = now
                        if cls is ReasoningDelta:
                            visible_reasoning = True
                    elif isinstance(event, Start):
                        attrs = {**base, sc.RESPONSE_MODEL: event.model}
                    elif isinstance(event, Usage):
                        usage = event
                    elif isinstance(event, (Finish, Error)):
                        terminal = event
                        ended = clock()
                    elif isinstance(event, Cost):
                        ins.cost.add(event.usd, _tenant(attrs, request) if by_tenant else attrs)
                    elif isinstance(event, RetryEvent):
                        ins.retries.add(1, {**base, sc.ERROR_TYPE: event.code})
                    elif isinstance(event, Fallback):
                        ins.fallbacks.add(1, {**base, sc.ERROR_TYPE: event.code})
                    elif isinstance(event, CacheHit):
                        hit = True
                        kind = "exact" if event.similarity is None else "semantic"
                        ins.cache_hits.add(1, {**base, "lluminary.cache.kind": kind})
                    yield event
            except BaseException as exc:
                failure = exc
                raise
            finally:
                try:
                    if stream is not None:
                        await aclose_stream(stream)
                finally:
                    ins.active_streams.add(-1, base)
                    duration = (ended if ended is not None else clock()) - started
                    error_type = sc.error_type(terminal, failure)
                    ins.duration.record(duration, attrs if error_type is None else {**attrs, sc.ERROR_TYPE: error_type})
                    if usage is not None:
                        _record_usage(ins, usage, _tenant(attrs, request) if by_tenant else attrs)
                        if isinstance(terminal, Finish) and chunks:
                            hidden = 0 if visible_reasoning else usage.reasoning_tokens
                            tokens = usage.output_tokens - hidden
                            if tokens > 1 and last > first:
                                ins.time_per_output_token.record((last - first) / (tokens - 1), attrs)
                    if count_misses and seen and not hit:
                        ins.cache_misses.add(1, base)

        return handler


def _tenant(attrs: dict[str, Any], request: ChatRequest) -> dict[str, Any]:
    tenant = request.metadata.get("tenant")
    return {**attrs, sc.LLUMINARY_TENANT: tenant} if tenant else attrs


def _record_usage(ins: Instruments, usage: Usage, attrs: dict[str, Any]) -> None:
    if usage.estimated:
        attrs = {**attrs, "lluminary.usage.estimated": True}
    ins.token_usage.record(sc.total_input_tokens(usage), {**attrs, sc.TOKEN_TYPE: "input"})
    ins.token_usage.record(usage.output_tokens, {**attrs, sc.TOKEN_TYPE: "output"})
