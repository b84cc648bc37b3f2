"""The bytes of one client connection, for :mod:`tests.faults.proxy`: requests in, faults out.

:class:`Conn` reads HTTP/1.1 requests (a head and a ``content-length`` body; the
clients here send nothing else), writes responses, pauses, and ends the
connection with a FIN or a reset. While a response is in progress a watcher
reads from the client, because a stalled response writes nothing and would
otherwise never learn that the client has gone; bytes it reads early (the next
request on a kept-alive connection) are kept for :meth:`Conn.read_request`.
Every read is bounded by the size limits below.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Mapping
from typing import Literal

__all__ = ["Conn", "Ending", "Gone", "closing_head", "drain", "forward_head", "once"]

MAX_HEAD = 64 * 1024
MAX_REQUEST_BODY = 16 * 1024 * 1024
MAX_FORWARDED = 64 * 1024 * 1024
_READ = 64 * 1024

Ending = Literal["fin", "rst"]


class Gone(Exception):
    """The client went away while the proxy was still answering."""


class Conn:
    """A client connection: a buffered reader and a watcher that notices the client leaving."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buf = bytearray()
        self.gone = asyncio.Event()
        self._watch: asyncio.Task[None] | None = None

    async def _fill(self) -> bool:
        data = await self.reader.read(_READ)
        if not data:
            return False
        self.buf += data
        return True

    async def read_request(self) -> tuple[str, str, dict[str, str], bytes] | None:
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > MAX_HEAD or not await self._fill():
                return None
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        self.buf = bytearray(rest)
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, path, _version = request_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if length > MAX_REQUEST_BODY or "chunked" in headers.get("transfer-encoding", ""):
            return None
        while len(self.buf) < length:
            if not await self._fill():
                return None
        body, self.buf = bytes(self.buf[:length]), self.buf[length:]
        return method, path, headers, body

    def watch(self) -> None:
        """Notice the client closing while a response is in progress (a stall writes nothing)."""

        async def watch() -> None:
            with contextlib.suppress(OSError):
                while await self._fill():  # bytes of a next request are kept in ``buf``
                    if len(self.buf) > MAX_HEAD + MAX_REQUEST_BODY:
                        break
            self.gone.set()

        self._watch = asyncio.get_running_loop().create_task(watch())

    async def unwatch(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None

    async def write(self, data: bytes) -> None:
        if self.gone.is_set():
            raise Gone
        self.writer.write(data)
        try:
            await self.writer.drain()
        except OSError:
            raise Gone from None

    async def pause(self, seconds: float, release: asyncio.Event | None = None) -> bool:
        """Wait ``seconds`` (or for ``release``); False if the client went away meanwhile."""
        waiters = [asyncio.ensure_future(self.gone.wait())]
        if release is not None:
            waiters.append(asyncio.ensure_future(release.wait()))
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return not self.gone.is_set()

    async def end(self, how: Ending) -> None:
        """End the connection from our side (the watcher stops first: this is not the client leaving)."""
        await self.unwatch()
        if how == "rst":
            sock = self.writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.writer.transport.abort()
        else:
            self.writer.close()


async def once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def drain(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    total = 0
    while total < MAX_FORWARDED:
        data = await reader.read(_READ)
        if not data:
            return
        total += len(data)
        yield data


def forward_head(method: str, path: str, headers: Mapping[str, str], length: int) -> bytes:
    # One request per upstream connection: the upstream then ends the body by closing.
    skip = {"connection", "content-length", "keep-alive", "transfer-encoding"}
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items() if k not in skip]
    lines += [f"content-length: {length}", "connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def closing_head(head: bytes) -> bytes:
    # The upstream closes after one response; say so, or the client would pool a dead connection.
    lines = [
        line
        for line in head.rstrip(b"\r\n").split(b"\r\n")
        if line.split(b":", 1)[0].strip().lower() not in (b"connection", b"keep-alive")
    ]
    return b"\r\n".join([*lines, b"connection: close"]) + b"\r\n\r\n"
