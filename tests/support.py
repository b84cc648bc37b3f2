"""Shared test helpers: recorded fixtures, re-chunking, invariant checks and a loopback server.

The only thing tests fake is the provider's HTTP server. :class:`ReplayServer` is
a real aiohttp server on 127.0.0.1 that answers with recorded bytes, optionally
in small pieces, slowly, or cut off after N bytes.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import msgspec
from aiohttp import web
from hypothesis import strategies as st

from lluminary.events import (
    Error,
    Event,
    Finish,
    ToolArgsDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from lluminary.providers import Decoder

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_bytes(provider: str, name: str) -> bytes:
    return (FIXTURES / provider / name).read_bytes()


def jsonl_to_sse(path: Path, *, event_names: bool) -> bytes:
    """Re-wrap a ``*.chunks.jsonl`` recording (one data payload per line) as SSE."""
    out = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        prefix = f"event: {json.loads(line)['type']}\n" if event_names else ""
        out.append(f"{prefix}data: {line}\n\n")
    return "".join(out).encode()


def split(body: bytes, cuts: Iterable[int]) -> list[bytes]:
    """``body`` split at the given offsets (duplicates and out-of-range offsets are ignored)."""
    points = sorted({c for c in cuts if 0 < c < len(body)})
    pieces, last = [], 0
    for p in points:
        pieces.append(body[last:p])
        last = p
    pieces.append(body[last:])
    return pieces


def decode(factory: Callable[[], Decoder], pieces: Sequence[bytes]) -> list[Event]:
    decoder = factory()
    events: list[Event] = []
    for piece in pieces:
        events.extend(decoder.feed(piece))
    events.extend(decoder.close())
    return events


def cut_points(body: bytes, max_cuts: int = 40) -> st.SearchStrategy[list[int]]:
    """Hypothesis: arbitrary byte offsets at which to re-split ``body``."""
    return st.lists(st.integers(min_value=1, max_value=max(1, len(body) - 1)), max_size=max_cuts)


def check_invariants(events: Sequence[Event]) -> None:
    """The DESIGN.md stream invariants, for any stream."""
    assert events, "a stream must produce at least its terminal event"
    terminals = [i for i, e in enumerate(events) if isinstance(e, (Finish, Error))]
    assert terminals == [len(events) - 1], f"exactly one terminal event, last; got {terminals} of {len(events)}"
    if isinstance(events[-1], Finish):
        usages = [i for i, e in enumerate(events) if isinstance(e, Usage)]
        assert usages, "usage (reported or estimated) must come before finish"
    open_calls: dict[int, list[str]] = {}
    seen: set[int] = set()
    for event in events:
        if isinstance(event, ToolCallStart):
            assert event.index not in seen, f"tool call index {event.index} reused"
            seen.add(event.index)
            open_calls[event.index] = []
        elif isinstance(event, ToolArgsDelta):
            assert event.index in open_calls, "args delta outside its call"
            open_calls[event.index].append(event.delta)
        elif isinstance(event, ToolCallEnd):
            assert event.index in open_calls, "tool-call-end without start"
            text = "".join(open_calls.pop(event.index))
            assert msgspec.json.decode(text) == event.arguments, "deltas must concatenate to the arguments"
    if isinstance(events[-1], Finish):
        assert not open_calls, f"tool calls left open at finish: {sorted(open_calls)}"


def without_ids(events: Sequence[Event]) -> list[dict[str, Any]]:
    return [msgspec.to_builtins(e) for e in events]


# -- the loopback server ------------------------------------------------------------------


@dataclass
class Reply:
    """One canned HTTP response."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "text/event-stream"})
    chunk_size: int | None = None  # send in pieces of this size
    delay: float = 0.0  # seconds between pieces
    cut_after: int | None = None  # close the connection after this many body bytes
    stall_after: int | None = None  # stop sending (but keep the connection) after this many bytes


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class ReplayServer:
    """A real HTTP server on 127.0.0.1 that replays :class:`Reply` objects in order.

    It runs in its own thread with its own event loop, so the test's loop holds
    only the client's tasks (which lets tests assert that none is left behind)
    and a stalled reply cannot block the client. The last reply repeats once the
    list runs out. Every request is recorded in ``requests``; ``open_responses``
    counts responses still being written.
    """

    def __init__(self, replies: Sequence[Reply] = ()) -> None:
        self.replies = list(replies)
        self.requests: list[Seen] = []
        self.open_responses = 0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def release_stalls(self) -> None:
        """Let stalled replies continue (thread-safe)."""
        if self._loop is not None and self._release is not None:
            self._loop.call_soon_threadsafe(self._release.set)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Seen(request.method, request.path, request.query_string, dict(request.headers), body))
        index = min(len(self.requests) - 1, len(self.replies) - 1)
        reply = self.replies[index]
        resp = web.StreamResponse(status=reply.status, headers=reply.headers)
        self.open_responses += 1
        try:
            await resp.prepare(request)
            data = reply.body
            limit = len(data)
            if reply.cut_after is not None:
                limit = min(limit, reply.cut_after)
            if reply.stall_after is not None:
                limit = min(limit, reply.stall_after)
            size = reply.chunk_size or max(limit, 1)
            for start in range(0, limit, size):
                await resp.write(data[start : min(start + size, limit)])
                if reply.delay:
                    await asyncio.sleep(reply.delay)
            if reply.stall_after is not None and reply.stall_after < len(data):
                assert self._release is not None
                await self._release.wait()
                return resp
            if reply.cut_after is not None and reply.cut_after < len(data):
                # Drop the connection without finishing the chunked body.
                assert request.transport is not None
                request.transport.abort()
                return resp
            await resp.write_eof()
            return resp
        except (ConnectionError, RuntimeError):
            return resp  # the client went away: that is what some tests do
        finally:
            self.open_responses -= 1

    def _serve(self) -> None:
        async def run() -> None:
            self._loop = asyncio.get_running_loop()
            self._release = asyncio.Event()
            self._stop = asyncio.Event()
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = runner.addresses[0][1]
            self._ready.set()
            await self._stop.wait()
            self._release.set()
            await runner.cleanup()

        asyncio.run(run())

    async def __aenter__(self) -> ReplayServer:
        self._thread = threading.Thread(target=self._serve, name="replay-server", daemon=True)
        self._thread.start()
        await anyio.to_thread.run_sync(self._ready.wait)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            await anyio.to_thread.run_sync(self._thread.join)
