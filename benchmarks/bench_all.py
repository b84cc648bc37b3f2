"""The full comparison: every client, scenarios S1-S4, each figure as a ratio to the floor of the same run.

    python benchmarks/bench_all.py                          # everything, ~6-8 minutes on 2 cores
    python benchmarks/bench_all.py --clients floor,lluminary,openai --scenarios s1,s3
    python benchmarks/bench_all.py --quick                  # a tiny load, to check the harness

It starts ``server.py`` pinned to one CPU and runs every measurement in a
``scenarios.py`` worker pinned to the other, one process per client (and per S2
sample), so clients never share imports, caches or a memory peak. The clients
(``peers.py``) all do the same job on the same streams and are checked the same
way. The floor runs in every scenario of every run, and every figure is divided
by the floor's from that run: ratios travel between machines, absolute numbers
do not. Medians throughout.

- **S1** CPU per event: one stream of 2,000 chunks, repeated.
- **S2** 1,000 concurrent streams of 200 chunks: wall, CPU, peak RSS, memory per
  stream; then the same streams held in flight all at once, at 200 and at 800
  chunks, for the live memory per stream and whether it grows with the stream
  faster than the floor's (every client keeps the text it assembles, so some
  growth is the job itself). Slow peers run fewer streams (the table says how
  many) and fewer samples.
- **S3** added time to first event: 200 sequential one-chunk requests, each
  beside a floor request in the same worker.
- **S4** ``import`` in fresh interpreters: time, memory, and the optional extras
  ``import lluminary`` must not load.

Writes ``results/<date>-all.json`` (versions of every client library, Python,
the CPU model, the command line, every sample) and ``results/<date>-table.md``,
and prints the table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the sibling modules, also when this file is imported by path
    sys.path.insert(0, str(HERE))

from bench_stream import ServerProcess, dated_path, pin_cpus  # noqa: E402 - needs the path set above
from peers import REGISTRY, missing  # noqa: E402 - as above
from report import markdown  # noqa: E402 - as above
from server import StreamConfig, wire_events  # noqa: E402 - as above

#: What S4 imports for each client; the floor's is the baseline of the ratios.
IMPORTS = {
    "floor": "aiohttp,msgspec",
    "lluminary": "lluminary",
    "httpx": "httpx,httpx_sse",
    "openai": "openai",
    "anthropic": "anthropic",
    "litellm": "litellm",
    "pydantic-ai": "pydantic_ai",
}
#: S2's share of --s2-streams for the peers too slow to run 1,000 streams in the time budget.
S2_SCALE = {"openai": 0.2, "litellm": 0.1, "pydantic-ai": 0.1}
WORKER_TIMEOUT_S = 900


def worker(args: argparse.Namespace, scenario: str, client: str, provider: str, **opts: object) -> dict[str, Any]:
    """One ``scenarios.py`` measurement, in its own process: its JSON, or ``{"error": …}``."""
    cmd = [sys.executable, str(HERE / "scenarios.py"), scenario, "--client", client, "--provider", provider]
    cmd += ["--origin", args.origin]
    if args.client_cpu is not None:
        cmd += ["--cpu", str(args.client_cpu)]
    for key, value in opts.items():
        flag = f"--{key.replace('_', '-')}"
        if value is True:
            cmd.append(flag)
        elif value is not False:
            cmd += [flag, str(value)]
    return run_worker(cmd)


def run_worker(cmd: list[str]) -> dict[str, Any]:
    """Run a worker command line; the JSON on its last stdout line, or ``{"error": …}``."""
    # The price list: without it litellm fetches one from GitHub at import. Warnings: peers'
    # deprecation notices would only clutter the log, and they cost the same for everyone.
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONWARNINGS": "ignore"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {WORKER_TIMEOUT_S} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip().splitlines()[-3:]
        return {"error": " | ".join(tail) or f"exit status {proc.returncode}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def groups(args: argparse.Namespace) -> dict[str, list[str]]:
    """The clients to run per wire format, the floor first; the Anthropic format only for clients that need it."""
    out: dict[str, list[str]] = {}
    for provider in args.providers:
        names = [n for n in args.clients if provider in REGISTRY[n].providers]
        if provider == "anthropic":  # the other clients read it through the same code as OpenAI's
            names = [n for n in names if n in ("lluminary", "anthropic")]
        if names:
            out[provider] = ["floor", *[n for n in names if n != "floor"]]
    return out


def s1(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """S1 in rounds, every client once per round, so a slower minute of the machine costs all of them alike."""
    results: dict[str, dict[str, Any]] = {}
    for provider, names in groups(args).items():
        rounds: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        for number in range(args.s1_rounds):
            for name in names:
                log(f"S1 {provider} {name} (round {number + 1})")
                rounds[name].append(
                    worker(
                        args,
                        "s1",
                        name,
                        provider,
                        chunks=args.s1_chunks,
                        repeat=args.s1_repeat,
                        min_sample=args.min_sample,
                    )
                )
        results[provider] = {n: _s1_summary(r) for n, r in rounds.items()}
        floor = results[provider]["floor"]
        for r in results[provider].values():
            if "cpu_us_per_event" in r and "cpu_us_per_event" in floor:
                r["ratio_to_floor"] = r["cpu_us_per_event"] / floor["cpu_us_per_event"]
    return results


def _s1_summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The median over the rounds of each round's median; the rounds are kept."""
    good = [r for r in rounds if "cpu_us_per_event" in r]
    if not good:
        return rounds[0]
    return {
        "rounds": len(good),
        "cpu_us_per_event": statistics.median(r["cpu_us_per_event"] for r in good),
        "events_per_s": statistics.median(r["events_per_s"] for r in good),
        "samples": good,
    }


