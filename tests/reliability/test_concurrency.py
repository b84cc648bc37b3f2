"""Concurrency: the cap holds, waiters are admitted first come first served, slots always come back.

The cap is checked end to end over loopback HTTP, with a probe inside the
operator that counts the streams open at once, and against the server, which
must never see more requests than there are slots. Ordering and release are
checked with scripted streams that a test opens and closes at will.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from lluminary import Engine
from lluminary.engine import EventStream, Handler, compose
from lluminary.engine.operators._concurrency import Concurrency
from lluminary.events import ChatRequest, Error, Event, Finish, Message, Start, TextDelta, Usage
from lluminary.providers import create_provider
from tests.support import ReplayServer, Reply, check_invariants, fixture_bytes

OPENAI_TEXT = fixture_bytes("openai_chat", "text_stream_include_usage.sse")


def request(model: str = "openai:gpt-4o-mini", tag: str = "") -> ChatRequest:
    return ChatRequest(model=model, messages=[Message.user("hi")], metadata={"tag": tag})


class Probe:
    """An operator that counts the streams open inside it, and the most at once."""

    def __init__(self) -> None:
        self.open = 0
        self.peak = 0
        self.admitted: list[str] = []

    def __call__(self, inner: Handler) -> Handler:
        async def handler(req: ChatRequest) -> AsyncIterator[Event]:
            self.open += 1
            self.peak = max(self.peak, self.open)
            self.admitted.append(req.metadata["tag"])
            stream = inner(req)
            try:
                async for event in stream:
                    yield event
            finally:
                self.open -= 1
                await stream.aclose()  # type: ignore[attr-defined]

        return handler


class Gate:
    """A scripted upstream: each stream starts, then waits until the test lets it end."""

    def __init__(self) -> None:
        self.release: dict[str, anyio.Event] = {}
        self.fail: set[str] = set()

    async def __call__(self, req: ChatRequest) -> AsyncIterator[Event]:
        tag = req.metadata["tag"]
        yield Start(tag, "openai", "m")
        await self.release.setdefault(tag, anyio.Event()).wait()
        if tag in self.fail:
            yield Error("server", "boom", retryable=True, status=500)
            return
        yield TextDelta(tag)
        yield Usage(1, 1)
        yield Finish("stop")

    def open(self, tag: str) -> None:
        self.release.setdefault(tag, anyio.Event()).set()


def pipeline(limit: Concurrency, probe: Probe, gate: Gate) -> Handler:
    return compose(gate, [limit, probe])


async def test_never_more_than_n_in_flight_over_http() -> None:
    limit, probe = Concurrency(3), Probe()
    reply = Reply(OPENAI_TEXT, chunk_size=256, delay=0.01)  # each stream takes ~0.15 s
    async with ReplayServer([reply]) as server:
        provider = create_provider("openai", api_key="sk-test", base_url=server.url + "/v1")
        async with Engine([limit, probe], providers={"openai": provider}) as engine:
            results: list[list[Event]] = []

            async def one(i: int) -> None:
                async with engine.stream(request(tag=str(i))) as stream:
                    results.append([event async for event in stream])

            with anyio.fail_after(30):
                async with anyio.create_task_group() as tg:
                    for i in range(12):
                        tg.start_soon(one, i)
    assert probe.peak == 3  # the cap was reached, and never passed
    assert len(results) == len(server.requests) == 12
    for events in results:
        check_invariants(events)
        assert isinstance(events[-1], Finish)
    assert limit.in_flight("openai") == limit.queued("openai") == 0


async def test_the_server_sees_only_n_requests_while_the_rest_wait() -> None:
    stall = OPENAI_TEXT.index(b"London")
    limit = Concurrency(2)
    async with ReplayServer([Reply(OPENAI_TEXT, stall_after=stall)]) as server:
        provider = create_provider("openai", api_key="sk-test", base_url=server.url + "/v1")
        async with Engine([limit], providers={"openai": provider}) as engine:
            texts = 0
            two_texts = anyio.Event()

            async def one() -> None:
                nonlocal texts
                async with engine.stream(request()) as stream:
                    async for event in stream:
                        if isinstance(event, TextDelta) and event.text == "The":
                            texts += 1
                            if texts == 2:
                                two_texts.set()

            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    for _ in range(6):
                        tg.start_soon(one)
                    await two_texts.wait()  # two streams are mid-answer, stalled by the server
                    await wait_all_tasks_blocked()
                    assert (limit.in_flight("openai"), limit.queued("openai")) == (2, 4)
                    assert len(server.requests) == 2
                    server.release_stalls()
    assert len(server.requests) == 6


async def test_waiters_are_admitted_in_arrival_order() -> None:
    limit, probe, gate = Concurrency(1), Probe(), Gate()
    handler = pipeline(limit, probe, gate)
    order = [str(i) for i in range(8)]

    async def one(tag: str) -> None:
        async with EventStream(handler(request(tag=tag))) as stream:
            async for _ in stream:
                pass

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for tag in order:
                tg.start_soon(one, tag)
                await wait_all_tasks_blocked()  # this one is in line before the next arrives
            assert limit.queued("openai") == 7
            for tag in order:
                assert probe.admitted[-1] == tag  # only the head of the line got in
                gate.open(tag)
                await wait_all_tasks_blocked()
    assert probe.admitted == order
    assert probe.peak == 1


@pytest.mark.parametrize("how", ["finish", "error", "break", "cancel"])
async def test_the_slot_comes_back_however_the_stream_ends(how: str) -> None:
    limit, probe, gate = Concurrency(1), Probe(), Gate()
    handler = pipeline(limit, probe, gate)
    if how == "error":
        gate.fail.add("a")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            got_start = anyio.Event()
            last: list[Event] = []

            async def first() -> None:
                async with EventStream(handler(request(tag="a"))) as stream:
                    async for event in stream:
                        last.append(event)
                        if isinstance(event, Start):
                            got_start.set()
                            if how == "break":
                                break

            tg.start_soon(first)
            await got_start.wait()
            if how == "cancel":
                tg.cancel_scope.cancel()
            elif how in ("finish", "error"):
                gate.open("a")
        assert isinstance(last[-1], {"finish": Finish, "error": Error}.get(how, Start))
        assert limit.in_flight("openai") == 0
        gate.open("b")
        async with EventStream(handler(request(tag="b"))) as stream:
            events = [event async for event in stream]
    assert isinstance(events[-1], Finish)


async def test_a_waiter_cancelled_in_line_leaves_no_trace() -> None:
    limit, probe, gate = Concurrency(1), Probe(), Gate()
    handler = pipeline(limit, probe, gate)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as outer:
            outer.start_soon(_drain, handler, "a")
            await wait_all_tasks_blocked()
            async with anyio.create_task_group() as doomed:
                doomed.start_soon(_drain, handler, "b")
                await wait_all_tasks_blocked()
                assert limit.queued("openai") == 1
                doomed.cancel_scope.cancel()
            assert limit.queued("openai") == 0
            outer.start_soon(_drain, handler, "c")
            await wait_all_tasks_blocked()
            gate.open("a")
            gate.open("c")
    assert probe.admitted == ["a", "c"]
    assert limit.in_flight("openai") == 0


async def test_a_slot_handed_to_a_waiter_as_it_is_cancelled_goes_to_the_next() -> None:
    """The slot is handed over and the waiter cancelled before it runs: the slot must go on.

    anyio's cancel scopes defer cancelling a task whose wait has just completed, so
    this uses ``asyncio.Task.cancel()``, which lands at exactly that point.
    """
    limit, probe, gate = Concurrency(1), Probe(), Gate()
    handler = pipeline(limit, probe, gate)
    gate.open("a")  # "a" may finish, but we hold its stream open
    with anyio.fail_after(10):
        stream_a = EventStream(handler(request(tag="a")))
        assert isinstance(await stream_a.__anext__(), Start)
        doomed = asyncio.create_task(_drain(handler, "b"))
        await wait_all_tasks_blocked()
        async with anyio.create_task_group() as tg:
            tg.start_soon(_drain, handler, "c")
            await wait_all_tasks_blocked()
            assert limit.queued("openai") == 2
            await stream_a.aclose()  # hands the slot to "b" ...
            doomed.cancel()  # ... which is cancelled before it can run
            with pytest.raises(asyncio.CancelledError):
                await doomed
            gate.open("c")
    assert probe.admitted == ["a", "c"]
    assert limit.in_flight("openai") == limit.queued("openai") == 0


async def test_a_full_line_is_refused_at_once_with_overloaded() -> None:
    limit, probe, gate = Concurrency(1, max_queue=1), Probe(), Gate()
    handler = pipeline(limit, probe, gate)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(_drain, handler, "a")
            tg.start_soon(_drain, handler, "b")
            await wait_all_tasks_blocked()
            async with EventStream(handler(request(tag="c"))) as stream:
                refused = [event async for event in stream]
            assert len(refused) == 1
            assert isinstance(refused[0], Error)
            assert (refused[0].code, refused[0].retryable) == ("overloaded", True)
            gate.open("a")
            gate.open("b")
    assert probe.admitted == ["a", "b"]


async def test_keys_have_their_own_slots() -> None:
    limit, probe, gate = Concurrency(1), Probe(), Gate()
    handler = pipeline(limit, probe, gate)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(_drain, handler, "a", "openai:gpt-4o-mini")
            tg.start_soon(_drain, handler, "b", "anthropic:claude-3-opus-latest")
            await wait_all_tasks_blocked()
            assert (limit.in_flight("openai"), limit.in_flight("anthropic")) == (1, 1)
            assert probe.peak == 2
            gate.open("a")
            gate.open("b")
    assert limit._slots == {}  # idle keys are forgotten


def test_configuration_is_checked() -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        Concurrency(0)
    with pytest.raises(ValueError, match="max_queue"):
        Concurrency(1, max_queue=-1)


async def _drain(handler: Handler, tag: str, model: str = "openai:gpt-4o-mini") -> None:
    async with EventStream(handler(request(model, tag))) as stream:
        async for _ in stream:
            pass
