"""Tracing: one OpenTelemetry span per request, in the GenAI semantic conventions.

The span is named ``chat {model}``, of kind CLIENT, and carries at creation what
a sampler may want (``gen_ai.operation.name``, ``gen_ai.provider.name``,
``gen_ai.request.model``, ``server.address``/``server.port`` when the operator
knows the provider's base URL, the sampling settings). As the stream goes by it
adds ``gen_ai.response.model``/``.id`` (from ``start``), the usage (input
tokens counted the spec's way, cache reads and writes included, see
:mod:`lluminary.observability._semconv`), ``gen_ai.response.finish_reasons``,
and ``gen_ai.response.time_to_first_chunk`` (seconds from the span's start to the
first content event: the one place that time is kept, since a span event for it
would repeat it at the price of another attribute set with its own lock, kept for
as long as the span). Span events mark each ``retry``, ``fallback``,
``cache-hit``, ``rate-limit-wait`` and ``budget-alert``; a ``cost`` sets
``lluminary.cost.usd``.

How it ends, exactly once, in one ``finally``:

- ``finish``: status left unset, as the spec asks for success;
- ``error``: status ERROR with the (already key-scrubbed) message, ``error.type``
  = our error code (``rate_limited``, ``timeout``…, the DESIGN.md list);
- the inner stream ends without a terminal event: ERROR, ``error.type=protocol``,
  the same verdict :class:`~lluminary.engine.EventStream` gives the consumer;
- the consumer stops early or the task is cancelled: ``error.type=cancelled``
  but status unset: the caller chose to stop, nothing failed, and the metrics
  carry the same label so dashboards can leave these out of error rates;
- an exception from an inner operator: ERROR, recorded on the span, ``error.type``
  = the exception's class name, and the exception propagates.

Content (prompt, system prompt, tool definitions, the answer) is recorded only
with ``capture_content=True``, as JSON strings in ``gen_ai.input.messages``,
``gen_ai.system_instructions``, ``gen_ai.tool.definitions`` and
``gen_ai.output.messages``. Without it no attribute or event holds any text
of the conversation; error messages are kept (they are scrubbed of keys).
Capturing means holding the whole answer until the stream ends, the one case
where this operator keeps more than a few counters per stream.

Per event the cost is one context attach/detach around the inner ``__anext__``
(so spans made below, e.g. by an aiohttp instrumentation, become children of
this one; with the default runtime context, a ``ContextVar`` set and reset) and
a type check; text deltas are only counted.

Place it outermost for one span per request with retries and fallbacks as
events; inside Retry it makes one span per attempt instead. Outermost, it is also
the stream's guard: it stops at the first terminal event, closes everything
inside and ends the span before passing that event on, and turns an inner stream
that ends without one into a ``protocol`` error, so
:class:`~lluminary.engine.EventStream` hands its stream to the consumer as it is
instead of through a guard of its own (one step less per event).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

from lluminary.engine._operator import RAN_DRY, Handler, keeps_invariants, ran_dry
from lluminary.engine._operator import aclose as aclose_stream
from lluminary.events import (
    BudgetAlert,
    CacheHit,
    ChatRequest,
    Cost,
    Error,
    Event,
    Fallback,
    Finish,
    RateLimitWait,
    ReasoningDelta,
    RefusalDelta,
    ResponseBuilder,
    Start,
    TextDelta,
    ToolArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from lluminary.events import Retry as RetryEvent
from lluminary.observability import _semconv as sc

if TYPE_CHECKING:
    from opentelemetry.trace import Span, TracerProvider

__all__ = ["Tracing"]

_CONTENT: Final = frozenset({TextDelta, ReasoningDelta, RefusalDelta, ToolCallStart, ToolArgsDelta, ToolCallEnd})
_INFO: Final = frozenset({RetryEvent, Fallback, CacheHit, RateLimitWait, BudgetAlert, Cost})


class Tracing:
    """One span per request. See the module docstring for what it records.

    ``servers`` maps provider names to base URLs (or to the configured providers
    themselves, the mapping given to ``Engine(providers=…)``) for
    ``server.address``/``server.port``; providers not in it get neither, since
    an operator cannot see which URL the engine will use.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        *,
        capture_content: bool = False,
        servers: Mapping[str, object] | None = None,
    ) -> None:
        # Imported here, not at module level: ``import lluminary`` must not pay
        # for OpenTelemetry unless tracing is used.
        from opentelemetry import context, trace

        from lluminary import __version__

        self.capture_content = capture_content
        self._tracer = trace.get_tracer("lluminary", __version__, tracer_provider=tracer_provider)
        self._servers = sc.parse_servers(servers)
        self._attach, self._detach = _context_switch(context)
        self._in_context = trace.set_span_in_context
        self._client = trace.SpanKind.CLIENT
        self._status = trace.Status
        self._error = trace.StatusCode.ERROR

    def __repr__(self) -> str:
        return f"Tracing(capture_content={self.capture_content!r})"

    def __call__(self, inner: Handler) -> Handler:
        tracer, servers, capture = self._tracer, self._servers, self.capture_content
        attach, detach, in_context = self._attach, self._detach, self._in_context

        async def handler(request: ChatRequest) -> AsyncIterator[Event]:
            target = sc.resolve_target(request.model, servers)
            attributes = target.attributes()
            attributes.update(sc.request_attributes(request))
            attributes[sc.LLUMINARY_PROVIDER] = target.provider
            name = f"{sc.CHAT} {target.model}" if target.model else sc.CHAT
            span = tracer.start_span(name, kind=self._client, attributes=attributes)
            context = in_context(span)
            builder = ResponseBuilder() if capture else None
            started = time.perf_counter()
            chunks = 0
            # Attributes learnt on the way, set with the rest at the end: each
            # set_attribute call on a live span takes the SDK's lock and checks.
            late: dict[str, Any] = {}
            terminal: Finish | Error | None = None
            end_ns: int | None = None
            usage: Usage | None = None
            failure: BaseException | None = None
            stream: AsyncIterator[Event] | None = None
            try:
                token = attach(context)
                try:
                    stream = inner(request)  # may do work (the engine resolves the provider here)
                finally:
                    detach(token)
                step = stream.__anext__
                while True:
                    token = attach(context)
                    try:
                        event = await step()
                    except StopAsyncIteration:
                        break
                    finally:
                        detach(token)
                    cls = event.__class__
                    if cls is TextDelta and chunks and builder is None:
                        chunks += 1  # the bulk of every stream, after its first piece: only counted
                        yield event
                        continue
                    if cls in _CONTENT:
                        chunks += 1
                        if chunks == 1:
                            late[sc.RESPONSE_TIME_TO_FIRST_CHUNK] = time.perf_counter() - started
                    elif isinstance(event, Usage):
                        usage = event
                    elif isinstance(event, (Finish, Error)):
                        # Nothing more is read: the inner stream is closed and the span
                        # ended (below) before the consumer gets this event.
                        terminal = event
                        end_ns = time.time_ns()
                        if builder is not None:
                            builder.add(event)
                        break
                    elif isinstance(event, Start):
                        late[sc.RESPONSE_MODEL] = event.model
                        if event.id:
                            late[sc.RESPONSE_ID] = event.id
                    elif cls in _INFO:
                        _record_info(span, event)
                    if builder is not None:
                        builder.add(event)
                    yield event
            except BaseException as exc:
                failure = exc
                raise
            finally:
                # Closing runs the inner operators' cleanup (and their logging) in the span's context too.
                token = attach(context)
                try:
                    if stream is not None:
                        await aclose_stream(stream)
                finally:
                    detach(token)
                    self._end(span, request, terminal, usage, chunks, failure, builder, late)
                    span.end(end_time=end_ns)
            # Everything is closed and recorded: the stream's one terminal event, or the
            # protocol error for an inner stream that ran dry (as EventStream's guard says it).
            if terminal is None:
                terminal = ran_dry(target.provider or None)
            yield terminal

        return keeps_invariants(handler)

    def _end(
        self,
        span: Span,
        request: ChatRequest,
        terminal: Finish | Error | None,
        usage: Usage | None,
        chunks: int,
        failure: BaseException | None,
        builder: ResponseBuilder | None,
        attrs: dict[str, Any],
    ) -> None:
        """Everything known only at the end, then the status: called once, just before ``end()``."""
        attrs["lluminary.response.chunks"] = chunks
        if usage is not None:
            attrs[sc.USAGE_INPUT_TOKENS] = sc.total_input_tokens(usage)
            attrs[sc.USAGE_OUTPUT_TOKENS] = usage.output_tokens
            if usage.cache_read_tokens:
                attrs[sc.USAGE_CACHE_READ] = usage.cache_read_tokens
            if usage.cache_write_tokens:
                attrs[sc.USAGE_CACHE_CREATION] = usage.cache_write_tokens
            if usage.reasoning_tokens:
                attrs[sc.USAGE_REASONING] = usage.reasoning_tokens
            if usage.estimated:
                attrs["lluminary.usage.estimated"] = True
        if isinstance(terminal, Finish):
            attrs[sc.RESPONSE_FINISH_REASONS] = [sc.finish_reason(terminal)]
        error_type = sc.error_type(terminal, failure)
        if error_type is not None:
            attrs[sc.ERROR_TYPE] = error_type
            # A consumer that stopped early chose to: the span is marked, not failed.
            if isinstance(terminal, Error):
                span.set_status(self._status(self._error, terminal.message))
            elif failure is None:
                span.set_status(self._status(self._error, RAN_DRY))
            elif isinstance(failure, Exception):
                span.record_exception(failure)
                span.set_status(self._status(self._error, f"{type(failure).__name__}: {failure}"))
        if builder is not None:
            attrs[sc.INPUT_MESSAGES] = sc.input_messages(request)
            system = sc.system_instructions(request)
            if system is not None:
                attrs[sc.SYSTEM_INSTRUCTIONS] = system
            tools = sc.tool_definitions(request)
            if tools is not None:
                attrs[sc.TOOL_DEFINITIONS] = tools
            attrs[sc.OUTPUT_MESSAGES] = sc.output_messages(builder.build())
        span.set_attributes(attrs)


