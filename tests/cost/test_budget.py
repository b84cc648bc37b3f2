"""The Budget operator: refused before any upstream call, cut mid-stream, alerts and webhooks.

The mid-stream cut runs over real loopback HTTP: a long stream sent slowly in
small pieces, a transport that counts the bytes the client read, and the
server's own count of responses still being written, to show the upstream was
closed and not read any further once the budget was crossed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
import pytest

from lluminary import Engine
from lluminary.engine import EventStream, compose
from lluminary.engine.operators._budget import Budget, period_start
from lluminary.engine.operators._cost import Cost
from lluminary.events import BudgetAlert, ChatRequest, Error, Event, Finish, Message, Start, TextDelta, Usage
from lluminary.events import Cost as CostEvent
from lluminary.ledger import LedgerEntry, MemoryLedger, PostgresLedger
from lluminary.providers import AiohttpTransport, HttpRequest, HttpResponse, create_provider
from tests.support import ReplayServer, Reply, check_invariants

NOW = time.time()
JSON = {"content-type": "application/json"}


def request(tenant: str = "acme", model: str = "openai:gpt-4o") -> ChatRequest:
    return ChatRequest(model=model, messages=[Message.user("Write a long story.")], metadata={"tenant": tenant})


async def spent(ledger: MemoryLedger, tenant: str, usd: float) -> None:
    """Spend recorded earlier today by ``tenant``."""
    day, _ = period_start("day", NOW)
    await ledger.record(
        LedgerEntry(f"{tenant}-{usd}-{time.monotonic_ns()}", day + 1.0, tenant, "openai", "gpt-4o", cost_usd=usd)
    )


def openai_stream(pieces: int, text: str) -> tuple[bytes, list[int]]:
    """A Chat Completions SSE body of ``pieces`` text deltas; also where each SSE event ends."""
    events: list[dict[str, Any]] = [
        {"id": "c1", "model": "gpt-4o-2024-08-06", "choices": [{"index": 0, "delta": {"role": "assistant"}}]}
    ]
    events += [
        {"id": "c1", "model": "gpt-4o-2024-08-06", "choices": [{"index": 0, "delta": {"content": text}}]}
    ] * pieces
    events.append(
        {"id": "c1", "model": "gpt-4o-2024-08-06", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    )
    events.append(
        {
            "id": "c1",
            "model": "gpt-4o-2024-08-06",
            "choices": [],
            "usage": {"prompt_tokens": 12, "completion_tokens": 25 * pieces},
        }
    )
    chunks = [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]
    return b"".join(chunks), [len(c) for c in chunks]


class CountingTransport:
    """The default transport, counting the response bytes the client actually read."""

    def __init__(self) -> None:
        self.inner = AiohttpTransport()
        self.read = 0

    def open(self, http: HttpRequest) -> AbstractAsyncContextManager[HttpResponse]:
        return self._open(http)

    @asynccontextmanager
    async def _open(self, http: HttpRequest) -> AsyncIterator[HttpResponse]:
        async with self.inner.open(http) as resp:
            yield _Counted(resp, self)

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Counted:
    def __init__(self, resp: HttpResponse, owner: CountingTransport) -> None:
        self._resp, self._owner = resp, owner
        self.status, self.headers = resp.status, resp.headers

    async def iter_chunks(self) -> AsyncGenerator[bytes, None]:
        async for chunk in self._resp.iter_chunks():
            self._owner.read += len(chunk)
            yield chunk

    async def read(self, limit: int = 65536) -> bytes:
        return await self._resp.read(limit)


async def test_a_spent_budget_refuses_before_any_upstream_call() -> None:
    ledger = MemoryLedger()
    await spent(ledger, "acme", 5.0)
    cost = Cost(ledger=ledger)
    budget = Budget(ledger, {"acme": {"day": 5.0, "month": 100.0}})
    async with ReplayServer([Reply(b"never sent")]) as server:
        provider = create_provider("openai", api_key="sk-test", base_url=server.url + "/v1")
        async with Engine([cost, budget], providers={"openai": provider}) as engine:
            events = [e async for e in engine.stream(request())]
    await cost.aclose()
    assert len(events) == 1
    assert isinstance(events[0], Error)
    assert events[0].code == "budget_exceeded"
    assert "day budget of tenant 'acme'" in events[0].message
    assert server.requests == []  # not one byte went upstream
    assert ledger.entries[-1].status == "budget_exceeded"
    assert ledger.entries[-1].cost_usd == 0.0


async def test_crossing_the_budget_midway_closes_the_upstream_at_once() -> None:
    # gpt-4o output is $10/M: each 100-character piece (25 tokens) costs $0.00025.
    body, sizes = openai_stream(100, "abcd" * 25)
    ledger = MemoryLedger()
    cost = Cost(ledger=ledger)
    budget = Budget(ledger, {"acme": {"day": 0.002}})
    transport = CountingTransport()
    # One SSE event per write, 20 ms apart: sending all of it takes over two seconds.
    async with ReplayServer([Reply(body, chunk_size=max(sizes), delay=0.02)]) as server:
        provider = create_provider("openai", api_key="sk-test", base_url=server.url + "/v1")
        async with Engine([cost, budget], providers={"openai": provider}, transport=transport) as engine:
            events = [e async for e in engine.stream(request())]
            stopped = anyio.current_time()
            with anyio.fail_after(1.0):  # the server's next write fails: it cannot send the rest
                # Bounded polling: the server runs in its own thread and offers no event to wait on.
                while server.open_responses:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            gave_up_after = anyio.current_time() - stopped
        await transport.aclose()
    await cost.aclose()
    check_invariants(events)
    assert isinstance(events[-1], Error)
    assert events[-1].code == "budget_exceeded"
    texts = [e for e in events if isinstance(e, TextDelta)]
    assert 6 <= len(texts) <= 9  # ~0.002 / 0.00025 pieces, plus the input
    assert transport.read < len(body) // 5  # the client stopped reading: far from the 100 pieces
    assert gave_up_after < 1.0
    # The cut stream is priced and recorded as budget_exceeded (Cost sits outside Budget).
    assert [type(e) for e in events][-4:] == [BudgetAlert, Usage, CostEvent, Error]
    entry = ledger.entries[-1]
    assert entry.status == "budget_exceeded"
    assert entry.estimated
    assert entry.cost_usd is not None
    assert entry.cost_usd >= 0.002


# -- alerts, concurrency and configuration (scripted inner handlers) -------------------------------


def scripted(events: Sequence[Event], calls: list[int] | None = None) -> Any:
    async def handler(req: ChatRequest) -> AsyncIterator[Event]:
        if calls is not None:
            calls.append(1)
        for event in events:
            yield event

    return handler


def story(pieces: int, text: str = "abcd" * 25) -> list[Event]:
    return [Start("id", "openai", "gpt-4o"), *[TextDelta(text)] * pieces, Usage(12, 25 * pieces), Finish("stop")]


async def run(handler: Any, *operators: Any, req: ChatRequest | None = None) -> list[Event]:
    composed = compose(handler, list(operators))
    async with EventStream(composed(req or request())) as stream:
        return [event async for event in stream]


async def test_alerts_come_once_per_threshold_and_reach_the_webhook(caplog: pytest.LogCaptureFixture) -> None:
    ledger = MemoryLedger()
    cost = Cost(ledger=ledger)
    async with ReplayServer([Reply(b"", status=204, headers=JSON)]) as hook:
        budget = Budget(ledger, {"acme": {"day": 0.01}}, webhook=hook.url + "/alerts?token=s3cret")
        with caplog.at_level(logging.WARNING, logger="lluminary.budget"):
            first = await run(scripted(story(22)), cost, budget)  # ~$0.0055: past 50%
            await cost.flush()
            second = await run(scripted(story(14)), cost, budget)  # ~$0.009 in all: past 80%, not 100%
        await budget.aclose()
    await cost.aclose()
    alerts = [e for e in first + second if isinstance(e, BudgetAlert)]
    assert [(a.threshold, a.period, a.tenant, a.limit_usd) for a in alerts] == [
        (0.5, "day", "acme", 0.01),
        (0.8, "day", "acme", 0.01),
    ]
    assert alerts[0].spent_usd >= 0.005
    assert alerts[1].spent_usd >= 0.008
    assert isinstance(second[-1], Finish)  # under the limit: nothing was cut
    posted = [seen.json() for seen in hook.requests]
    assert [p["threshold"] for p in posted] == [0.5, 0.8]
    assert posted[0] == {"type": "budget-alert", **{k: getattr(alerts[0], k) for k in posted[0] if k != "type"}}
    assert all(seen.path == "/alerts" and seen.query == "token=s3cret" for seen in hook.requests)
    assert "has spent" in caplog.text
    assert "s3cret" not in caplog.text


async def test_concurrent_streams_of_a_tenant_count_against_one_budget() -> None:
    ledger = MemoryLedger()
    budget = Budget(ledger, {"acme": {"day": 0.003}})
    composed = compose(scripted(story(10)), [budget])
    alone = await run(scripted(story(10)), budget)  # ~$0.0025: fits the budget on its own
    assert isinstance(alone[-1], Finish)
    first = EventStream(composed(request()))
    seen = [await first.__anext__() for _ in range(11)]  # start and ten pieces, still open
    assert not any(isinstance(e, Error) for e in seen)
    async with EventStream(composed(request())) as second:
        cut = [e async for e in second]
    await first.aclose()
    # The second stream is cut as soon as both together pass the limit.
    assert isinstance(cut[-1], Error)
    assert cut[-1].code == "budget_exceeded"
    assert sum(isinstance(e, TextDelta) for e in cut) <= 3
    # Once the first stream is over (and nothing was recorded), the tenant has room again.
    third = await run(scripted(story(10)), budget)
    assert isinstance(third[-1], Finish)


async def test_tenants_without_a_limit_pass_and_default_limits_apply_to_the_rest() -> None:
    ledger = MemoryLedger()
    await spent(ledger, "other", 1.0)
    await spent(ledger, "free-rider", 1.0)
    budget = Budget(ledger, {"acme": {"day": 5.0}})
    assert isinstance((await run(scripted(story(2)), budget, req=request("free-rider")))[-1], Finish)
    strict = Budget(ledger, {"acme": {"day": 5.0}}, default_limit={"month": 0.5})
    events = await run(scripted(story(2)), strict, req=request("other"))
    assert [type(e) for e in events] == [Error]


async def test_an_unreadable_ledger_fails_open_or_closed_as_configured(
    pg_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = await PostgresLedger.open(pg_dsn)
    await ledger.pool.close()  # spend cannot be read
    try:
        with caplog.at_level(logging.WARNING, logger="lluminary.budget"):
            opened = await run(scripted(story(2)), Budget(ledger, {"acme": {"day": 1.0}}))
        assert isinstance(opened[-1], Finish)
        assert "cannot read spend" in caplog.text
        calls: list[int] = []
        closed = await run(scripted(story(2), calls), Budget(ledger, {"acme": {"day": 1.0}}, fail_open=False))
        assert [type(e) for e in closed] == [Error]
        assert "cannot be checked" in closed[0].message  # type: ignore[union-attr]
        assert calls == []
    finally:
        await ledger.aclose()


async def test_models_without_a_price_are_checked_before_only_or_refused() -> None:
    ledger = MemoryLedger()
    req = request(model="openai:my-private-model")
    allowed = await run(scripted(story(50)), Budget(ledger, {"acme": {"day": 0.0001}}), req=req)
    assert isinstance(allowed[-1], Finish)  # cannot be metered while streaming
    denied = await run(scripted(story(1)), Budget(ledger, {"acme": {"day": 1.0}}, unknown_price="deny"), req=req)
    assert [type(e) for e in denied] == [Error]
    assert "no price is known" in denied[0].message  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("limits", "kwargs", "match"),
    [
        ({"acme": {"week": 1.0}}, {}, "unknown period 'week'"),
        ({"acme": {"day": -1.0}}, {}, "finite number of USD"),
        ({"acme": {"day": float("nan")}}, {}, "finite number of USD"),
        ({}, {"alert_thresholds": (0.5, 1.5)}, "fractions of a limit"),
        ({}, {"webhook": "ftp://example.invalid/hook"}, "http"),
    ],
)
def test_bad_configuration_is_refused(limits: dict[str, dict[str, float]], kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Budget(MemoryLedger(), limits, **kwargs)


def test_periods_are_utc_calendar_days_and_months() -> None:
    ts = 1_795_814_861.0  # 2026-11-27T21:27:41Z
    assert period_start("day", ts) == (1_795_737_600.0, "2026-11-27")
    assert period_start("month", ts) == (1_793_491_200.0, "2026-11")
