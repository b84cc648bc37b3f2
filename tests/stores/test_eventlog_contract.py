"""One EventLog contract, run against the memory log and Postgres."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from lluminary.events import Finish, Start, TextDelta, encode_event
from lluminary.stores import EventLog, LoggedEvent
from lluminary.stores.memory import MemoryEventLog
from lluminary.stores.postgres import PostgresEventLog


@pytest.fixture(params=["memory", "postgres"])
async def log(request: pytest.FixtureRequest, pg_pool: Any) -> AsyncIterator[EventLog]:
    store: EventLog = MemoryEventLog() if request.param == "memory" else PostgresEventLog(pg_pool)
    yield store
    await store.aclose()


EVENTS = [
    encode_event(Start(id="msg_1", provider="openai", model="gpt-4o-mini")),
    encode_event(TextDelta(text="Hello, \x00 wörld")),
    encode_event(Finish(reason="stop")),
]


async def test_is_an_event_log(log: EventLog) -> None:
    assert isinstance(log, EventLog)


async def test_read_returns_events_in_sequence_order(log: EventLog, unique: str) -> None:
    now = time.time()
    for seq in (2, 0, 1):  # appended out of order, read in order
        await log.append(unique, seq, now + seq, EVENTS[seq])
    got = await log.read(unique)
    assert [e.seq for e in got] == [0, 1, 2]
    assert [e.event for e in got] == EVENTS
    assert all(e.request_id == unique for e in got)
    assert [e.ts for e in got] == pytest.approx([now, now + 1, now + 2], abs=1e-5)
    assert all(isinstance(e, LoggedEvent) and isinstance(e.event, bytes) for e in got)


async def test_unknown_request_reads_empty(log: EventLog, unique: str) -> None:
    assert await log.read(f"missing-{unique}") == []


async def test_requests_are_isolated(log: EventLog, unique: str) -> None:
    await log.append(f"{unique}-a", 0, 1.0, b'{"a":1}')
    await log.append(f"{unique}-b", 0, 2.0, b'{"b":1}')
    assert [e.event for e in await log.read(f"{unique}-a")] == [b'{"a":1}']
    assert [e.event for e in await log.read(f"{unique}-b")] == [b'{"b":1}']


async def test_a_repeated_append_keeps_the_first(log: EventLog, unique: str) -> None:
    await log.append(unique, 0, 1.0, b"first")
    await log.append(unique, 0, 2.0, b"second")  # e.g. retried after a lost connection
    got = await log.read(unique)
    assert [(e.seq, e.event) for e in got] == [(0, b"first")]


async def test_bytes_are_kept_exactly(log: EventLog, unique: str) -> None:
    raw = bytes(range(256))
    await log.append(unique, 0, 0.0, raw)
    assert (await log.read(unique))[0].event == raw


async def test_concurrent_appends(log: EventLog, unique: str) -> None:
    async with anyio.create_task_group() as tg:
        for seq in range(50):
            tg.start_soon(log.append, unique, seq, float(seq), f"e{seq}".encode())
    got = await log.read(unique)
    assert [e.seq for e in got] == list(range(50))
    assert [e.event for e in got] == [f"e{seq}".encode() for seq in range(50)]


async def test_append_many(log: EventLog, unique: str) -> None:
    rows = [LoggedEvent(request_id=unique, seq=i, ts=100.0 + i, event=EVENTS[i]) for i in range(3)]
    batch: Any = log  # both implementations offer the batch form the EventLogger uses
    await batch.append_many(rows[1:])
    await batch.append_many([rows[0], rows[1]])  # an overlapping retry: no duplicates
    await batch.append_many([])
    got = await log.read(unique)
    assert [(e.seq, e.event) for e in got] == [(r.seq, r.event) for r in rows]
    assert [e.ts for e in got] == pytest.approx([100.0, 101.0, 102.0])


async def test_memory_log_is_bounded_by_requests() -> None:
    log = MemoryEventLog(max_requests=3)
    for i in range(5):
        await log.append(f"r{i}", 0, 0.0, b"{}")
    assert await log.read("r0") == []
    assert await log.read("r1") == []
    assert [len(await log.read(f"r{i}")) for i in (2, 3, 4)] == [1, 1, 1]
