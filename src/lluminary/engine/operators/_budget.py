"""Budget: per-tenant spend limits, checked before a request and enforced while it streams.

``limits`` maps a tenant (``request.metadata["tenant"]``, else ``"default"``) to
USD limits per period, ``{"acme": {"day": 5.0, "month": 100.0}}``; periods are
UTC calendar days and months. ``default_limit`` applies to tenants not listed
(None: they are not limited).

- Before: the tenant's spend in each period (from the ledger, which the Cost
  operator writes) plus what its other streams in this process have run up so
  far. If a period is already spent, the stream is one ``error`` event with code
  ``budget_exceeded`` and the request never goes upstream.
- During: after each piece of content the running cost of this stream is
  estimated from what has arrived (the request's input tokens, four characters
  per output token, or the ``usage``/``cost`` events once they come) and priced
  with the price table. When spend plus that crosses a limit, the upstream is
  closed at once (no further bytes are read from the provider) and the stream
  ends with an estimated ``usage`` and an ``error`` ``budget_exceeded``.
- Alerts: the first time a tenant's spend in a period reaches each of
  ``alert_thresholds`` (fractions of the limit), a ``budget-alert`` event goes
  downstream, a warning is logged and, with ``webhook``, the event's JSON is
  POSTed there (fire-and-forget: bounded in number and time, failures logged,
  nothing but the alert in the body). Each threshold alerts once per period.

Put it inside Cost (``Engine([Cost(ledger=…), Budget(ledger), Retry(), …])``)
so the stream it cuts is priced and recorded with status ``budget_exceeded``.
Spend from requests that finished a moment ago may still be on its way to the
ledger (the Cost operator writes in the background); budgets are as precise as
that. A ledger that cannot be read fails open (a warning; ``fail_open=False``
refuses the request instead). A model without a price cannot be metered while
it streams: it is checked before only (``unknown_price="deny"`` refuses it).
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Final, Literal
from urllib.parse import urlsplit

from lluminary.engine._operator import Handler
from lluminary.engine.operators._cost import request_tenant
from lluminary.errors import ConfigError
from lluminary.events import (
    BudgetAlert,
    ChatRequest,
    Error,
    Event,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolArgsDelta,
    ToolCallStart,
    Usage,
    encode_event,
    is_content,
)
from lluminary.events import Cost as CostEvent
from lluminary.ledger import Ledger
from lluminary.pricing import ModelPrice, PriceTable, default_table
from lluminary.providers._decoder import estimate_tokens
from lluminary.providers._registry import parse_model
from lluminary.tokens import count_tokens

__all__ = ["PERIODS", "Budget", "period_start"]

log = logging.getLogger("lluminary.budget")

Period = Literal["day", "month"]
PERIODS: Final[tuple[Period, ...]] = ("day", "month")


def period_start(period: str, now: float) -> tuple[float, str]:
    """The start of the UTC ``period`` containing ``now``, and its name (``2026-11-27``, ``2026-11``)."""
    t = time.gmtime(now)
    if period == "day":
        return float(calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0))), time.strftime("%Y-%m-%d", t)
    if period == "month":
        return float(calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0))), time.strftime("%Y-%m", t)
    raise ValueError(f"unknown budget period {period!r}; use one of {', '.join(PERIODS)}")


class _Window:
    """One limited period of one request: its limit and the ledger's spend before this stream."""

    __slots__ = ("key", "limit", "period", "spent")

    def __init__(self, period: str, limit: float, key: str, spent: float) -> None:
        self.period, self.limit, self.key, self.spent = period, limit, key, spent


