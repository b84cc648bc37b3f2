"""Cost: every stream priced from its usage, as a ``cost`` event and a ledger row.

The operator passes the stream through and, right after the ``usage`` event,
emits a ``cost`` event priced from that usage with the price table (so the
order is ``usage``, ``cost``, then the terminal event). The price of a stream is
a function of its usage only, so a streamed request costs exactly what the same
request costs unstreamed. Every request is also recorded once, when it ends,
as a :class:`~lluminary.ledger.LedgerEntry` handed to the ledger through a
bounded :class:`~lluminary.ledger.LedgerWriter` (never slowing the stream; a
ledger that is down loses rows, with a warning, not requests) and/or to an
``on_cost`` callback.

Nothing is silently zero:

- A failed stream is priced on the usage it reported (decoders emit usage,
  estimated if need be, before an error once a stream has started). If an
  operator inside ended it without usage, the cost is estimated from the content
  seen (four characters per token) and the request's input tokens.
- A cancelled stream (the consumer stopped, or the task was cancelled) can get
  no event after the consumer left, so it is recorded in the ledger and the
  callback only: status ``cancelled``, priced on its usage if it came, otherwise
  estimated as above, marked ``estimated``. The input is charged even when no
  ``start`` arrived yet: the provider may already be working on the request,
  and a budget should overestimate rather than under.
- A model without a price gets no ``cost`` event at all (no made-up number), a
  warning naming it, and a ledger row with ``cost_usd`` None, which reports
  count as ``unpriced``. Ollama and the local model are free: cost 0, exactly.
- A request that failed before the provider answered (an HTTP error, a refused
  budget) was not billed: no ``cost`` event, a ledger row with cost 0.

Place it outside Retry (earlier in ``Engine(operators=[…])``): Retry holds back
a failed attempt's ``usage`` until it knows the attempt is discarded, which an
event between ``usage`` and the terminal event would defeat.

It stops at the first terminal event and records the request, and closes
everything inside, before passing that event on; an inner stream that ends
without one ends here in a ``protocol`` error (recorded as such). Outermost, it
is thus the stream's guard, and the engine adds none of its own.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Final

from lluminary.engine._operator import Handler, keeps_invariants, ran_dry
from lluminary.errors import ConfigError
from lluminary.events import (
    ChatRequest,
    Error,
    Event,
    Finish,
    ReasoningDelta,
    RefusalDelta,
    Start,
    TextDelta,
    ToolArgsDelta,
    ToolCallStart,
    Usage,
)
from lluminary.events import Cost as CostEvent
from lluminary.ledger import Ledger, LedgerEntry, LedgerWriter
from lluminary.pricing import PriceTable, default_table
from lluminary.providers._decoder import estimate_tokens
from lluminary.providers._registry import parse_model
from lluminary.tokens import count_tokens

__all__ = ["Cost", "request_tenant"]

log = logging.getLogger("lluminary.cost")

#: Errors that can come before any answer although the provider had the request.
_MAYBE_BILLED: Final = frozenset({"timeout", "connection"})
_MAX_WARNED: Final = 1024


def request_tenant(request: ChatRequest) -> str:
    """The tenant a request is charged to: ``metadata["tenant"]``, else ``"default"``."""
    return request.metadata.get("tenant") or "default"


class _Tally:
    """What one call has seen so far."""

    __slots__ = ("chars", "cost", "model", "provider", "request", "requested", "started", "status", "t0", "usage")

    def __init__(self, request: ChatRequest, t0: float) -> None:
        self.request = request
        self.t0 = t0
        try:
            self.provider, self.model = parse_model(request.model)
        except ConfigError:
            self.provider, self.model = "unknown", request.model
        self.requested = (self.provider, self.model)
        self.usage: Usage | None = None
        self.cost: CostEvent | None = None
        self.started = False
        self.chars = 0
        self.status: str | None = None

    def observe(self, event: Event) -> None:
        if isinstance(event, (TextDelta, ReasoningDelta, RefusalDelta)):
            self.chars += len(event.text)
        elif isinstance(event, ToolArgsDelta):
            self.chars += len(event.delta)
        elif isinstance(event, ToolCallStart):
            self.chars += len(event.name)
        elif isinstance(event, Start):
            self.started = True
            self.provider, self.model = event.provider or self.provider, event.model or self.model

    def billable(self, error: Error | None) -> bool:
        """Whether a stream that ended (or stopped) without usage may have been billed."""
        if self.started or self.chars:
            return True
        if error is None:  # cancelled before anything arrived
            return True
        return error.status is None and error.code in _MAYBE_BILLED

    def estimate(self) -> Usage:
        """Usage from what was seen: the request's input tokens and four characters per output token."""
        counted = count_tokens(self.request, self.provider, self.model)
        return Usage(input_tokens=counted.tokens, output_tokens=estimate_tokens(self.chars), estimated=True)


