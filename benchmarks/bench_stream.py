"""Streaming throughput: LLuMinary's ``Engine.stream`` against the raw aiohttp + msgspec floor.

    python benchmarks/bench_stream.py                       # the standard scenarios
    python benchmarks/bench_stream.py --chunks 2000 --streams 1 --repeat 5
    python benchmarks/bench_stream.py --streams 200 --chunks 200 --concurrency 100

It starts ``server.py`` in its own process (pinned to one core, this process to
another when the machine has two), then, per scenario, runs each client over the
same streams ``--repeat`` times, interleaved (floor, LLuMinary, LLuMinary, floor,
…) so a noisy neighbour hurts both. Each run is timed by wall clock and by this
process's CPU time (``time.process_time``), from opening the session (or engine)
to closing it; a run too short to time (under ``--min-sample`` seconds) repeats
its streams back to back. The per-event figures divide by the SSE events on the
wire, the same count for both clients. The headline is the ratio of LLuMinary's
CPU per event to the floor's in the same run: it cancels most of the machine's
speed and some of its noise. Medians are reported; the samples are in the JSON.

Results go to ``benchmarks/results/<date>-stream.json`` (and ``--out``), with the
versions of Python, aiohttp, msgspec and LLuMinary. ``--profile`` adds one extra,
untimed LLuMinary run per scenario under cProfile and prints its hot spots.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import hashlib
import json
import math
import os
import platform
import select
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the sibling modules, also when this file is imported by path
    sys.path.insert(0, str(HERE))

import server as bench_server  # noqa: E402 - needs the path set above
from clients import CLIENTS, BenchError, Outcome, Target  # noqa: E402 - as above
from profiling import counting_reads, profile  # noqa: E402 - as above

import lluminary  # noqa: E402 - as above


@dataclass(frozen=True)
class Load:
    streams: int
    chunks: int
    concurrency: int
    interval_ms: float = 0.0  # the server's pause between writes
    per_write: int = 1  # SSE events per server write


#: Run when no load is given on the command line (see the README for what each shows).
STANDARD: tuple[Load, ...] = (
    Load(1, 2000, 1),  # one long stream, as fast as the server writes
    Load(200, 200, 100),  # many streams at once, as fast as the server writes
    Load(200, 200, 100, interval_ms=5.0),  # paced: every event arrives on its own, like a model's output
    Load(200, 200, 100, per_write=1000),  # bulk: each stream in one write, parsing cost only
)


@dataclass(frozen=True)
class Scenario:
    provider: str
    tool: bool
    load: Load

    @property
    def name(self) -> str:
        load = self.load
        name = f"{self.provider} {'tool' if self.tool else 'text'} {load.streams}x{load.chunks} c{load.concurrency}"
        if load.interval_ms:
            name += f" every {load.interval_ms:g}ms"
        if load.per_write >= bench_server.wire_events(self.provider, self.config):
            name += " bulk"
        elif load.per_write > 1:
            name += f" {load.per_write}/write"
        return name

    @property
    def config(self) -> bench_server.StreamConfig:
        load = self.load
        return bench_server.StreamConfig(load.chunks, self.tool, load.per_write, load.interval_ms)

    @property
    def stream_events(self) -> int:
        """SSE events in one stream: the per-event denominator for every client."""
        return bench_server.wire_events(self.provider, self.config)

    @cached_property
    def expected(self) -> tuple[str, Any]:
        """The text (or tool arguments) every stream must assemble; computed once, outside the timing."""
        text = bench_server.expected_text(self.load.chunks)
        if self.tool:
            return bench_server.tool_arguments(self.load.chunks), {"text": text}
        return text, None


# -- the server process -----------------------------------------------------------------


class ServerProcess:
    """``server.py`` in a child process. Stopped on exit; it also exits if we die (stdin EOF)."""

    def __init__(self, cpu: int | None) -> None:
        self.cpu = cpu
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> ServerProcess:
        cmd = [sys.executable, str(HERE / "server.py"), "--port", "0", "--parent-pipe"]
        if self.cpu is not None:
            cmd += ["--cpu", str(self.cpu)]
        self._proc = proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30.0)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("PORT "):
            self.__exit__()
            raise RuntimeError(f"the benchmark server did not start (said {line!r})")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        return self

    def __exit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


async def server_cpu(session: aiohttp.ClientSession, url: str) -> float:
    async with session.get(f"{url}/stats") as resp:
        stats: dict[str, Any] = await resp.json()
    return float(stats["cpu_s"])


# -- running and checking ---------------------------------------------------------------


async def run_streams(client: str, scenario: Scenario, target: Target, streams: int) -> list[Outcome]:
    """Run ``streams`` streams, at most ``concurrency`` at once, checking each one."""
    text, arguments = scenario.expected
    chunks = scenario.load.chunks
    outcomes: list[Outcome] = []
    remaining = streams

    async with CLIENTS[client](target) as one:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                outcome = await one()
                if outcome.text != text or outcome.arguments != arguments:
                    raise BenchError(f"{client}: assembled the wrong text ({len(outcome.text)} chars)")
                if not outcome.finished or outcome.output_tokens != chunks:
                    raise BenchError(f"{client}: no end marker or wrong usage ({outcome.output_tokens})")
                outcomes.append(outcome)

        async with asyncio.TaskGroup() as tg:
            for _ in range(min(scenario.load.concurrency, streams)):
                tg.create_task(worker())
    return outcomes


@dataclass
class Sample:
    wall_s: float
    cpu_s: float
    server_cpu_s: float
    outcomes: list[Outcome]


async def timed(client: str, scenario: Scenario, target: Target, streams: int, stats: aiohttp.ClientSession) -> Sample:
    gc.collect()
    server0 = await server_cpu(stats, target.origin)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    outcomes = await run_streams(client, scenario, target, streams)
    cpu1, wall1 = time.process_time(), time.perf_counter()
    server1 = await server_cpu(stats, target.origin)
    return Sample(wall1 - wall0, cpu1 - cpu0, server1 - server0, outcomes)


def summarize(samples: list[Sample], events: int) -> dict[str, Any]:
    wall = statistics.median(s.wall_s for s in samples)
    cpu = statistics.median(s.cpu_s for s in samples)
    per_event = [s.cpu_s / events * 1e6 for s in samples]
    first = samples[0].outcomes[0]
    return {
        "events_per_s": events / wall,
        "cpu_us_per_event": cpu / events * 1e6,
        "cpu_s_per_1000_events": cpu / events * 1000,
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_us_per_event_min": min(per_event),
        "cpu_us_per_event_max": max(per_event),
        "server_cpu_us_per_event": statistics.median(s.server_cpu_s for s in samples) / events * 1e6,
        "server_busy": statistics.median(s.server_cpu_s / s.wall_s for s in samples),
        "client_events_per_stream": first.events,
        "streams_checked": sum(len(s.outcomes) for s in samples),
        "text_sha256": hashlib.sha256(first.text.encode()).hexdigest(),
        "text_chars": len(first.text),
        "samples": {"wall_s": [s.wall_s for s in samples], "cpu_s": [s.cpu_s for s in samples]},
    }


async def run_scenario(scenario: Scenario, origin: str, args: argparse.Namespace) -> dict[str, Any]:
    target = Target(origin, scenario.provider, scenario.config.query(), scenario.tool)
    load = scenario.load
    samples: dict[str, list[Sample]] = {name: [] for name in CLIENTS}
    async with aiohttp.ClientSession() as stats:
        for name in CLIENTS:  # warm up: imports, the server's rendering cache, first-call paths
            await run_streams(name, scenario, target, min(load.streams, load.concurrency))
        # Size each sample to at least --min-sample seconds, so a 15 ms scenario is not timer noise.
        rounds = 1
        if args.min_sample > 0:
            probe = await timed("floor", scenario, target, load.streams, stats)
            rounds = max(1, math.ceil(args.min_sample / max(probe.wall_s, 1e-6)))
        streams = load.streams * rounds
        for rep in range(args.repeat):
            order = list(CLIENTS) if rep % 2 == 0 else list(reversed(CLIENTS))
            for name in order:
                samples[name].append(await timed(name, scenario, target, streams, stats))
    events = scenario.stream_events * streams
    result: dict[str, Any] = {
        "name": scenario.name,
        "provider": scenario.provider,
        "shape": "tool" if scenario.tool else "text",
        "streams": load.streams,
        "chunks": load.chunks,
        "concurrency": load.concurrency,
        "per_write": load.per_write,
        "interval_ms": load.interval_ms,
        "rounds_per_sample": rounds,
        "wire_events": events,
        "expected_sha256": hashlib.sha256(scenario.expected[0].encode()).hexdigest(),
        "clients": {name: summarize(s, events) for name, s in samples.items()},
    }
    floor = result["clients"]["floor"]
    for name, summary in result["clients"].items():
        summary["ratio_to_floor"] = summary["cpu_us_per_event"] / floor["cpu_us_per_event"]
        paired = [a.cpu_s / b.cpu_s for a, b in zip(samples[name], samples["floor"], strict=True)]
        summary["paired_ratio_median"] = statistics.median(paired)
    for name in CLIENTS:
        # How many events each socket read delivered: a client that falls behind the
        # server gets several per read, which makes each event cheaper (see the README).
        with counting_reads() as reads:
            await run_streams(name, scenario, target, load.streams)
        result["clients"][name]["wire_events_per_read"] = scenario.stream_events * load.streams / max(reads[0], 1)
    if args.profile:
        gc.collect()
        path = dated_path(args.results_dir, f"{scenario.name.replace(' ', '-')}.prof")
        work = run_streams("lluminary", scenario, target, load.streams)
        own = {str(HERE / f) for f in ("clients.py", "bench_stream.py", "profiling.py")}
        title = f"LLuMinary, {scenario.name}"
        result["profile"] = await profile(work, scenario.stream_events * load.streams, path, title, own)
    return result


# -- reporting --------------------------------------------------------------------------


def table(results: list[dict[str, Any]]) -> str:
    head = f"{'scenario':<38} {'client':<10} {'events/s':>10} {'CPU us/ev':>9} {'CPU s/1k':>8} {'wall s':>7} "
    head += f"{'ratio':>5} {'paired':>6} {'ev/read':>7} {'srv busy':>8}"
    lines = [head, "-" * len(head)]
    for r in results:
        for i, (name, c) in enumerate(r["clients"].items()):
            label = r["name"] if i == 0 else ""
            lines.append(
                f"{label:<38} {name:<10} {c['events_per_s']:>10,.0f} {c['cpu_us_per_event']:>9.2f} "
                f"{c['cpu_s_per_1000_events']:>8.4f} {c['wall_s']:>7.3f} {c['ratio_to_floor']:>5.2f} "
                f"{c['paired_ratio_median']:>6.2f} {c['wire_events_per_read']:>7.1f} {c['server_busy']:>8.0%}"
            )
    return "\n".join(lines)


def dated_path(directory: Path, name: str) -> Path:
    """``<date>-<name>``, or ``<date>-<stem>-2.<ext>`` … when that exists: never overwrite a result."""
    stem, suffix = name.rsplit(".", 1)
    today = dt.date.today().isoformat()
    path, n = directory / f"{today}-{name}", 1
    while path.exists():
        n += 1
        path = directory / f"{today}-{stem}-{n}.{suffix}"
    return path


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "aiohttp": aiohttp.__version__,
        "msgspec": msgspec.__version__,
        "lluminary": lluminary.__version__,
    }


def pin_cpus(enabled: bool) -> tuple[int | None, int | None]:
    """Server on the first allowed CPU, this process on the second, when there are two."""
    if not enabled or not hasattr(os, "sched_getaffinity"):
        return None, None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None, None
    os.sched_setaffinity(0, {allowed[1]})
    return allowed[0], allowed[1]


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    given = (args.streams, args.chunks, args.concurrency, args.interval_ms, args.per_write)
    if given != (None,) * len(given):
        streams = args.streams or 1
        concurrency = min(args.concurrency or streams, streams)
        loads: tuple[Load, ...] = (
            Load(streams, args.chunks or 200, concurrency, args.interval_ms or 0.0, args.per_write or 1),
        )
    else:
        loads = STANDARD
    return [
        Scenario(provider, shape == "tool", load)
        for provider in args.providers.split(",")
        for shape in args.shapes.split(",")
        for load in loads
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--chunks", type=int, help="deltas per stream (default: the standard scenarios)")
    p.add_argument("--streams", type=int, help="streams per run")
    p.add_argument("--concurrency", type=int, help="streams in flight at once (default: all)")
    p.add_argument("--interval-ms", type=float, help="the server's pause between writes (default 0)")
    p.add_argument("--per-write", type=int, help="SSE events per server write (default 1)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per client and scenario (default 5)")
    p.add_argument("--min-sample", type=float, default=0.2, help="seconds a timed run lasts at least (0.2)")
    p.add_argument("--providers", default="openai,anthropic", help="comma-separated: openai, anthropic")
    p.add_argument("--shapes", default="text", help="comma-separated: text, tool")
    p.add_argument("--out", type=Path, help="also write the JSON here")
    p.add_argument("--results-dir", type=Path, default=HERE / "results", help="where the dated JSON goes")
    p.add_argument("--profile", action="store_true", help="profile one extra LLuMinary run per scenario")
    p.add_argument("--no-pin", action="store_true", help="do not pin the server and client to CPUs")
    args = p.parse_args(argv)
    bad = set(args.providers.split(",")) - {"openai", "anthropic"} or set(args.shapes.split(",")) - {"text", "tool"}
    if bad:
        p.error(f"unknown provider or shape: {', '.join(sorted(bad))}")
    if args.repeat < 1 or args.min_sample < 0:
        p.error("--repeat must be at least 1 and --min-sample not negative")
    return args


async def run(args: argparse.Namespace, origin: str) -> list[dict[str, Any]]:
    results = []
    for scenario in scenarios(args):
        print(f"running {scenario.name} ...", file=sys.stderr, flush=True)
        results.append(await run_scenario(scenario, origin, args))
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    server_cpu_id, client_cpu_id = pin_cpus(not args.no_pin)
    load_before = os.getloadavg()
    with ServerProcess(server_cpu_id) as srv:
        results = asyncio.run(run(args, srv.url))
    report = {
        "benchmark": "stream",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "server_cpu": server_cpu_id,
            "client_cpu": client_cpu_id,
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "settings": {"repeat": args.repeat, "min_sample_s": args.min_sample},
        "scenarios": results,
    }
    print(table(results))
    body = json.dumps(report, indent=2) + "\n"
    path = dated_path(args.results_dir, "stream.json")
    path.write_text(body)
    print(f"\nwrote {path}", file=sys.stderr)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(body)
    return report


if __name__ == "__main__":
    main()