def _record_info(span: Span, event: Event) -> None:
    """Operator events become span events; none of them carries conversation text."""
    if isinstance(event, RetryEvent):
        span.add_event(
            "lluminary.retry",
            {"lluminary.retry.attempt": event.attempt, "lluminary.retry.delay": event.delay, sc.ERROR_TYPE: event.code},
        )
    elif isinstance(event, Fallback):
        span.add_event(
            "lluminary.fallback",
            {
                "lluminary.fallback.attempt": event.attempt,
                "lluminary.fallback.model": event.model,
                sc.ERROR_TYPE: event.code,
            },
        )
    elif isinstance(event, CacheHit):
        # The key is left out: a store may derive it from the prompt in ways we cannot vouch for.
        attrs: dict[str, Any] = {"lluminary.cache.kind": "exact" if event.similarity is None else "semantic"}
        if event.similarity is not None:
            attrs["lluminary.cache.similarity"] = event.similarity
        span.set_attribute("lluminary.cache.hit", True)
        span.add_event("lluminary.cache_hit", attrs)
    elif isinstance(event, RateLimitWait):
        span.add_event("lluminary.rate_limit_wait", {"lluminary.rate_limit.delay": event.delay})
    elif isinstance(event, BudgetAlert):
        span.add_event(
            "lluminary.budget_alert",
            {
                "lluminary.budget.tenant": event.tenant,
                "lluminary.budget.period": event.period,
                "lluminary.budget.threshold": event.threshold,
                "lluminary.budget.spent_usd": event.spent_usd,
                "lluminary.budget.limit_usd": event.limit_usd,
            },
        )
    elif isinstance(event, Cost):
        span.set_attribute("lluminary.cost.usd", event.usd)
        if event.estimated:
            span.set_attribute("lluminary.cost.estimated", True)


def _context_switch(context: ModuleType) -> tuple[Callable[[Any], Any], Callable[[Any], None]]:
    """How to make the span's context current and undo it: ``attach`` and ``detach``, done cheaply.

    The operator does it around every inner step, so per event. Through the API
    each is a few Python calls; the default runtime context is a ``ContextVar``
    whose ``set`` and ``reset`` do the same work in C. Any other runtime context
    (``OTEL_PYTHON_CONTEXT``) goes through the API. Every set is reset by the same
    step of the same task, so ``reset`` cannot meet a token of another context
    (the API would only log that).
    """
    from contextvars import ContextVar

    from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

    runtime = getattr(context, "_RUNTIME_CONTEXT", None)
    var = getattr(runtime, "_current_context", None)
    if isinstance(runtime, ContextVarsRuntimeContext) and isinstance(var, ContextVar):
        return var.set, var.reset
    return context.attach, context.detach