def _s2_summary(samples: list[dict[str, Any]], provider: str) -> dict[str, Any]:
    good = [s for s in samples if "wall_s" in s]
    if not good:
        return samples[0]
    streams, chunks = good[0]["streams"], good[0]["chunks"]
    events = streams * wire_events(provider, StreamConfig(chunks))
    wall = statistics.median(s["wall_s"] for s in good)
    cpu = statistics.median(s["cpu_s"] for s in good)
    return {
        "streams": streams,
        "chunks": chunks,
        "runs": len(good),
        "wall_s": wall,
        "cpu_s": cpu,
        "wall_us_per_event": wall / events * 1e6,
        "cpu_us_per_event": cpu / events * 1e6,
        "peak_rss": statistics.median(s["peak_rss"] for s in good),
        "bytes_per_stream": statistics.median(s["bytes_per_stream"] for s in good),
        "samples": good,
    }


def s2(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for provider, names in groups(args).items():
        samples: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        streams = {n: max(1, round(args.s2_streams * S2_SCALE.get(n, 1.0))) for n in names}
        repeats = {n: args.slow_repeat if n in S2_SCALE else args.s2_repeat for n in names}
        for rep in range(max(repeats.values())):  # interleaved, so a noisy minute hurts every client
            for name in names:
                if rep < repeats[name]:
                    log(f"S2 {provider} {name} {streams[name]}x{args.s2_chunks} (run {rep + 1})")
                    samples[name].append(
                        worker(args, "s2", name, provider, streams=streams[name], chunks=args.s2_chunks)
                    )
        results[provider] = {n: _s2_summary(s, provider) for n, s in samples.items()}
        for name in names:
            summary = results[provider][name]
            if "wall_s" not in summary:
                continue
            _s2_in_flight(args, summary, name, provider, streams[name])
        floor = results[provider]["floor"]
        for summary in results[provider].values():
            if "wall_s" not in summary or "wall_s" not in floor:
                continue
            for key in S2_RATIOS:
                if key in summary and key in floor and floor[key] > 0:
                    summary[f"{key}_ratio"] = summary[key] / floor[key]
    return results


#: The S2 figures reported as a ratio to the floor's.
S2_RATIOS = (
    "wall_us_per_event",
    "cpu_us_per_event",
    "peak_rss",
    "bytes_per_stream",
    "rss_in_flight",
    "in_flight_bytes_per_stream",
    "bytes_per_extra_chunk",
)


def _s2_in_flight(args: argparse.Namespace, summary: dict[str, Any], name: str, provider: str, streams: int) -> None:
    """Memory with every stream held in flight, at S2's length and at the longer one: per stream, and its growth.

    The free-running S2 peak depends on how far the streams happened to overlap
    (a client that finishes streams one after another peaks low); held, all of them
    are live at once with the same number of chunks received, so per-stream memory
    and its growth per extra chunk are the client's own.
    """
    lengths = [args.s2_chunks] + ([args.s2_growth_chunks] if args.s2_growth_chunks else [])
    held: list[dict[str, Any]] = []
    for chunks in lengths:
        log(f"S2 {provider} {name} {streams}x{chunks} (all held in flight)")
        held.append(worker(args, "s2", name, provider, streams=streams, chunks=chunks, in_flight=True))
    summary["in_flight"] = held
    if "bytes_per_stream" not in held[0]:
        return
    summary["rss_in_flight"] = held[0]["rss_in_flight"]
    summary["in_flight_bytes_per_stream"] = held[0]["bytes_per_stream"]
    if len(held) > 1 and "bytes_per_stream" in held[1]:
        extra = args.s2_growth_chunks - args.s2_chunks
        summary["bytes_per_extra_chunk"] = (held[1]["bytes_per_stream"] - held[0]["bytes_per_stream"]) / extra


def s3(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for provider, names in groups(args).items():
        results[provider] = {}
        for name in names[1:]:  # each worker measures its client beside the floor
            log(f"S3 {provider} {name}")
            r = worker(args, "s3", name, provider, requests=args.s3_requests)
            if "ttfe_us" in r:
                r["ratio_to_floor"] = r["ttfe_us"] / r["floor_ttfe_us"]
            results[provider][name] = r
    return results


def s4(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in ["floor", *args.clients]:
        if name in results or name not in IMPORTS:
            continue
        reason = missing(REGISTRY[name])
        if reason is not None:
            results[name] = {"skipped": reason}
            continue
        runs = args.slow_repeat + 2 if name in S2_SCALE else args.s4_repeat
        log(f"S4 import {IMPORTS[name]}")
        results[name] = worker(args, "s4", name, "openai", module=IMPORTS[name], repeat=runs)
    floor = results["floor"]
    for r in results.values():
        if "import_s" in r:
            r["import_ratio"] = r["import_s"] / floor["import_s"]
            r["rss_ratio"] = r["rss_added"] / floor["rss_added"]
    if "lluminary" in results and "extras_imported" in results["lluminary"]:
        results["lluminary"]["extras_ok"] = not results["lluminary"]["extras_imported"]
    return results


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "implementation": platform.python_implementation()}
    packages = {"aiohttp", "msgspec", "lluminary", *(p for spec in REGISTRY.values() for p in spec.packages)}
    for package in sorted(packages):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "unknown")
    except OSError:
        return platform.processor() or "unknown"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", default=",".join(REGISTRY), help="comma-separated (the floor always runs)")
    p.add_argument("--scenarios", default="s1,s2,s3,s4", help="comma-separated: s1, s2, s3, s4")
    p.add_argument("--providers", default="openai,anthropic", help="wire formats for S1-S3, comma-separated")
    p.add_argument("--s1-chunks", type=int, default=2000)
    p.add_argument("--s1-repeat", type=int, default=5, help="S1 samples per client and round (median)")
    p.add_argument("--s1-rounds", type=int, default=3, help="S1 rounds, every client once per round")
    p.add_argument("--min-sample", type=float, default=0.2, help="S1: seconds a sample lasts at least")
    p.add_argument("--s2-streams", type=int, default=1000)
    p.add_argument("--s2-chunks", type=int, default=200)
    p.add_argument("--s2-growth-chunks", type=int, default=800, help="S2's longer streams (0: skip)")
    p.add_argument("--s2-repeat", type=int, default=5, help="S2 samples (processes) per client (median)")
    p.add_argument("--slow-repeat", type=int, default=1, help="S2 samples for the slow peers")
    p.add_argument("--s3-requests", type=int, default=200)
    p.add_argument("--s4-repeat", type=int, default=5, help="fresh interpreters per import (median)")
    p.add_argument("--quick", action="store_true", help="a tiny load for every scenario (checks the harness)")
    p.add_argument("--out", type=Path, help="also write the JSON here")
    p.add_argument("--results-dir", type=Path, default=HERE / "results")
    p.add_argument("--no-pin", action="store_true", help="do not pin the server and the workers to CPUs")
    args = p.parse_args(argv)
    args.clients = [c for c in args.clients.split(",") if c]
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.providers = [s for s in args.providers.split(",") if s]
    unknown = (
        set(args.clients) - set(REGISTRY)
        or set(args.scenarios) - {"s1", "s2", "s3", "s4"}
        or set(args.providers) - {"openai", "anthropic"}
    )
    if unknown:
        p.error(f"unknown client or scenario: {', '.join(sorted(unknown))}")
    if args.quick:
        args.s1_chunks, args.s1_repeat, args.s1_rounds, args.min_sample = 50, 1, 1, 0.0
        args.s2_streams, args.s2_chunks, args.s2_growth_chunks, args.s2_repeat = 20, 20, 40, 1
        args.s3_requests, args.s4_repeat = 4, 1
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    server_cpu, args.client_cpu = pin_cpus(not args.no_pin)
    skipped = {n: r for n in args.clients if (r := missing(REGISTRY[n])) is not None}
    args.clients = [n for n in args.clients if n not in skipped]
    load_before = os.getloadavg()
    started = dt.datetime.now(dt.UTC)
    runners = {"s1": s1, "s2": s2, "s3": s3, "s4": s4}
    results: dict[str, Any] = {}
    with ServerProcess(server_cpu) as srv:
        args.origin = srv.url
        for scenario in args.scenarios:
            results[scenario] = runners[scenario](args)
    report = {
        "benchmark": "all",
        "date": started.isoformat(timespec="seconds"),
        "duration_s": (dt.datetime.now(dt.UTC) - started).total_seconds(),
        "command": [sys.executable, *sys.argv],
        "versions": versions(),
        "machine": {
            "platform": platform.platform(),
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "server_cpu": server_cpu,
            "client_cpu": args.client_cpu,
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "results_dir", "origin")},
        "s2_scale": S2_SCALE,
        "skipped": skipped,
        "results": results,
    }
    table = markdown(report)
    print(table)
    body = json.dumps(report, indent=2, default=str) + "\n"
    path = dated_path(args.results_dir, "all.json")
    path.write_text(body)
    table_path = dated_path(args.results_dir, "table.md")
    table_path.write_text(table + "\n")
    log(f"\nwrote {path} and {table_path}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(body)
    return report


if __name__ == "__main__":
    main()
