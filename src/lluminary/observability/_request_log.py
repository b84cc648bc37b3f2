"""Logging: a request id on every log line of a request, and one summary line per request.

The operator binds ``request_id`` with ``structlog.contextvars`` around each
step of the inner stream only, and unbinds it before handing the event on:
operators, providers and stores below log with the id, while the consumer's own
code between two events does not, and two streams read in turn by one task
never see each other's id. (A consumer that wants the id on its own lines binds
it itself: ``structlog.contextvars.bound_contextvars(request_id=…)``.) The id
is ``request.metadata["request_id"]`` when the caller set one, so ids can come
from the calling service; otherwise a fresh random hex string.

At the end it logs ``llm.request``: outcome (``finish``, ``error``,
``cancelled``), ``error_type`` as the tracing and metrics operators name it,
durations in milliseconds (total, to the first content event), token counts,
cost, retries; at info level, or warning when the stream failed. Each ``retry``
and ``fallback`` is logged at warning level as it happens. Never any text of
the conversation: error messages are kept, and the logging configuration
scrubs them of keys once more.

Place it inside Tracing (``[Tracing(), Logging(), …]``): its lines then carry
the ``trace_id`` of the request's span too.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from typing import Any, Final

import structlog

from lluminary.engine._operator import Handler
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

__all__ = ["Logging"]

_CONTENT: Final = frozenset({TextDelta, ReasoningDelta, RefusalDelta, ToolCallStart, ToolArgsDelta, ToolCallEnd})


def _request_id_var() -> ContextVar[Any]:
    """The ContextVar behind ``structlog.contextvars.bind_contextvars(request_id=…)``.

    Setting it directly costs one ``ContextVar.set`` per step instead of
    structlog's dict-building bind and reset, and it is the very variable that
    ``merge_contextvars`` reads (and that a caller's own bind would set).
    """
    tokens = structlog.contextvars.bind_contextvars(request_id=None)
    structlog.contextvars.reset_contextvars(**tokens)
    return tokens["request_id"].var


def _request_id(request: ChatRequest) -> str:
    return request.metadata.get("request_id") or uuid.uuid4().hex


class Logging:
    """A request id for every log line below, one ``llm.request`` line per request.

    ``logger`` is any structlog-style logger (default: ``structlog.get_logger("lluminary")``);
    ``request_id`` picks the id of a request (default: ``metadata["request_id"]``, else a random one).
    """

    def __init__(self, logger: Any = None, *, request_id: Callable[[ChatRequest], str] = _request_id) -> None:
        self._logger = logger if logger is not None else structlog.get_logger("lluminary")
        self._request_id = request_id

    def __repr__(self) -> str:
        return "Logging()"

    def __call__(self, inner: Handler) -> Handler:
        var = _request_id_var()

        async def handler(request: ChatRequest) -> AsyncIterator[Event]:
            rid = self._request_id(request)
            target = sc.resolve_target(request.model, {})
            log = self._logger.bind(request_id=rid, provider=target.provider, model=target.model)
            started = time.perf_counter()
            summary: dict[str, Any] = {"retries": 0}
            terminal: Finish | Error | None = None
            failure: BaseException | None = None
            stream: AsyncIterator[Event] | None = None
            try:
                token = var.set(rid)
                try:
                    stream = inner(request)
                finally:
                    var.reset(token)
                while True:
                    token = var.set(rid)
                    try:
                        event = await stream.__anext__()
                    except StopAsyncIteration:
                        break
                    finally:
                        var.reset(token)
                    if event.__class__ in _CONTENT:
                        if "ttfc_ms" not in summary:
                            summary["ttfc_ms"] = _ms(time.perf_counter() - started)
                    elif isinstance(event, (Finish, Error)):
                        terminal = event
                        summary["duration_ms"] = _ms(time.perf_counter() - started)
                    elif isinstance(event, Usage):
                        summary.update(
                            input_tokens=sc.total_input_tokens(event),
                            output_tokens=event.output_tokens,
                            cache_read_tokens=event.cache_read_tokens,
                        )
                    elif isinstance(event, Start):
                        summary["response_model"] = event.model
                    elif isinstance(event, Cost):
                        summary["cost_usd"] = event.usd
                    elif isinstance(event, CacheHit):
                        summary["cache_hit"] = True
                    elif isinstance(event, RetryEvent):
                        summary["retries"] += 1
                        log.warning("llm.retry", attempt=event.attempt, delay=event.delay, error_type=event.code)
                    elif isinstance(event, Fallback):
                        log.warning(
                            "llm.fallback", attempt=event.attempt, next_model=event.model, error_type=event.code
                        )
                    yield event
            except BaseException as exc:
                failure = exc
                raise
            finally:
                token = var.set(rid)
                try:
                    if stream is not None:
                        await _aclose(stream)
                finally:
                    var.reset(token)
                    summary.setdefault("duration_ms", _ms(time.perf_counter() - started))
                    _summarize(log, summary, terminal, failure)

        return handler


def _summarize(
    log: Any, summary: dict[str, Any], terminal: Finish | Error | None, failure: BaseException | None
) -> None:
    error_type = sc.error_type(terminal, failure)
    if isinstance(terminal, Finish):
        log.info("llm.request", outcome="finish", finish_reason=terminal.reason, **summary)
    elif error_type == "cancelled":
        log.info("llm.request", outcome="cancelled", error_type=error_type, **summary)
    else:
        message = terminal.message if isinstance(terminal, Error) else None
        log.warning("llm.request", outcome="error", error_type=error_type, error_message=message, **summary)


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 1)


async def _aclose(stream: AsyncIterator[Event]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
