"""Streams that end in every possible way leave no connection and no task behind.

A hundred streams, ten times the pool, run at once through a pool of ten
connections (aiohttp ``TCPConnector(limit=10)``) against the fault proxy, over
every provider's recording. They finish, fail over HTTP or in-band, are cut
(FIN or RST), stall until the idle timeout, or are dropped by their consumer at
a seeded random event, by ``break`` inside ``async with engine.stream()`` or by
cancelling the consuming task. Every stream is bounded by ``fail_after``: one
leaked connection and the streams queued behind it would wait for the pool
forever. Afterwards nothing is checked out of the pool, the proxy has seen every
client connection close (stalls are never released, so only the client can have
closed those), and ``asyncio.all_tasks()`` is back to what it was.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass

import aiohttp
import anyio
import pytest

from lluminary import Engine, Timeout
from lluminary.events import Error, Event, Finish
from lluminary.providers import AiohttpTransport
from tests.faults.proxy import FaultProxy, Plan
from tests.faults.streams import RECORDINGS, Recording
from tests.support import check_invariants

POOL = 10
STREAMS = 10 * POOL
IDLE = 0.3
KINDS = [
    "finish",
    "http-error",
    "in-band-error",
    "cut-fin",
    "cut-rst",
    "stall-timeout",
    "cancel-before-first-byte",
    "break",
    "cancel",
    "break-while-dripping",
]
GOOD = [r for rs in RECORDINGS.values() for r in rs if r.marker_end is not None]
FAILING = [r for rs in RECORDINGS.values() for r in rs if r.marker_end is None]
SERVER_ERROR = b'{"error": {"message": "boom", "type": "server_error"}}'


@dataclass
class Case:
    kind: str
    key: str
    rec: Recording
    plan: Plan
    stop_at: int | None = None  # the consumer leaves after this many events
    events: list[Event] | None = None


def events_before(rec: Recording, offset: int) -> int:
    """How many events the body's first ``offset`` bytes produce."""
    return len(rec.decoder().feed(rec.body[:offset]))


def first_event_offset(rec: Recording) -> int:
    """The fewest bytes that produce an event (so an idle timeout, not the first-event one, applies)."""
    low, high = 0, len(rec.body)
    while low < high:
        mid = (low + high) // 2
        low, high = (mid + 1, high) if events_before(rec, mid) == 0 else (low, mid)
    return low


def make_case(rng: random.Random, kind: str, key: str) -> Case:
    rec = rng.choice(FAILING if kind == "in-band-error" else GOOD)
    headers = {"content-type": rec.content_type}
    end = rec.marker_end or len(rec.body)
    if kind == "http-error":
        return Case(kind, key, rec, Plan(SERVER_ERROR, status=500, headers={"content-type": "application/json"}))
    if kind == "cut-fin":
        return Case(kind, key, rec, Plan(rec.body, headers=headers, cut_after=rng.randrange(end)))
    if kind == "cut-rst":
        plan = Plan(rec.body, headers=headers, framing="chunked", chunk_size=64, ending="rst")
        return Case(kind, key, rec, Plan(**{**_fields(plan), "cut_after": rng.randrange(len(plan.wire()[1]))}))
    if kind == "stall-timeout":
        first = first_event_offset(rec)
        if first >= end:  # the recording's only chunk holds the end marker
            return make_case(rng, kind, key)
        return Case(kind, key, rec, Plan(rec.body, headers=headers, stall_after=rng.randrange(first, end)))
    if kind == "cancel-before-first-byte":
        return Case(kind, key, rec, Plan(rec.body, headers=headers, first_byte_delay=30), stop_at=0)
    if kind in ("break", "cancel"):
        # All content arrives, then the stall: the consumer leaves while the server holds on.
        stall = end - 1
        available = events_before(rec, stall)
        if available == 0:  # the recording's only chunk holds the end marker
            return make_case(rng, kind, key)
        plan = Plan(rec.body, headers=headers, stall_after=stall)
        return Case(kind, key, rec, plan, stop_at=rng.randint(1, available))
    if kind == "break-while-dripping":
        plan = Plan(rec.body, headers=headers, chunk_size=40, interval=0.002)
        return Case(kind, key, rec, plan, stop_at=rng.randint(1, len(rec.reference) - 1))
    return Case(kind, key, rec, Plan(rec.body, headers=headers))


