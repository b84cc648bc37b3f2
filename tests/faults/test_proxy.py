"""The fault proxy does what its plans say: checked with a raw socket client and with the engine."""

from __future__ import annotations

import asyncio
import time

import anyio
import pytest

from lluminary import Engine
from lluminary.events import Error, Finish
from tests.faults.proxy import FaultProxy, Plan
from tests.faults.streams import RECORDINGS
from tests.support import ReplayServer, Reply

BODY = bytes(range(256)) * 4
OPENAI = RECORDINGS["sse"][0]


async def raw_request(proxy: FaultProxy, key: str = "") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    path = f"/k/{key}/x" if key else "/x"
    writer.write(f"POST {path} HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\nhi".encode())
    await writer.drain()
    return reader, writer


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def read_to_end(reader: asyncio.StreamReader) -> tuple[bytes, BaseException | None]:
    data = bytearray()
    try:
        while chunk := await reader.read(65536):
            data += chunk
    except ConnectionResetError as exc:
        return bytes(data), exc
    return bytes(data), None


async def test_whole_body_then_fin(proxy: FaultProxy) -> None:
    proxy.push("", Plan(BODY))
    reader, writer = await raw_request(proxy)
    with anyio.fail_after(5):
        head = await read_head(reader)
        body, error = await read_to_end(reader)
    writer.close()
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"connection: close" in head
    assert (body, error) == (BODY, None)
    assert proxy.exchanges[0].outcome == "complete"
    assert proxy.exchanges[0].body == b"hi"


@pytest.mark.parametrize("ending", ["fin", "rst"])
async def test_cut_after_n_bytes(proxy: FaultProxy, ending: str) -> None:
    proxy.push("", Plan(BODY, cut_after=100, ending=ending))  # type: ignore[arg-type]
    reader, writer = await raw_request(proxy)
    with anyio.fail_after(5):
        await read_head(reader)
        body, error = await read_to_end(reader)
    writer.close()
    assert BODY.startswith(body)
    assert len(body) <= 100
    if ending == "fin":
        assert (len(body), error) == (100, None)
    else:
        assert isinstance(error, ConnectionResetError)
    assert proxy.exchanges[0].outcome == ("cut" if ending == "fin" else "reset")


async def test_reset_before_any_byte(proxy: FaultProxy) -> None:
    proxy.push("", Plan.reset())
    reader, writer = await raw_request(proxy)
    with anyio.fail_after(5):
        data, error = await read_to_end(reader)
    writer.close()
    assert data == b""
    assert isinstance(error, ConnectionResetError)


async def test_stall_holds_until_released(proxy: FaultProxy) -> None:
    proxy.push("", Plan(BODY, stall_after=300))
    reader, writer = await raw_request(proxy)
    with anyio.fail_after(5):
        await read_head(reader)
        first = await reader.readexactly(300)
        assert proxy.exchanges[0].sent == 300
        assert proxy.exchanges[0].finished_at is None
        proxy.release_stalls()
        rest, error = await read_to_end(reader)
    writer.close()
    assert (first + rest, error) == (BODY, None)


async def test_a_client_leaving_a_stall_is_noticed(proxy: FaultProxy) -> None:
    proxy.push("", Plan(BODY, stall_after=10))
    reader, writer = await raw_request(proxy)
    with anyio.fail_after(5):
        await read_head(reader)
        await reader.readexactly(10)
        writer.close()
        await proxy.wait_idle()
    exchange = proxy.exchanges[0]
    assert exchange.client_closed
    assert exchange.outcome == "client-gone"


async def test_drip_one_byte_at_a_time_after_latency(proxy: FaultProxy) -> None:
    proxy.push("", Plan(BODY[:20], chunk_size=1, interval=0.02, first_byte_delay=0.2))
    started = time.monotonic()
    reader, writer = await raw_request(proxy)
    with anyio.fail_after(5):
        await read_head(reader)
        first_byte = time.monotonic()
        pieces = []
        while piece := await reader.read(65536):
            pieces.append(piece)
    writer.close()
    assert first_byte - started >= 0.2
    assert b"".join(pieces) == BODY[:20]
    assert len(pieces) >= 5  # dripped, not sent at once
    exchange = proxy.exchanges[0]
    assert exchange.finished_at is not None
    assert exchange.first_byte_at is not None
    assert exchange.finished_at - exchange.first_byte_at >= 19 * 0.02


async def test_plans_are_per_key_and_the_last_one_repeats(proxy: FaultProxy) -> None:
    proxy.push("a", Plan(b"first"), Plan(b"second"))
    proxy.push("b", Plan(b"other"))
    bodies = []
    for key in ["a", "b", "a", "a", "b"]:
        reader, writer = await raw_request(proxy, key)
        with anyio.fail_after(5):
            await read_head(reader)
            bodies.append((await read_to_end(reader))[0])
        writer.close()
    assert bodies == [b"first", b"other", b"second", b"second", b"other"]
    assert [ex.key for ex in proxy.of("a")] == ["a"] * 3


async def test_one_byte_chunks_through_the_engine_give_the_same_events(proxy: FaultProxy) -> None:
    for framing in ("close", "length", "chunked"):
        key = f"one-byte-{framing}"
        proxy.push(key, Plan(OPENAI.body, chunk_size=1, framing=framing))  # type: ignore[arg-type]
        async with Engine(providers={"openai": OPENAI.make_provider(proxy.url(key))}) as engine:
            with anyio.fail_after(10):
                events = [e async for e in engine.stream(OPENAI.request())]
        assert events == OPENAI.reference, framing


async def test_forwarding_to_a_replay_server_with_a_cut() -> None:
    async with ReplayServer([Reply(OPENAI.body)]) as server, FaultProxy(upstream=server.url) as proxy:
        proxy.push("whole", Plan(chunk_size=13))
        proxy.push("cut", Plan(cut_after=1500, ending="rst"))
        async with Engine(providers={"openai": OPENAI.make_provider(proxy.url("whole"))}) as engine:
            with anyio.fail_after(10):
                whole = [e async for e in engine.stream(OPENAI.request())]
        async with Engine(providers={"openai": OPENAI.make_provider(proxy.url("cut"))}) as engine:
            with anyio.fail_after(10):
                cut = [e async for e in engine.stream(OPENAI.request())]
    assert whole == OPENAI.reference
    assert isinstance(whole[-1], Finish)
    assert isinstance(cut[-1], Error)
    assert cut[-1].code == "connection"
    assert server.requests[0].path == "/k/whole/v1/chat/completions"


def test_only_loopback_upstreams() -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        FaultProxy(upstream="http://10.1.2.3:80")
