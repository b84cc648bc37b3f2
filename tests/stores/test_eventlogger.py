"""EventLogger end to end: recorded streams over loopback HTTP, logged to real Postgres, replayed.

The only fake is the provider's HTTP server (:class:`tests.support.ReplayServer`).
"""

from __future__ import annotations

import argparse
import io
import itertools
import logging
import os
import socket
import subprocess
import sys
import time
from typing import Any

import anyio
import anyio.to_thread
import pytest

from lluminary import Engine
from lluminary.commands import replay as replay_command
from lluminary.engine.operators._eventlog import EventLogger
from lluminary.events import ChatRequest, Event, Message, Start, TextDelta, encode_event
from lluminary.events import Retry as RetryEvent
from lluminary.providers import create_provider
from lluminary.stores.memory import MemoryEventLog
from lluminary.stores.postgres import PostgresEventLog, open_pool
from tests.support import ReplayServer, Reply, check_invariants, fixture_bytes

OPENAI_TEXT = fixture_bytes("openai_chat", "text_stream_include_usage.sse")
OPENAI_TOOLS = fixture_bytes("openai_chat", "tool_call_stream_include_usage.sse")
ANTHROPIC_THINKING = fixture_bytes("anthropic", "thinking_stream.sse")


def engine_for(server: ReplayServer, *operators: Any) -> Engine:
    providers = {
        "openai": create_provider("openai", api_key="sk-test", base_url=server.url + "/v1"),
        "anthropic": create_provider("anthropic", api_key="sk-ant-test", base_url=server.url),
    }
    return Engine(list(operators), providers=providers)


def request(model: str = "openai:gpt-4o-mini", **metadata: str) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message.user("What is the capital of the UK?")], metadata=metadata)


async def collect(engine: Engine, req: ChatRequest) -> list[Event]:
    async with engine.stream(req) as stream:
        return [event async for event in stream]


@pytest.mark.parametrize(
    ("body", "model"),
    [(OPENAI_TEXT, "openai:gpt-4o-mini"), (OPENAI_TOOLS, "openai:gpt-4o-mini"), (ANTHROPIC_THINKING, "anthropic:x")],
    ids=["openai-text", "openai-tools", "anthropic-thinking"],
)
async def test_logged_stream_replays_exactly(pg_dsn: str, pg_pool: Any, body: bytes, model: str) -> None:
    log = PostgresEventLog(pg_pool)
    async with (
        EventLogger(log) as logger,
        ReplayServer([Reply(body, chunk_size=11)]) as server,
        engine_for(server, logger) as engine,
    ):
        events = await collect(engine, request(model))
        await logger.flush()
    check_invariants(events)
    assert isinstance(events[0], Start)
    request_id = events[0].id

    logged = await log.read(request_id)
    assert [row.seq for row in logged] == list(range(len(events)))
    assert [row.event for row in logged] == [encode_event(e) for e in events]
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(logged))
    assert abs(logged[0].ts - time.time()) < 60
    assert (logger.logged, logger.dropped) == (len(events), 0)

    # `lluminary replay ID --events` re-emits exactly the same JSON lines ...
    out, err = io.BytesIO(), io.StringIO()
    status = await replay_command.replay(request_id, events=True, url=pg_dsn, out=out, err=err)
    assert status == 0, err.getvalue()
    assert out.getvalue() == b"".join(encode_event(e) + b"\n" for e in events)
    # ... and without --events, the text as `chat` prints it.
    out = io.BytesIO()
    status = await replay_command.replay(request_id, url=pg_dsn, out=out, err=io.StringIO())
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert status == 0
    assert out.getvalue().decode().startswith(text)


