"""Diagnostics for the streaming benchmark, run outside its timed window.

- :func:`counting_reads` counts socket reads (``StreamReader.readany`` calls), to
  show how many SSE events each read delivered to each client. That number
  decides much of the per-event cost (see the README), so the harness reports it.
- :func:`profile` runs a coroutine under cProfile and sums the time by library
  (LLuMinary, aiohttp, asyncio, msgspec, C builtins …) and by LLuMinary function.

cProfile's own cost per call inflates code made of many small calls (generators,
small methods) relative to C code: read its shares as a ranking, not as timings.
"""

from __future__ import annotations

import cProfile
import pstats
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

__all__ = ["counting_reads", "profile"]

_LIBRARIES = ("aiohttp", "yarl", "multidict", "asyncio", "msgspec", "anyio")


@contextmanager
def counting_reads() -> Iterator[list[int]]:
    """Count ``StreamReader.readany`` calls while inside: both clients read through it.

    Only for untimed runs: the wrapper adds a coroutine to every read.
    """
    counter = [0]
    original = aiohttp.StreamReader.readany

    async def readany(self: aiohttp.StreamReader) -> bytes:
        counter[0] += 1
        return await original(self)

    setattr(aiohttp.StreamReader, "readany", readany)  # noqa: B010 - mypy forbids assigning to a method
    try:
        yield counter
    finally:
        setattr(aiohttp.StreamReader, "readany", original)  # noqa: B010 - as above


async def profile(work: Awaitable[object], events: int, path: Path, title: str, own_files: set[str]) -> dict[str, Any]:
    """Await ``work`` under cProfile, dump the stats to ``path``, print and return the summary."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        await work
    finally:
        profiler.disable()
    profiler.dump_stats(path)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(tt for _, _, tt, _, _ in raw.values()) or 1.0
    areas: dict[str, float] = {}
    ours: list[tuple[float, float, int, str]] = []
    for (filename, line, func), (_, calls, tt, ct, _) in raw.items():
        area = _area(filename, func, own_files)
        areas[area] = areas.get(area, 0.0) + tt
        if area == "lluminary":
            where = filename[filename.rfind("lluminary") :]
            ours.append((tt, ct, calls, f"{where}:{line}({func})"))
    ours.sort(reverse=True)
    print(f"\n--- cProfile, {title}: own time by area ---")
    for area, tt in sorted(areas.items(), key=lambda kv: -kv[1]):
        print(f"  {area:<10} {tt / total:6.1%}  {tt / events * 1e6:7.2f} us/event (profiled)")
    print("--- hottest lluminary functions: own share, cumulative share, calls ---")
    for tt, ct, calls, where in ours[:15]:
        print(f"  {tt / total:6.1%} {ct / total:7.1%} {calls:>8}  {where}")
    return {
        "file": str(path),
        "areas": {area: tt / total for area, tt in areas.items()},
        "lluminary_top": [
            {"function": where, "own": tt / total, "cumulative": ct / total, "calls": calls}
            for tt, ct, calls, where in ours[:15]
        ],
    }


def _area(filename: str, func: str, own_files: set[str]) -> str:
    """Which library a profiled function belongs to (C functions are named, not filed)."""
    if "/lluminary/" in filename:
        return "lluminary"
    if filename in own_files:
        return "benchmark"
    for lib in _LIBRARIES:
        if f"/{lib}/" in filename or lib in func:
            return lib
    if "epoll" in func or "socket" in func:
        return "syscalls"
    return "builtins" if filename == "~" else "other"
