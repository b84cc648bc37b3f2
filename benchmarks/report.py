"""The markdown table of a ``bench_all.py`` run, ready to paste into the README.

One table per scenario; each figure is followed by its ratio to the floor of the
same run (``x floor``), which is the number to compare between machines. A
client that was skipped or failed is listed with the reason, never dropped.
``python benchmarks/report.py results/<date>-all.json`` prints the table of a
stored run again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["markdown"]


def _x(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _failed(name: str, provider: str, r: dict[str, Any], columns: int) -> str | None:
    reason = r.get("skipped") or r.get("error")
    if reason is None:
        return None
    word = "skipped" if "skipped" in r else "FAILED"
    return f"| {name} | {provider} | {word}: {reason} |" + " |" * (columns - 3)


def _s1(results: dict[str, Any]) -> list[str]:
    lines = [
        "**S1: CPU per event** (one stream of {chunks} chunks; median of {rounds} rounds of {repeat} samples, "
        "every client once per round)",
        "",
        "| client | wire | CPU µs/event | x floor | events/s |",
        "|---|---|---:|---:|---:|",
    ]
    for provider, clients in results.items():
        for name, r in clients.items():
            failed = _failed(name, provider, r, 5)
            lines.append(
                failed
                or f"| {name} | {provider} | {r['cpu_us_per_event']:.2f} | {_x(r.get('ratio_to_floor'))} "
                f"| {r['events_per_s']:,.0f} |"
            )
    return lines


def _s2(results: dict[str, Any]) -> list[str]:
    lines = [
        "**S2: concurrent streams** (all streams started at once; wall and CPU per wire event)",
        "",
        "| client | wire | streams x chunks (runs) | wall s | wall µs/ev | x floor | CPU µs/ev | x floor |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for provider, clients in results.items():
        for name, r in clients.items():
            failed = _failed(name, provider, r, 8)
            lines.append(
                failed
                or f"| {name} | {provider} | {r['streams']}x{r['chunks']} ({r['runs']}) | {r['wall_s']:.2f} "
                f"| {r['wall_us_per_event']:.2f} | {_x(r.get('wall_us_per_event_ratio'))} "
                f"| {r['cpu_us_per_event']:.2f} | {_x(r.get('cpu_us_per_event_ratio'))} |"
            )
    return lines


def _s2_memory(results: dict[str, Any]) -> list[str]:
    lines = [
        "**S2: memory** (client process RSS. Free-running: the peak over the S2 runs above, and (peak - RSS "
        "before) / streams. Held: every stream held by the server just before its end, all in flight at once "
        "with the same chunks received; RSS then, per stream, and how much that grows per extra chunk, "
        "from a second held run of {long} chunks)",
        "",
        "| client | wire | peak RSS MB | x floor | KB/stream | x floor | held RSS MB | x floor | held KB/stream "
        "| x floor | growth B/chunk | x floor |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for provider, clients in results.items():
        for name, r in clients.items():
            failed = _failed(name, provider, r, 12)
            if failed:
                lines.append(failed)
                continue
            held = r.get("in_flight") or [{"error": "not run"}]
            problem = next((h.get("error") or h.get("skipped") for h in held if "bytes_per_stream" not in h), None)
            if "rss_in_flight" in r:
                held_cells = (
                    f"{r['rss_in_flight'] / 2**20:.0f} | {_x(r.get('rss_in_flight_ratio'))} "
                    f"| {r['in_flight_bytes_per_stream'] / 1024:.1f} | {_x(r.get('in_flight_bytes_per_stream_ratio'))}"
                )
            else:
                held_cells = f"({problem}) | | |"
            growth = r.get("bytes_per_extra_chunk")
            growth_cells = (
                f"{growth:,.0f} | {_x(r.get('bytes_per_extra_chunk_ratio'))}"
                if growth is not None
                else f"({problem or 'not run'}) |"
            )
            lines.append(
                f"| {name} | {provider} | {r['peak_rss'] / 2**20:.0f} | {_x(r.get('peak_rss_ratio'))} "
                f"| {r['bytes_per_stream'] / 1024:.1f} | {_x(r.get('bytes_per_stream_ratio'))} "
                f"| {held_cells} | {growth_cells} |"
            )
    return lines


def _s3(results: dict[str, Any]) -> list[str]:
    lines = [
        "**S3: time to first event** ({requests} sequential one-chunk requests, each beside a floor request in "
        "the same process; medians)",
        "",
        "| client | wire | TTFE µs | floor TTFE µs | added µs | x floor |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for provider, clients in results.items():
        for name, r in clients.items():
            failed = _failed(name, provider, r, 6)
            lines.append(
                failed
                or f"| {name} | {provider} | {r['ttfe_us']:,.0f} | {r['floor_ttfe_us']:,.0f} "
                f"| {r['added_ttfe_us']:+,.0f} | {_x(r.get('ratio_to_floor'))} |"
            )
    return lines


def _s4(results: dict[str, Any]) -> list[str]:
    lines = [
        "**S4: import** (fresh interpreter; median time and RSS added; the floor imports aiohttp and msgspec)",
        "",
        "| client | imports | time ms | x floor | RSS added MB | x floor | modules | extras imported |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in results.items():
        failed = _failed(name, "", r, 8)
        if failed:
            lines.append(failed)
            continue
        extras = ", ".join(r["extras_imported"]) or "none"
        lines.append(
            f"| {name} | `{r['module']}` ({r['runs']} runs) | {r['import_s'] * 1000:.0f} | {_x(r.get('import_ratio'))} "
            f"| {r['rss_added'] / 2**20:.1f} | {_x(r.get('rss_ratio'))} | {r['modules_loaded']} | {extras} |"
        )
    return lines


def markdown(report: dict[str, Any]) -> str:
    """The whole run as markdown: a header with the machine and versions, then one table per scenario."""
    machine, settings, versions = report["machine"], report["settings"], report["versions"]
    peers = ", ".join(f"{k} {v}" for k, v in versions.items() if k not in ("implementation",))
    out = [
        f"Run {report['date']} ({report['duration_s']:.0f} s), {machine['cpu_model']}, "
        f"{machine['cpu_count']} CPUs (server on CPU {machine['server_cpu']}, clients on CPU {machine['client_cpu']}), "
        f"load average {machine['loadavg_before'][0]:.1f} before, {machine['loadavg_after'][0]:.1f} after.",
        "",
        f"Versions: {peers}.",
        "",
    ]
    scale = report.get("s2_scale", {})
    if scale:
        reduced = ", ".join(f"{name} {share:.0%}" for name, share in scale.items())
        out += [
            f"S2 runs the slow peers at a share of the streams ({reduced}) and {settings['slow_repeat']} run(s) "
            f"instead of {settings['s2_repeat']}; the per-event and per-stream figures stay comparable.",
            "",
        ]
    for name, reason in report.get("skipped", {}).items():
        out += [f"Skipped: {name}: {reason}", ""]
    results = report["results"]
    formats = {
        "s1": (
            _s1,
            {"chunks": settings["s1_chunks"], "repeat": settings["s1_repeat"], "rounds": settings.get("s1_rounds", 1)},
        ),
        "s2": (_s2, {}),
        "s2-memory": (_s2_memory, {"long": settings.get("s2_growth_chunks", 0)}),
        "s3": (_s3, {"requests": settings["s3_requests"]}),
        "s4": (_s4, {}),
    }
    for key, (render, fill) in formats.items():
        scenario = key.partition("-")[0]
        if scenario in results:
            lines = render(results[scenario])
            lines[0] = lines[0].format(**fill)
            out += [*lines, ""]
    return "\n".join(out).rstrip()


if __name__ == "__main__":
    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
