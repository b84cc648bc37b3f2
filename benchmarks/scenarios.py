"""One measurement of one client, in a process of its own: the worker ``bench_all.py`` starts.

    python benchmarks/scenarios.py s1 --client openai --provider openai --origin http://127.0.0.1:8765
    python benchmarks/scenarios.py s2 --client lluminary --streams 1000 --chunks 200 ...
    python benchmarks/scenarios.py s2 --in-flight --client floor --streams 1000 --chunks 800 ...
    python benchmarks/scenarios.py s3 --client litellm --requests 200 ...
    python benchmarks/scenarios.py s4 --module lluminary

Each run prints one JSON object on its last stdout line. A process per client
(and, for S2, per sample) keeps peak memory from mixing between clients and
keeps one client's imports, caches and garbage out of another's timing.

- **s1**: one stream of ``--chunks`` chunks, back to back until a sample lasts
  ``--min-sample`` seconds, ``--repeat`` samples: CPU (``time.process_time``,
  all threads) per SSE event on the wire.
- **s2**: ``--streams`` concurrent streams of ``--chunks`` chunks: wall, CPU,
  and peak RSS. Peak RSS is ``VmHWM``, reset after the warm-up through
  ``/proc/self/clear_refs``, so ``peak - rss_before`` is what the streams cost
  and, divided by the streams, the memory per stream. With ``--in-flight`` the
  server holds every stream just before its end until all are waiting, and the
  figure is the live RSS then: memory per stream with all of them in flight.
- **s3**: ``--requests`` sequential one-chunk requests, each client request
  beside a floor request in the same process (floor, client, floor, …): the
  time from calling the client to its first text piece, minus the floor's.
- **s4**: ``import <module>`` in fresh interpreters (``python -c`` with
  nothing imported first), median time and RSS added over ``--repeat`` runs, the
  modules loaded, and which optional extras came along. Modules load from their
  bytecode caches, written by one unmeasured run first, as installed packages do.

Every stream is checked (text or tool arguments, usage, end marker) before it
counts, so no client can skip work. Nothing is imported at module level beyond
the standard library: a worker pays only for its own client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

#: Optional extras that ``import lluminary`` must not import (the issue's list).
EXTRAS = ("llama_cpp", "botocore", "onnxruntime", "redis", "asyncpg", "opentelemetry", "structlog", "tiktoken")


def proc_status(field: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def live_rss() -> int:
    """RSS after a full collection and ``malloc_trim``: the memory in use, not what the allocator kept.

    Without the trim, RSS stays at the high-water mark of every transient buffer
    (socket reads queued before their consumer ran, say) and hides what is live.
    """
    import ctypes

    gc.collect()
    # Not glibc: the figure then includes the allocator's free pages.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return proc_status("VmRSS")


def reset_peak() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


# -- the stream scenarios -------------------------------------------------------------------


def _target(args: argparse.Namespace, chunks: int, hold: str = "") -> Any:
    from clients import Target
    from server import StreamConfig

    config = StreamConfig(chunks, args.tool, interleave=bool(hold), hold=hold)
    return Target(args.origin, args.provider, config.query(), args.tool)


def _expected(chunks: int, tool: bool) -> tuple[str, Any]:
    import server

    text = server.expected_text(chunks)
    return (server.tool_arguments(chunks), {"text": text}) if tool else (text, None)


def check(name: str, outcome: Any, expected: tuple[str, Any], chunks: int) -> None:
    """Refuse an outcome that is not exactly the promised stream."""
    from clients import BenchError

    text, arguments = expected
    if outcome.text != text or outcome.arguments != arguments:
        raise BenchError(f"{name}: assembled the wrong text ({len(outcome.text)} chars, want {len(text)})")
    if not outcome.finished or outcome.output_tokens != chunks:
        raise BenchError(f"{name}: no end marker or wrong usage ({outcome.output_tokens}, want {chunks})")


async def _streams(one: Any, name: str, count: int, concurrency: int, expected: tuple[str, Any], chunks: int) -> None:
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            check(name, await one(), expected, chunks)

    async with asyncio.TaskGroup() as tg:
        for _ in range(min(count, concurrency)):
            tg.create_task(worker())


async def s1(args: argparse.Namespace) -> dict[str, Any]:
    from peers import REGISTRY
    from server import StreamConfig, wire_events

    spec = REGISTRY[args.client]
    expected = _expected(args.chunks, args.tool)
    stream_events = wire_events(args.provider, StreamConfig(args.chunks, args.tool))
    async with spec.factory(_target(args, args.chunks)) as one:
        wall0 = time.perf_counter()
        await _streams(one, spec.name, 1, 1, expected, args.chunks)  # warm-up, and the probe for sizing
        rounds = max(1, int(args.min_sample / max(time.perf_counter() - wall0, 1e-6)) + 1)
        cpu, wall = [], []
        for _ in range(args.repeat):
            gc.collect()
            w0, c0 = time.perf_counter(), time.process_time()
            await _streams(one, spec.name, rounds, 1, expected, args.chunks)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
    events = stream_events * rounds
    return {
        "rounds_per_sample": rounds,
        "wire_events_per_sample": events,
        "cpu_us_per_event": statistics.median(cpu) / events * 1e6,
        "events_per_s": events / statistics.median(wall),
        "samples": {"cpu_s": cpu, "wall_s": wall},
    }


async def s2(args: argparse.Namespace) -> dict[str, Any]:
    from peers import REGISTRY

    spec = REGISTRY[args.client]
    expected = _expected(args.chunks, args.tool)
    target = _target(args, args.chunks)
    async with spec.factory(target) as one:
        # Warm up imports, lazy paths and the pool's first connections outside the measurement.
        await _streams(one, spec.name, 4, 4, expected, args.chunks)
        gc.collect()
        rss_before = proc_status("VmRSS")
        peak_reset = reset_peak()
        w0, c0 = time.perf_counter(), time.process_time()
        await _streams(one, spec.name, args.streams, args.streams, expected, args.chunks)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        peak = proc_status("VmHWM")
    return {
        "streams": args.streams,
        "chunks": args.chunks,
        "wall_s": wall,
        "cpu_s": cpu,
        "rss_before": rss_before,
        "peak_rss": peak,
        "peak_reset": peak_reset,
        "bytes_per_stream": max(peak - rss_before, 0) / args.streams,
    }


async def s3(args: argparse.Namespace) -> dict[str, Any]:
    from peers import REGISTRY

    spec, floor = REGISTRY[args.client], REGISTRY["floor"]
    expected = _expected(1, args.tool)
    target = _target(args, 1)
    async with floor.factory(target) as floor_one, spec.factory(target) as client_one:
        pairs = ((floor.name, floor_one), (spec.name, client_one))
        for name, one in pairs:  # warm both: imports, first connections
            for _ in range(3):
                check(name, await one(), expected, 1)
        times: dict[str, list[float]] = {floor.name: [], spec.name: []}
        for i in range(args.requests):
            for name, one in pairs if i % 2 == 0 else pairs[::-1]:
                t0 = time.perf_counter()
                outcome = await one()
                check(name, outcome, expected, 1)
                times[name].append(outcome.first_at - t0)
    added = [c - f for c, f in zip(times[spec.name], times[floor.name], strict=True)]
    return {
        "requests": args.requests,
        "ttfe_us": statistics.median(times[spec.name]) * 1e6,
        "floor_ttfe_us": statistics.median(times[floor.name]) * 1e6,
        "added_ttfe_us": statistics.median(added) * 1e6,
    }


async def _server(origin: str, method: str, path: str) -> Any:
    """One small request to the benchmark server, without an HTTP library (it would add to the RSS)."""
    from urllib.parse import urlsplit

    parts = urlsplit(origin)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(f"{method} {path} HTTP/1.0\r\nHost: {parts.netloc}\r\nContent-Length: 0\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return json.loads(data.partition(b"\r\n\r\n")[2])


async def _all_held(origin: str, tag: str, count: int, limit_s: float = 600.0) -> None:
    """Wait until the server holds ``count`` streams under ``tag`` and this process has read what it sent.

    The server has written everything before the hold once it counts a stream, but
    the bytes may still sit unread in this process's sockets; so after the count it
    waits until the event loop is idle: 3 windows of 20 ms running in a row with
    under 1 ms of CPU each (every client reads as fast as it can, so idle means done).
    """
    deadline = time.monotonic() + limit_s
    while (await _server(origin, "GET", f"/held?tag={tag}"))["held"] < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server never held {count} streams")
        await asyncio.sleep(0.05)
    idle = 0
    while idle < 3:
        c0 = time.process_time()
        await asyncio.sleep(0.02)
        idle = idle + 1 if time.process_time() - c0 < 0.001 else 0


async def s2_inflight(args: argparse.Namespace) -> dict[str, Any]:
    """``--streams`` streams held by the server just before their end, all at once: live memory per stream.

    Every stream has then received ``--chunks`` chunks and none has finished, so the
    figure is what a client holds per live stream at that length, whatever order the
    scheduler would have run the streams in. Run at two lengths it shows whether that
    grows with the stream (beyond the text the job keeps, which every client keeps).
    The streams are released afterwards and checked like every other.
    """
    from peers import REGISTRY

    spec = REGISTRY[args.client]
    expected = _expected(args.chunks, args.tool)
    tag = f"{os.getpid()}-{args.chunks}"
    # Held streams are interleaved by the server, so that each read brings about one event,
    # as from a real model: otherwise a stream's whole head arrives in one read, and what
    # every client then holds is that read.
    async with spec.factory(_target(args, args.chunks, hold=tag)) as one:

        async def batch(count: int) -> int:
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(one()) for _ in range(count)]
                await _all_held(args.origin, tag, count)
                rss = live_rss()
                await _server(args.origin, "POST", f"/release?tag={tag}")
            for task in tasks:
                check(spec.name, task.result(), expected, args.chunks)
            return rss

        await batch(4)  # warm up imports, lazy paths and the pool's first connections
        rss_before = live_rss()
        peak_reset = reset_peak()
        rss_held = await batch(args.streams)
        peak = proc_status("VmHWM")
    return {
        "streams": args.streams,
        "chunks": args.chunks,
        "rss_before": rss_before,
        "rss_in_flight": rss_held,
        "peak_rss": peak,
        "peak_reset": peak_reset,
        "bytes_per_stream": max(rss_held - rss_before, 0) / args.streams,
    }


# -- S4: the import alone -------------------------------------------------------------------

#: Run as ``python -c S4_PROBE <modules>`` so nothing but ``sys`` and ``time`` is loaded before
#: the import (this module itself imports asyncio, which would hide part of the cost).
S4_PROBE = """
import sys, time
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:"))
names = [n for n in sys.argv[1].split(",") if n]
before, rss0 = set(sys.modules), rss()
t0 = time.perf_counter()
for name in names:
    __import__(name)