class Budget:
    def __init__(
        self,
        ledger: Ledger,
        limits: Mapping[str, Mapping[str, float]] | None = None,
        *,
        default_limit: Mapping[str, float] | None = None,
        alert_thresholds: Sequence[float] = (0.5, 0.8, 1.0),
        webhook: str | None = None,
        prices: PriceTable | None = None,
        fail_open: bool = True,
        unknown_price: Literal["allow", "deny"] = "allow",
        webhook_timeout: float = 5.0,
        max_pending_webhooks: int = 16,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ledger = ledger
        self.limits = {tenant: _check_limits(tenant, lim) for tenant, lim in (limits or {}).items()}
        self.default_limit = _check_limits("default_limit", default_limit) if default_limit else None
        if not all(0 < t <= 1 for t in alert_thresholds):
            raise ValueError("alert thresholds are fractions of a limit, in (0, 1]")
        self.alert_thresholds = tuple(sorted(set(alert_thresholds)))
        self.prices = prices if prices is not None else default_table()
        self.fail_open = fail_open
        self.unknown_price = unknown_price
        self._webhook = _Webhook(webhook, webhook_timeout, max_pending_webhooks) if webhook else None
        self._clock = clock
        # Running cost of streams in flight, per tenant: concurrent streams see each other.
        self._inflight: dict[str, float] = {}
        # (tenant, period) → (period key, thresholds alerted): one entry per limit, not per day.
        self._alerted: dict[tuple[str, str], tuple[str, set[float]]] = {}
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        return f"Budget(tenants={sorted(self.limits)}, default_limit={self.default_limit})"

    def __call__(self, inner: Handler) -> Handler:
        async def handler(request: ChatRequest) -> AsyncIterator[Event]:
            tenant = request_tenant(request)
            limits = self.limits.get(tenant, self.default_limit)
            price, refusal = self._price_for(request, limits)
            windows: list[_Window] = []
            if limits and refusal is None:
                windows, refusal = await self._windows(tenant, limits)
            if refusal is not None:
                yield refusal
                return
            others = self._inflight.get(tenant, 0.0)
            for window in windows:
                for alert in self._alerts(tenant, window, window.spent + others):
                    yield alert
            stream = inner(request)
            meter = _Meter(request, price) if windows and price is not None else None
            running = 0.0
            try:
                async for event in stream:
                    yield event
                    if meter is None or not meter.observe(event):
                        continue
                    usd = meter.usd
                    self._inflight[tenant] = self._inflight.get(tenant, 0.0) + usd - running
                    running = usd
                    alerts: list[BudgetAlert] = []
                    over: _Window | None = None
                    for window in windows:
                        total = window.spent + self._inflight[tenant]
                        alerts += self._alerts(tenant, window, total)
                        if over is None and total >= window.limit:
                            over = window
                    if over is not None and is_content(event):
                        # Close the upstream before anything else: not one more byte is read.
                        # (Crossing on the final usage or cost lets the finished stream finish.)
                        await stream.aclose()  # type: ignore[attr-defined]
                        for alert in alerts:
                            yield alert
                        if meter.usage is None:
                            yield meter.estimate()
                        yield _exceeded(tenant, over, over.spent + self._inflight[tenant])
                        return
                    for alert in alerts:
                        yield alert
            finally:
                if running:
                    left = self._inflight.get(tenant, 0.0) - running
                    if left > 1e-12:
                        self._inflight[tenant] = left
                    else:
                        self._inflight.pop(tenant, None)
                await stream.aclose()  # type: ignore[attr-defined]

        return handler

    def _price_for(
        self, request: ChatRequest, limits: Mapping[str, float] | None
    ) -> tuple[ModelPrice | None, Error | None]:
        if not limits:
            return None, None
        try:
            provider, model = parse_model(request.model)
        except ConfigError:
            return None, None  # the engine reports the bad model string itself
        price = self.prices.lookup(provider, model)
        if price is None:
            if self.unknown_price == "deny":
                return None, Error(
                    code="budget_exceeded",
                    message=f"no price is known for {provider}:{model}, so its budget cannot be enforced",
                )
            name = f"{provider}:{model}"
            if name not in self._warned and len(self._warned) < 1024:
                self._warned.add(name)
                log.warning("no price for %s: its streams are checked against the budget only before", name)
        return price, None

    async def _windows(self, tenant: str, limits: Mapping[str, float]) -> tuple[list[_Window], Error | None]:
        now = self._clock()
        others = self._inflight.get(tenant, 0.0)
        windows: list[_Window] = []
        for period, limit in limits.items():
            start, key = period_start(period, now)
            try:
                spent = await self.ledger.spend(tenant, start)
            except Exception as exc:  # noqa: BLE001 - any ledger failure: fail open or closed, as configured
                if not self.fail_open:
                    return [], Error(
                        code="budget_exceeded",
                        message=f"the budget of tenant {tenant!r} cannot be checked: the ledger is unavailable",
                    )
                log.warning("cannot read spend of tenant %r (%s); the request is let through", tenant, exc)
                spent = 0.0
            window = _Window(period, limit, key, spent)
            if spent + others >= limit:
                return [], _exceeded(tenant, window, spent + others)
            windows.append(window)
        return windows, None

    def _alerts(self, tenant: str, window: _Window, total: float) -> list[BudgetAlert]:
        if window.limit <= 0:
            return []
        slot = (tenant, window.period)
        key, done = self._alerted.get(slot, (window.key, set()))
        if key != window.key:  # a new day or month: alert afresh
            key, done = window.key, set()
        self._alerted[slot] = (key, done)
        alerts = []
        for threshold in self.alert_thresholds:
            if threshold not in done and total >= threshold * window.limit:
                done.add(threshold)
                alert = BudgetAlert(tenant, window.period, threshold, total, window.limit)
                log.warning(
                    "tenant %r has spent %s of its %s budget of %s (%d%%)",
                    tenant,
                    _usd(total),
                    window.period,
                    _usd(window.limit),
                    round(threshold * 100),
                )
                if self._webhook is not None:
                    self._webhook.post(alert)
                alerts.append(alert)
        return alerts

    async def aclose(self) -> None:
        """Wait (bounded) for alert webhooks still being sent."""
        if self._webhook is not None:
            await self._webhook.aclose()


class _Meter:
    """The running cost of one stream, from what has arrived."""

    __slots__ = ("chars", "cost", "input_tokens", "price", "usage")

    def __init__(self, request: ChatRequest, price: ModelPrice) -> None:
        self.price = price
        self.input_tokens = count_tokens(request).tokens
        self.chars = 0
        self.usage: Usage | None = None
        self.cost: float | None = None

    def observe(self, event: Event) -> bool:
        """Take ``event`` into account; True if the running cost may have changed."""
        if isinstance(event, (TextDelta, ReasoningDelta, RefusalDelta)):
            self.chars += len(event.text)
        elif isinstance(event, ToolArgsDelta):
            self.chars += len(event.delta)
        elif isinstance(event, ToolCallStart):
            self.chars += len(event.name)
        elif isinstance(event, Usage):
            self.usage = event
        elif isinstance(event, CostEvent):
            self.cost = event.usd
        else:
            return False
        return True

    def estimate(self) -> Usage:
        return Usage(input_tokens=self.input_tokens, output_tokens=estimate_tokens(self.chars), estimated=True)

    @property
    def usd(self) -> float:
        if self.cost is not None:
            return self.cost
        return self.price.cost(self.usage or self.estimate()).usd


def _exceeded(tenant: str, window: _Window, total: float) -> Error:
    return Error(
        code="budget_exceeded",
        message=f"the {window.period} budget of tenant {tenant!r} ({_usd(window.limit)}) is spent: {_usd(total)}",
        retryable=False,
    )


def _usd(value: float) -> str:
    """Dollars for people: cents for large amounts, significant digits for small ones."""
    return f"${value:,.2f}" if value >= 1 else f"${value:.4g}"


def _check_limits(tenant: str, limits: Mapping[str, float]) -> dict[str, float]:
    checked: dict[str, float] = {}
    for period, limit in limits.items():
        if period not in PERIODS:
            raise ValueError(f"budget of {tenant!r}: unknown period {period!r}; use {', '.join(PERIODS)}")
        if not (isinstance(limit, (int, float)) and math.isfinite(limit) and limit >= 0):
            raise ValueError(f"budget of {tenant!r}: the {period} limit must be a finite number of USD >= 0")
        checked[period] = float(limit)
    return checked


class _Webhook:
    """Fire-and-forget POSTs of alerts: at most ``max_pending`` at once, each within ``timeout``."""

    def __init__(self, url: str, timeout: float, max_pending: int) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("the budget webhook must be an http(s) URL")
        self.url = url
        # Logged instead of the URL: a webhook URL often carries its token in the path or query.
        self.where = f"{parts.scheme}://{parts.hostname}"
        self.timeout = timeout
        self.max_pending = max_pending
        self._tasks: set[asyncio.Task[None]] = set()

    def post(self, alert: BudgetAlert) -> None:
        if len(self._tasks) >= self.max_pending:
            log.warning("budget webhook %s is falling behind; an alert was not sent", self.where)
            return
        task = asyncio.get_running_loop().create_task(self._post(encode_event(alert)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, body: bytes) -> None:
        import aiohttp

        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(
                    self.url, data=body, headers={"content-type": "application/json"}, allow_redirects=False
                ) as resp,
            ):
                if resp.status >= 300:
                    log.warning("budget webhook %s answered HTTP %d", self.where, resp.status)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("budget webhook %s failed (%s)", self.where, type(exc).__name__)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
