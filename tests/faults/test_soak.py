"""Memory stays flat over thousands of streams: the soak.

A recorded OpenAI stream is served, with keep-alive, by a separate process
(``python -m tests.faults.proxy --serve``), so the server's memory is not
counted as the client's. The client runs rounds of concurrent streams through
one ``Engine`` and its default aiohttp pool, checks every stream finished with
the whole text, and compares its resident set size (and the number of objects
the garbage collector tracks) after a warm-up with the same after every round.

The full run is 20,000 streams, 1,000 at a time (``pytest -m soak``); the default
suite runs 3,000, 500 at a time. Both allow less than 5% RSS growth after warm-up.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process

from lluminary import Engine
from lluminary.events import Finish, TextDelta
from lluminary.providers import AiohttpTransport
from tests.faults.streams import RECORDINGS
from tests.support import FIXTURES

OPENAI = RECORDINGS["sse"][0]
ROOT = Path(__file__).resolve().parents[2]
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


@dataclass
class Measure:
    rss: int
    objects: int

    @classmethod
    def now(cls) -> Measure:
        gc.collect()
        return cls(rss(), len(gc.get_objects()))


async def start_server() -> tuple[Process, int]:
    fixture = FIXTURES / "openai_chat" / OPENAI.name
    args = [sys.executable, "-m", "tests.faults.proxy", "--serve", str(fixture), "--framing", "length", "--keep-alive"]
    process = await anyio.open_process(args, cwd=ROOT)
    assert process.stdout is not None
    line = b""
    with anyio.fail_after(20):
        while not line.endswith(b"\n"):
            line += await process.stdout.receive(1)
    assert line.startswith(b"PORT "), line
    return process, int(line.split()[1])


async def stop_server(process: Process) -> None:
    assert process.stdin is not None
    await process.stdin.aclose()  # the server serves until its stdin closes
    with anyio.move_on_after(10):
        await process.wait()
    if process.returncode is None:
        process.kill()
        await process.wait()


async def soak(total: int, at_once: int, warmup: int) -> tuple[Measure, Measure, float]:
    process, port = await start_server()
    finished = 0
    expected = OPENAI.text
    transport = AiohttpTransport(limit=at_once)
    try:
        provider = OPENAI.make_provider(f"http://127.0.0.1:{port}")
        async with Engine(providers={"openai": provider}, transport=transport) as engine:

            async def one() -> None:
                nonlocal finished
                text = []
                with anyio.fail_after(60):
                    async with engine.stream(OPENAI.request()) as stream:
                        async for event in stream:
                            if isinstance(event, TextDelta):
                                text.append(event.text)
                            elif isinstance(event, Finish):
                                finished += "".join(text) == expected

            async def round_() -> None:
                async with anyio.create_task_group() as tg:
                    for _ in range(at_once):
                        tg.start_soon(one)

            for _ in range(warmup // at_once):
                await round_()
            before = Measure.now()
            started = time.perf_counter()
            for _ in range((total - warmup) // at_once):
                await round_()
            elapsed = time.perf_counter() - started
            after = Measure.now()
    finally:
        await transport.aclose()
        await stop_server(process)
    assert finished == total, f"{total - finished} of {total} streams did not finish with the whole text"
    return before, after, elapsed


def report(label: str, total: int, warmup: int, before: Measure, after: Measure, elapsed: float) -> float:
    growth = (after.rss - before.rss) / before.rss
    rate = (total - warmup) / elapsed
    print(
        f"\n{label}: {total} streams; RSS {before.rss / 2**20:.1f} -> {after.rss / 2**20:.1f} MiB ({growth:+.2%}); "
        f"gc objects {before.objects} -> {after.objects}; {rate:.0f} streams/s after warm-up"
    )
    return growth


async def test_soak_reduced() -> None:
    total, at_once, warmup = 3_000, 500, 1_000
    before, after, elapsed = await soak(total, at_once, warmup)
    assert report("soak (reduced)", total, warmup, before, after, elapsed) < 0.05
    # Containers the collector tracks: a per-stream leak of even one would show as thousands.
    assert after.objects - before.objects < (total - warmup) // 10


@pytest.mark.soak
@pytest.mark.timeout(900)
async def test_soak_full() -> None:
    total, at_once, warmup = 20_000, 1_000, 2_000
    before, after, elapsed = await soak(total, at_once, warmup)
    assert report("soak (full)", total, warmup, before, after, elapsed) < 0.05
    assert after.objects - before.objects < (total - warmup) // 10