seconds = time.perf_counter() - t0
roots = {n.split(".")[0] for n in set(sys.modules) - before}
print(repr({"import_s": seconds, "rss_added": rss() - rss0, "modules_loaded": len(set(sys.modules) - before),
            "roots": sorted(roots)}))
"""


def s4(module: str, runs: int) -> dict[str, Any]:
    """``import <module>`` (comma-separated for several) in ``runs`` fresh interpreters: medians."""
    import ast
    import subprocess

    # Imported as installed packages are: from their bytecode. PYTHONDONTWRITEBYTECODE (set
    # on some machines, this one included) would make every run compile every module from
    # source, timing the compiler rather than the import; the first, unmeasured run writes
    # the caches for every library alike.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    probe = [sys.executable, "-c", S4_PROBE, module]
    subprocess.run(probe, capture_output=True, text=True, check=True, env=env)
    samples = []
    for _ in range(runs):
        proc = subprocess.run(probe, capture_output=True, text=True, check=True, env=env)
        samples.append(ast.literal_eval(proc.stdout.strip().splitlines()[-1]))
    roots = set(samples[0]["roots"])
    return {
        "module": module,
        "runs": runs,
        "import_s": statistics.median(s["import_s"] for s in samples),
        "rss_added": statistics.median(s["rss_added"] for s in samples),
        "modules_loaded": samples[0]["modules_loaded"],
        "extras_imported": sorted(e for e in EXTRAS if e in roots),
        "http_libraries_imported": sorted({"aiohttp", "httpx"} & roots),
        "samples_s": [s["import_s"] for s in samples],
    }


# -- the command line -----------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("scenario", choices=("s1", "s2", "s3", "s4"))
    p.add_argument("--client", default="floor")
    p.add_argument("--provider", default="openai", choices=("openai", "anthropic"))
    p.add_argument("--tool", action="store_true", help="stream one tool call instead of text")
    p.add_argument("--origin", default="", help="the benchmark server, http://127.0.0.1:<port>")
    p.add_argument("--chunks", type=int, default=200)
    p.add_argument("--streams", type=int, default=1000)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--min-sample", type=float, default=0.2)
    p.add_argument("--module", default="lluminary", help="s4: what to import (comma-separated)")
    p.add_argument("--in-flight", action="store_true", help="s2: memory with every stream held in flight")
    p.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    return p.parse_args(argv)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the measurement ``args`` describes (in this process) and return its result."""
    if args.scenario == "s4":
        return s4(args.module, args.repeat)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    from peers import REGISTRY, missing

    spec = REGISTRY[args.client]
    reason = missing(spec)
    if reason is None and args.provider not in spec.providers:
        reason = f"{spec.name} does not speak the {args.provider} wire format"
    if reason is None and args.tool and spec.text_only:
        reason = f"{spec.name} is measured on text only"
    if reason is not None:
        return {"skipped": reason}
    run = {"s1": s1, "s2": s2_inflight if args.in_flight else s2, "s3": s3}[args.scenario]
    return asyncio.run(run(args))


def main(argv: list[str] | None = None) -> int:
    print(json.dumps(measure(parse_args(argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
