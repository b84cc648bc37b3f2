"""A fault-injecting HTTP/1.1 loopback proxy: cuts, resets, stalls, drips, 1-byte chunks, latency.

:class:`FaultProxy` listens on 127.0.0.1 only, in its own thread with its own
event loop (so the test's loop holds only the client's tasks, and a stalled
response cannot block the client). Each request gets the next :class:`Plan`
from a queue the test fills per *key*: a request for ``/k/<key>/…`` (use
:meth:`FaultProxy.url` as the provider's base URL) takes from that key's queue,
any other from the queue of key ``""``. The last plan of a queue is reused, so
one plan can serve a whole run. That makes each connection's faults exact and
deterministic even with a hundred streams in flight.

A plan either serves recorded bytes itself (``body``), which puts every cut at
an exact body offset, or forwards the request to an upstream server such as
:class:`tests.support.ReplayServer` (``body=None``) and applies its faults to
the bytes coming back. Faults, all optional and combinable:

- ``first_byte_delay``: latency before the response's first byte;
- ``chunk_size`` / ``interval``: re-chunk the body (1 gives one byte per write)
  and drip it, one piece per interval;
- ``stall_after``: send that many body bytes, then hold the connection open,
  sending nothing, until :meth:`FaultProxy.release_stalls` (then the rest is
  sent; a release lets every stall go on, later ones too) or until the client
  goes away;
- ``cut_after``: end the connection after that many body bytes;
- ``ending``: how the proxy ends a connection: ``"fin"`` (a clean close) or
  ``"rst"`` (SO_LINGER 0, so the kernel sends a reset); :meth:`Plan.reset`
  resets without sending a single byte.

With ``framing="close"`` (the default) the body is delimited by the end of the
connection, as HTTP/1.0 servers do, so a clean cut looks to the client exactly
like a complete response: only the provider's own end marker can tell them
apart, which is what the cut tests prove. ``"length"`` and ``"chunked"`` make a
cut visible at the HTTP layer, and with ``keep_alive`` the connection serves
further requests.

Every exchange is recorded (:class:`Exchange`, with monotonic timestamps), and
:meth:`FaultProxy.wait_idle` waits until every client connection has closed.
Every loop is bounded: by the body, by :data:`MAX_STALL`, by the request size
limits and by :data:`MAX_REQUESTS_PER_CONNECTION`.

``python -m tests.faults.proxy --serve FILE`` runs a plain origin in its own
process (the soak test uses it, so the server's memory is not the client's).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

import anyio

from tests.faults._wire import Conn, Ending, Gone, closing_head, drain, forward_head, once

__all__ = ["MAX_STALL", "Exchange", "FaultProxy", "Plan"]

HOST = "127.0.0.1"
#: The longest a stall holds, so a test that forgets to release cannot hang the run.
MAX_STALL = 60.0
MAX_REQUESTS_PER_CONNECTION = 100_000
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 429: "Too Many Requests", 500: "Internal Server Error"}

Framing = Literal["close", "length", "chunked"]


@dataclass(frozen=True, slots=True)
class Plan:
    """What one request gets. ``body=None`` forwards it to the proxy's upstream."""

    body: bytes | None = None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=lambda: {"content-type": "text/event-stream"})
    framing: Framing = "close"
    keep_alive: bool = False
    cut_after: int | None = None  # body bytes on the wire, then the connection ends
    ending: Ending = "fin"
    stall_after: int | None = None
    chunk_size: int | None = None
    interval: float = 0.0
    first_byte_delay: float = 0.0
    send_head: bool = True

    @classmethod
    def reset(cls) -> Plan:
        """Reset the connection as soon as the request is in, before any response byte."""
        return cls(body=b"", send_head=False, cut_after=0, ending="rst")

    def wire(self) -> tuple[bytes, bytes]:
        """The response head and the body as framed on the wire (origin plans only)."""
        body = self.body or b""
        lines = [f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Status')}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        if self.framing == "length":
            lines.append(f"content-length: {len(body)}")
        elif self.framing == "chunked":
            lines.append("transfer-encoding: chunked")
            size = self.chunk_size or max(len(body), 1)
            pieces = [body[i : i + size] for i in range(0, len(body), size)]
            body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
        lines.append("connection: keep-alive" if self.keep_alive and self.framing != "close" else "connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), body


@dataclass(slots=True)
class Exchange:
    """One request and what the proxy did with it. Times are ``time.monotonic()``."""

    key: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float
    first_byte_at: float | None = None
    finished_at: float | None = None
    sent: int = 0  # body bytes written
    outcome: str = "open"  # complete, cut, reset, client-gone, stall-timeout, upstream-error
    client_closed: bool = False  # the client closed its end before the proxy finished


class FaultProxy:
    """See the module docstring. ``async with FaultProxy(upstream=server.url) as proxy: …``."""

    def __init__(self, upstream: str | None = None, *, record: bool = True) -> None:
        self.upstream = _host_port(upstream) if upstream else None
        self.record = record
        self.exchanges: list[Exchange] = []
        self.port = 0
        self._queues: dict[str, deque[Plan]] = {}
        self._lock = threading.Lock()
        self._open = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._conns: set[Conn] = set()
        self._arrivals: dict[str, asyncio.Event] = {}  # used on the proxy's loop only

    # -- the test's side (any thread) ----------------------------------------------------

    def url(self, key: str = "") -> str:
        return f"http://{HOST}:{self.port}" + (f"/k/{key}" if key else "")

    def push(self, key: str, *plans: Plan) -> None:
        with self._lock:
            self._queues.setdefault(key, deque()).extend(plans)

    def of(self, key: str) -> list[Exchange]:
        with self._lock:
            return [ex for ex in self.exchanges if ex.key == key]

    @property
    def open_connections(self) -> int:
        return self._open

    def release_stalls(self) -> None:
        if self._loop is not None and self._release is not None:
            self._loop.call_soon_threadsafe(self._release.set)

    async def wait_idle(self, seconds: float = 5.0) -> None:
        """Wait until no client connection is open (TimeoutError after ``seconds``)."""
        assert self._loop is not None
        assert self._idle is not None
        future = asyncio.run_coroutine_threadsafe(self._idle.wait(), self._loop)
        with anyio.fail_after(seconds):
            await asyncio.wrap_future(future)

    async def wait_request(self, key: str, seconds: float = 5.0) -> None:
        """Wait until a request for ``key`` has fully arrived (TimeoutError after ``seconds``)."""
        assert self._loop is not None

        async def arrived() -> None:
            await self._arrivals.setdefault(key, asyncio.Event()).wait()

        future = asyncio.run_coroutine_threadsafe(arrived(), self._loop)
        with anyio.fail_after(seconds):
            await asyncio.wrap_future(future)

    async def __aenter__(self) -> FaultProxy:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), name="fault-proxy", daemon=True)
        self._thread.start()
        await anyio.to_thread.run_sync(self._ready.wait)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            await anyio.to_thread.run_sync(self._thread.join)

    # -- the proxy's loop ------------------------------------------------------------------

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._release, self._idle, self._stop = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self._idle.set()
        server = await asyncio.start_server(self._accept, HOST, 0, backlog=4096)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        server.close()
        self._release.set()
        for conn in list(self._conns):
            conn.writer.transport.abort()  # every wait in a handler ends when its client does
        if self._handlers:
            _, pending = await asyncio.wait(list(self._handlers), timeout=5)
            for task in pending:  # blocked on an upstream that never answers
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await server.wait_closed()

    def _next_plan(self, key: str) -> Plan | None:
        with self._lock:
            queue = self._queues.get(key)
            if not queue:
                return None
            return queue.popleft() if len(queue) > 1 else queue[0]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        assert self._idle is not None
        self._handlers.add(task)
        self._open += 1
        self._idle.clear()
        conn = Conn(reader, writer)
        self._conns.add(conn)
        try:
            for _ in range(MAX_REQUESTS_PER_CONNECTION):
                if not await self._one(conn):
                    break
        except (OSError, ValueError, Gone):
            pass  # a malformed request or a vanished client ends the connection
        except asyncio.CancelledError:
            pass  # only at shutdown; swallowed so asyncio's stream callback does not log it
        finally:
            self._conns.discard(conn)
            await conn.unwatch()
            if not writer.is_closing():
                writer.close()
            self._open -= 1
            self._handlers.discard(task)
            if self._open == 0:
                self._idle.set()

    async def _one(self, conn: Conn) -> bool:
        """Answer one request; True if the connection stays open for another."""
        request = await conn.read_request()
        if request is None:
            return False
        method, path, headers, body = request
        key = path.split("/")[2] if path.startswith("/k/") and path.count("/") >= 3 else ""
        exchange = Exchange(key, method, path, headers, body, time.monotonic())
        if self.record:
            with self._lock:
                self.exchanges.append(exchange)
        self._arrivals.setdefault(key, asyncio.Event()).set()
        plan = self._next_plan(key)
        if plan is None:
            plan = Plan(b"no plan for this key", status=500, headers={"content-type": "text/plain"})
        conn.watch()
        keep = False
        try:
            keep = await self._respond(conn, plan, exchange, method, path, headers, body)
        except Gone:
            exchange.outcome = "client-gone"
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            exchange.outcome = "upstream-error"
        finally:
            exchange.finished_at = time.monotonic()
            # ``gone`` is only ever set by the watcher, which ``end`` stops before we close:
            # so it means the client closed first.
            exchange.client_closed = conn.gone.is_set()
            await conn.unwatch()
        return keep

    async def _respond(
        self, conn: Conn, plan: Plan, ex: Exchange, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> bool:
        if plan.first_byte_delay and not await conn.pause(plan.first_byte_delay):
            raise Gone
        upstream: asyncio.StreamWriter | None = None
        if plan.body is not None:
            head, wire = plan.wire()
            source = once(wire)
        else:
            if self.upstream is None:
                raise ValueError("a forwarding plan needs an upstream")
            up_reader, upstream = await asyncio.open_connection(*self.upstream)
            upstream.write(forward_head(method, path, headers, len(body)) + body)
            head = closing_head(await up_reader.readuntil(b"\r\n\r\n"))
            source = drain(up_reader)
        try:
            if plan.send_head:
                ex.first_byte_at = time.monotonic()
                await conn.write(head)
            whole = await self._pump(conn, source, plan, ex)
        finally:
            if upstream is not None:
                upstream.close()
        if whole:
            ex.outcome = "complete"
            if plan.keep_alive and plan.framing != "close" and plan.body is not None and plan.ending == "fin":
                return True
        await conn.end(plan.ending)
        return False

    async def _pump(self, conn: Conn, source: AsyncIterator[bytes], plan: Plan, ex: Exchange) -> bool:
        """Send the body with the plan's faults; True if it all went out."""
        assert self._release is not None
        limit = plan.cut_after
        stall = plan.stall_after
        size = plan.chunk_size if plan.chunk_size and plan.framing != "chunked" else None
        async for data in source:
            pos = 0
            while pos < len(data):
                if stall is not None and ex.sent >= stall:
                    stall = None
                    if not await self._hold(conn, ex):
                        return False
                end = len(data)
                if size is not None:
                    end = min(end, pos + size)
                if stall is not None:
                    end = min(end, pos + stall - ex.sent)
                if limit is not None:
                    if ex.sent >= limit:
                        ex.outcome = "reset" if plan.ending == "rst" else "cut"
                        return False
                    end = min(end, pos + limit - ex.sent)
                if ex.first_byte_at is None:
                    ex.first_byte_at = time.monotonic()
                ex.sent += end - pos  # counted before the write: the client may read it at once
                await conn.write(data[pos:end])
                pos = end
                if plan.interval and not await conn.pause(plan.interval):
                    raise Gone
        if stall is not None and ex.sent >= stall and not await self._hold(conn, ex):
            return False  # a stall at the very end of what is sent
        if limit is not None and ex.sent >= limit and plan.ending == "rst":
            ex.outcome = "reset"
            return False
        return True

    async def _hold(self, conn: Conn, ex: Exchange) -> bool:
        """A stall: True once released; False after :data:`MAX_STALL`; Gone if the client leaves."""
        assert self._release is not None
        if not await conn.pause(MAX_STALL, self._release):
            raise Gone
        if self._release.is_set():
            return True
        ex.outcome = "stall-timeout"
        return False


def _host_port(url: str) -> tuple[str, int]:
    hostport = url.split("://", 1)[-1].split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if host not in (HOST, "localhost"):
        raise ValueError("the fault proxy only talks to 127.0.0.1")
    return HOST, int(port)


# -- a stand-alone origin, for the soak test ------------------------------------------------


async def _serve_file(body: bytes, framing: Framing, keep_alive: bool) -> None:
    proxy = FaultProxy(record=False)
    proxy.push("", Plan(body, framing=framing, keep_alive=keep_alive))
    async with proxy:
        print(f"PORT {proxy.port}", flush=True)
        # Serve until the parent closes our stdin (or the process is terminated).
        await anyio.to_thread.run_sync(sys.stdin.buffer.read)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve one recorded body on 127.0.0.1 until stdin closes.")
    parser.add_argument("--serve", required=True, metavar="FILE")
    parser.add_argument("--framing", choices=["close", "length", "chunked"], default="length")
    parser.add_argument("--keep-alive", action="store_true")
    args = parser.parse_args(argv)
    with open(args.serve, "rb") as fh:
        body = fh.read()
    asyncio.run(_serve_file(body, args.framing, args.keep_alive))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
