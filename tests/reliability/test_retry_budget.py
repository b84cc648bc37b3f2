"""RetryBudget: the arithmetic with an injected clock, and a total outage over loopback HTTP.

The outage test is the point of a budget: with ``Retry(max_attempts=5)`` alone a
dead upstream receives five attempts per request; with a shared budget it
receives at most ``(1 + ratio)`` per request once traffic is past the floor.
"""

from __future__ import annotations

import threading

import anyio
import pytest

from lluminary import Engine, Retry
from lluminary.engine.operators._budget_retry import RetryBudget
from lluminary.events import ChatRequest, Error, Finish, Message
from lluminary.events import Retry as RetryEvent
from lluminary.providers import create_provider
from tests.support import ReplayServer, Reply, fixture_bytes

OPENAI_TEXT = fixture_bytes("openai_chat", "text_stream_include_usage.sse")
OUTAGE = Reply(
    b'{"error": {"message": "service unavailable", "type": "server_error"}}',
    status=503,
    headers={"content-type": "application/json"},
)
REQUEST = ChatRequest(model="openai:gpt-4o-mini", messages=[Message.user("hi")])


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def test_the_floor_allows_a_few_retries_with_no_traffic() -> None:
    budget = RetryBudget(ratio=0.2, min_retries_per_second=0.5, window=10.0, clock=Clock())
    assert budget.floor == 5.0
    assert [budget.try_retry() for _ in range(6)] == [True] * 5 + [False]
    assert budget.counts() == (0, 5)  # a refused retry is not counted


def test_retries_are_a_fraction_of_requests() -> None:
    budget = RetryBudget(ratio=0.2, min_retries_per_second=0.0, clock=Clock())
    assert not budget.try_retry()
    for _ in range(10):
        budget.record_request()
    assert [budget.try_retry() for _ in range(3)] == [True, True, False]
    for _ in range(5):
        budget.record_request()
    assert [budget.try_retry() for _ in range(2)] == [True, False]
    assert budget.counts() == (15, 3)


def test_the_window_slides() -> None:
    clock = Clock()
    budget = RetryBudget(ratio=1.0, min_retries_per_second=0.0, window=10.0, slots=10, clock=clock)
    for _ in range(4):
        budget.record_request()
    clock.now += 5.0
    for _ in range(4):
        budget.record_request()
    assert budget.counts() == (8, 0)
    clock.now += 5.5  # the first four are now older than the window
    assert budget.counts() == (4, 0)
    assert [budget.try_retry() for _ in range(5)] == [True] * 4 + [False]
    clock.now += 20.0  # everything has slid out
    assert budget.counts() == (0, 0)
    assert not budget.try_retry()


def test_one_budget_can_be_shared_across_threads() -> None:
    budget = RetryBudget(ratio=0.5, min_retries_per_second=0.0)
    allowed: list[bool] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(1000):
            budget.record_request()
            granted = budget.try_retry()
            with lock:
                allowed.append(granted)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    requests, retries = budget.counts()
    assert requests == 4000
    assert retries == sum(allowed) == 2000  # exactly ratio * requests: no lost or double counts


def test_configuration_is_checked() -> None:
    with pytest.raises(ValueError, match="ratio"):
        RetryBudget(ratio=-0.1)
    with pytest.raises(ValueError, match="window"):
        RetryBudget(window=0)
    with pytest.raises(ValueError, match="min_retries_per_second"):
        RetryBudget(min_retries_per_second=float("nan"))
    assert "ratio=0.2" in repr(RetryBudget())


async def outage(requests: int, retry: Retry) -> tuple[int, list[Error]]:
    """Send ``requests`` requests, 25 at a time, to an upstream that answers 503 to all."""
    errors: list[Error] = []
    async with ReplayServer([OUTAGE]) as server:
        provider = create_provider("openai", api_key="sk-test", base_url=server.url + "/v1")
        async with Engine([retry], providers={"openai": provider}) as engine:
            limiter = anyio.CapacityLimiter(25)

            async def one() -> None:
                async with limiter, engine.stream(REQUEST) as stream:
                    events = [event async for event in stream]
                assert isinstance(events[-1], Error)
                assert all(isinstance(e, RetryEvent) for e in events[:-1])
                errors.append(events[-1])

            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    for _ in range(requests):
                        tg.start_soon(one)
        return len(server.requests), errors


async def test_an_outage_without_a_budget_multiplies_the_load() -> None:
    attempts, errors = await outage(40, Retry(max_attempts=5, base_delay=0.0))
    assert attempts == 5 * 40
    assert len(errors) == 40


async def test_an_outage_with_a_budget_stays_within_1_2x_requests() -> None:
    requests = 500
    budget = RetryBudget(ratio=0.2, min_retries_per_second=1.0, window=10.0)
    attempts, errors = await outage(requests, Retry(max_attempts=5, base_delay=0.0, budget=budget))
    print(f"outage: {attempts} attempts for {requests} requests = {attempts / requests:.3f}x (floor {budget.floor:g})")
    assert len(errors) == requests
    assert all((e.code, e.status) == ("overloaded", 503) for e in errors)  # passed on as is
    assert attempts <= 1.2 * requests
    assert attempts > requests  # the budget did allow some retries
    assert budget.counts() == (requests, attempts - requests)


async def test_rare_failures_are_all_retried_under_a_budget() -> None:
    # Sequential requests; every fifth one fails once and then succeeds.
    replies: list[Reply] = []
    for i in range(50):
        if i % 5 == 0:
            replies.append(OUTAGE)
        replies.append(Reply(OPENAI_TEXT))
    budget = RetryBudget()
    async with ReplayServer(replies) as server:
        provider = create_provider("openai", api_key="sk-test", base_url=server.url + "/v1")
        async with Engine([Retry(base_delay=0.0, budget=budget)], providers={"openai": provider}) as engine:
            for _ in range(50):
                with anyio.fail_after(10):
                    async with engine.stream(REQUEST) as stream:
                        events = [event async for event in stream]
                assert isinstance(events[-1], Finish)
    assert len(server.requests) == 60
    assert budget.counts() == (50, 10)


async def test_one_budget_is_shared_by_two_engines() -> None:
    budget = RetryBudget(ratio=0.0, min_retries_per_second=0.3, window=10.0)  # three retries in all
    async with ReplayServer([OUTAGE]) as server:
        provider = create_provider("openai", api_key="sk-test", base_url=server.url + "/v1")
        engines = [
            Engine([Retry(max_attempts=3, base_delay=0.0, budget=budget)], providers={"openai": provider})
            for _ in range(2)
        ]
        retries = []
        for engine in engines * 2:
            async with engine.stream(REQUEST) as stream:
                events = [event async for event in stream]
            retries.append(sum(isinstance(e, RetryEvent) for e in events))
        for engine in engines:
            await engine.aclose()
    assert retries == [2, 1, 0, 0]
    assert len(server.requests) == 4 + 3