class Cost:
    """Prices every stream; records each request to ``ledger`` and/or ``on_cost``."""

    def __init__(
        self,
        *,
        prices: PriceTable | None = None,
        ledger: Ledger | None = None,
        on_cost: Callable[[LedgerEntry], object] | None = None,
        buffer: int = 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.prices = prices if prices is not None else default_table()
        self.ledger = ledger
        self.writer = LedgerWriter(ledger, buffer=buffer) if ledger is not None else None
        self._on_cost = on_cost
        self._clock = clock
        self._warned: set[tuple[str, str]] = set()

    def __repr__(self) -> str:
        return f"Cost(prices checked {self.prices.checked}, ledger={self.ledger!r})"

    def __call__(self, inner: Handler) -> Handler:
        async def handler(request: ChatRequest) -> AsyncIterator[Event]:
            tally = _Tally(request, time.monotonic())
            terminal: Finish | Error | None = None
            stream = inner(request)
            try:
                async for event in stream:
                    if event.__class__ is TextDelta:
                        # The bulk of every stream, counted here without the dispatch below.
                        tally.chars += len(event.text)
                        yield event
                        continue
                    if isinstance(event, Usage):
                        tally.usage = event
                        yield event
                        tally.cost = self._price(tally, event)
                        if tally.cost is not None:
                            yield tally.cost
                        continue
                    if isinstance(event, (Finish, Error)):
                        terminal = event  # nothing more is read
                        break
                    tally.observe(event)
                    yield event
                if terminal is None:  # the inner stream ran dry: it ends here, as EventStream's guard would end it
                    terminal = ran_dry(tally.provider)
                tally.status = "finish" if isinstance(terminal, Finish) else terminal.code
                if tally.usage is None and tally.billable(terminal if isinstance(terminal, Error) else None):
                    # Ended without usage (an operator inside cut it): price what was seen.
                    tally.usage = tally.estimate()
                    tally.cost = self._price(tally, tally.usage)
                    if tally.cost is not None:
                        yield tally.cost
            finally:
                try:
                    self._record(tally)
                finally:
                    await stream.aclose()  # type: ignore[attr-defined]
            # Recorded and closed: now the consumer may have the end.
            yield terminal

        return keeps_invariants(handler)

    def _price(self, tally: _Tally, usage: Usage) -> CostEvent | None:
        # The model the provider says answered (a dated snapshot), else the one asked for.
        found = self.prices.lookup(tally.provider, tally.model)
        if found is None and tally.requested != (tally.provider, tally.model):
            found = self.prices.lookup(*tally.requested)
        if found is not None:
            return found.cost(usage)
        key = (tally.provider, tally.model)
        if key not in self._warned and len(self._warned) < _MAX_WARNED:
            self._warned.add(key)
            log.warning(
                "no price for %s:%s (price table checked %s): its cost is recorded as unknown, not as 0",
                tally.provider,
                tally.model,
                self.prices.checked,
            )
        return None

    def _record(self, tally: _Tally) -> None:
        """One ledger row for the call, whatever way it ended; never raises."""
        if self.writer is None and self._on_cost is None:
            return
        status = tally.status or "cancelled"
        usage, cost = tally.usage, tally.cost
        if usage is None:
            usage = tally.estimate() if status == "cancelled" and tally.billable(None) else Usage()
        cost_usd: float | None
        if cost is None and (usage.input_tokens or usage.output_tokens or usage.cache_read_tokens):
            cost = self._price(tally, usage)
            cost_usd = cost.usd if cost is not None else None
        elif cost is None:
            cost_usd = 0.0  # nothing was sent or billed: a real zero
        else:
            cost_usd = cost.usd
        entry = LedgerEntry(
            request_id=tally.request.metadata.get("request_id") or uuid.uuid4().hex,
            ts=self._clock(),
            tenant=request_tenant(tally.request),
            provider=tally.provider,
            model=tally.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cost_usd=cost_usd,
            estimated=usage.estimated or (cost is not None and cost.estimated),
            status=status,
            latency_ms=(time.monotonic() - tally.t0) * 1000.0,
        )
        if self._on_cost is not None:
            try:
                self._on_cost(entry)
            except Exception:  # a callback's bug must not break the stream's cleanup
                log.exception("the on_cost callback failed")
        if self.writer is not None:
            self.writer.submit(entry)

    # -- lifecycle (the ledger writer) -------------------------------------------------------

    async def flush(self) -> None:
        """Wait until every request recorded so far is in the ledger (or dropped)."""
        if self.writer is not None:
            await self.writer.flush()

    async def aclose(self) -> None:
        """Flush the ledger writer and stop it; the ledger itself stays open (it is the caller's)."""
        if self.writer is not None:
            await self.writer.aclose()

    async def __aenter__(self) -> Cost:
        if self.writer is not None:
            await self.writer.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.writer is not None:
            await self.writer.__aexit__(exc_type, exc, tb)