async def test_replay_as_a_command(pg_dsn: str, pg_pool: Any, unique: str) -> None:
    log = PostgresEventLog(pg_pool)
    async with (
        EventLogger(log) as logger,
        ReplayServer([Reply(OPENAI_TEXT)]) as server,
        engine_for(server, logger) as engine,
    ):
        events = await collect(engine, request(request_id=f"req-{unique}"))
        await logger.flush()
    env = {**os.environ, "LLUMINARY_DATABASE_URL": pg_dsn}
    command = [sys.executable, "-m", "lluminary.commands.replay", f"req-{unique}", "--events"]
    result = await anyio.to_thread.run_sync(
        lambda: subprocess.run(command, capture_output=True, env=env, timeout=60, check=False)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"".join(encode_event(e) + b"\n" for e in events)


async def test_metadata_request_id_wins(unique: str) -> None:
    log = MemoryEventLog()
    async with EventLogger(log) as logger, ReplayServer([Reply(OPENAI_TEXT)]) as server:
        async with engine_for(server, logger) as engine:
            events = await collect(engine, request(request_id=f"mine-{unique}"))
        await logger.flush()
    assert [r.seq for r in await log.read(f"mine-{unique}")] == list(range(len(events)))
    assert isinstance(events[0], Start)
    assert await log.read(events[0].id) == []


async def test_events_before_start_are_logged_under_the_start_id() -> None:
    # A 429 first: the Retry operator (inside the logger) emits `retry` before any `start`.
    from lluminary import Retry

    replies = [
        Reply(b"{}", status=429, headers={"content-type": "application/json", "retry-after": "0.01"}),
        Reply(OPENAI_TEXT),
    ]
    log = MemoryEventLog()
    async with EventLogger(log) as logger, ReplayServer(replies) as server:
        async with engine_for(server, logger, Retry(max_attempts=2)) as engine:
            events = await collect(engine, request())
        await logger.flush()
    assert isinstance(events[0], RetryEvent)
    start = next(e for e in events if isinstance(e, Start))
    logged = await log.read(start.id)
    assert [r.seq for r in logged] == list(range(len(events)))
    assert [r.event for r in logged] == [encode_event(e) for e in events]


async def test_an_unreachable_log_drops_from_the_log_never_from_the_stream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A real Postgres pool whose server is gone: every write fails at once.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pool = await open_pool(f"postgresql://nobody@127.0.0.1:{port}/x", min_size=0, migrate=False)
    caplog.set_level(logging.WARNING, logger="lluminary.eventlog")
    try:
        logger = EventLogger(PostgresEventLog(pool))
        async with ReplayServer([Reply(OPENAI_TEXT)]) as server, engine_for(server, logger) as engine:
            events = await collect(engine, request())
        await logger.flush()
        await logger.aclose()
    finally:
        await pool.close()
    check_invariants(events)
    assert logger.logged == 0
    assert logger.dropped == len(events)
    assert "events not logged" in caplog.text


async def test_a_slow_log_never_slows_the_stream() -> None:
    # A socket that accepts but never answers: the log's writer hangs, the buffer fills.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
        pool = await open_pool(f"postgresql://nobody@127.0.0.1:{port}/x", min_size=0, migrate=False, connect_timeout=30)
        logger = EventLogger(PostgresEventLog(pool), buffer=2, batch=1, write_timeout=30, flush_timeout=0.2)
        try:
            async with ReplayServer([Reply(OPENAI_TEXT)]) as server, engine_for(server, logger) as engine:
                started = anyio.current_time()
                events = await collect(engine, request())
                elapsed = anyio.current_time() - started
        finally:
            await logger.aclose()
            await pool.close()
    check_invariants(events)
    assert elapsed < 5  # nowhere near the 30 s the log would take
    assert logger.logged == 0
    assert logger.dropped == len(events)  # buffer overflow, then the unwritten rest at close


async def test_lazy_writer_without_async_with(unique: str) -> None:
    log = MemoryEventLog()
    logger = EventLogger(log)
    async with ReplayServer([Reply(OPENAI_TEXT)]) as server, engine_for(server, logger) as engine:
        events = await collect(engine, request(request_id=unique))
    await logger.aclose()  # flushes first
    assert len(await log.read(unique)) == len(events)
    assert logger.logged == len(events)


async def test_replay_reports_missing_and_failed_streams(pg_dsn: str, pg_pool: Any, unique: str) -> None:
    err = io.StringIO()
    assert await replay_command.replay(f"nothing-{unique}", url=pg_dsn, out=io.BytesIO(), err=err) == 1
    assert "no events logged" in err.getvalue()

    log = PostgresEventLog(pg_pool)
    error = b'{"type":"error","code":"overloaded","message":"busy","retryable":true,"provider":"anthropic"}'
    await log.append(f"failed-{unique}", 0, 1.0, b'{"type":"text-delta","text":"Hi","index":0}')
    await log.append(f"failed-{unique}", 2, 2.0, error)  # seq 1 was dropped while logging
    out, err = io.BytesIO(), io.StringIO()
    assert await replay_command.replay(f"failed-{unique}", url=pg_dsn, out=out, err=err) == 1
    assert out.getvalue() == b"Hi\n"
    assert "gaps" in err.getvalue()
    assert "error: overloaded" in err.getvalue()

    err = io.StringIO()
    assert await replay_command.replay("x", url="ftp://nowhere", out=io.BytesIO(), err=err) == 2


def test_replay_arguments() -> None:
    parser = argparse.ArgumentParser()
    replay_command.add_arguments(parser)
    args = parser.parse_args(["abc", "--events", "--database-url", "postgresql://h/db"])
    assert (args.request_id, args.events, args.database_url) == ("abc", True, "postgresql://h/db")
    assert replay_command.HELP