def _fields(plan: Plan) -> dict[str, object]:
    return {name: getattr(plan, name) for name in plan.__dataclass_fields__}


async def consume(engine: Engine, case: Case, stopped: anyio.Event) -> None:
    events: list[Event] = []
    case.events = events
    async with engine.stream(case.rec.request()) as stream:
        async for event in stream:
            events.append(event)
            if case.stop_at is not None and len(events) == case.stop_at:
                if case.kind == "cancel":
                    stopped.set()
                    await anyio.sleep_forever()  # cancelled from outside, while awaiting
                break


async def run_case(proxy: FaultProxy, engine: Engine, case: Case) -> None:
    with anyio.fail_after(10):  # a leaked connection would starve the pool: fail, don't hang
        if not case.kind.startswith("cancel"):
            await consume(engine, case, anyio.Event())
            return
        stopped = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume, engine, case, stopped)
            if case.stop_at == 0:
                await proxy.wait_request(case.key, 9)  # in flight, waiting for the first byte
            else:
                await stopped.wait()
            tg.cancel_scope.cancel()


@pytest.mark.parametrize("seed", [1, 2])
async def test_every_ending_releases_its_connection_and_its_task(proxy: FaultProxy, seed: int) -> None:
    rng = random.Random(f"cancellation-{seed}")
    kinds = [KINDS[i % len(KINDS)] for i in range(STREAMS)]
    rng.shuffle(kinds)
    cases = [make_case(rng, kind, f"s{seed}-{i}") for i, kind in enumerate(kinds)]
    baseline = set(asyncio.all_tasks())
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=POOL))
    transport = AiohttpTransport(session)
    try:
        async with anyio.create_task_group() as tg:
            for case in cases:
                proxy.push(case.key, case.plan)
                provider = case.rec.make_provider(proxy.url(case.key))
                # Only an idle cap: waiting for the pool must not count against the stream.
                engine = Engine([Timeout(idle=IDLE)], providers={case.rec.provider: provider}, transport=transport)
                tg.start_soon(run_case, proxy, engine, case)
        connector = session.connector
        assert connector is not None
        assert not connector._acquired, "a connection is still checked out of the pool"
        await proxy.wait_idle(5)  # stalls were never released: only the client can have closed them
        await asyncio.sleep(0)  # one loop turn for callbacks already scheduled
        assert set(asyncio.all_tasks()) == baseline, "a task outlived its stream"
    finally:
        await session.close()

    tally: Counter[str] = Counter()
    for case in cases:
        events = case.events
        assert events is not None
        exchanges = proxy.of(case.key)
        assert len(exchanges) == 1, case.kind
        terminal = events[-1] if events else None
        if case.stop_at is not None:
            assert len(events) == case.stop_at, case.kind
            assert not isinstance(terminal, (Finish, Error)), case.kind
            if case.kind != "break-while-dripping":  # the others left while the server held on
                assert exchanges[0].client_closed, f"{case.kind}: the proxy never saw the client close"
                assert exchanges[0].outcome == "client-gone", case.kind
            tally[case.kind] += 1
            continue
        check_invariants(events)
        assert isinstance(terminal, (Finish, Error))
        expected = {
            "finish": "finish",
            "http-error": "server",
            "cut-fin": "protocol",
            "cut-rst": "connection|protocol",
            "stall-timeout": "timeout",
        }.get(case.kind)
        got = "finish" if isinstance(terminal, Finish) else terminal.code
        if expected is not None:
            assert got in expected.split("|"), (case.kind, terminal)
        else:  # in-band error recordings keep their own code
            assert isinstance(terminal, Error), terminal
            assert got not in ("protocol", "connection", "timeout"), terminal
        if case.kind == "stall-timeout":
            assert exchanges[0].client_closed, f"{case.kind}: the timed-out connection was not closed"
        tally[f"{case.kind}:{got}"] += 1
    print(f"\ncancellation seed {seed}: {dict(sorted(tally.items()))}")
    assert len({c.kind for c in cases}) == len(KINDS)
