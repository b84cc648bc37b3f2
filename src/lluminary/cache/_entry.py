"""What a cache stores, how it records a live stream, and how it replays one.

Shared by the exact :class:`~lluminary.engine.operators.Cache` and the
:class:`~lluminary.engine.operators.SemanticCache`, so both store the same value
and replay it the same way.

The value is msgpack (never pickle) of a :class:`CacheEntry`: the events, plus
the gap before each event in whole milliseconds, so a replay can keep the
original pace if asked. Gaps rather than absolute offsets because they are small
numbers, one or two bytes each in msgpack. The events are msgpack's form of the
events codec (:func:`~lluminary.events.encode_events_msgpack`), except that a text
delta of block 0, nearly every event of a stream, is stored as its bare text: a
few bytes instead of a map of three fields (``version`` 2; entries of version 1,
every event a map, are still read).

The recording keeps every event of the stream except the operator events that
describe the live call itself (``retry``, ``fallback``, ``rate-limit-wait``,
``budget-alert``, ``cost``, an inner ``cache-hit``): replaying a ``retry`` that
never happened, or a ``cost`` that was not paid, would be false. Everything else
is kept, including kinds added in the future: a cache that drops what it does
not know loses detail on a hit (LiteLLM #11145, #32068).

Store calls go through :func:`guarded`, the one place the fail-open rule lives:
a :class:`StoreError` or an operation slower than the bound is a miss (or a
skipped write), logged once per outage rather than once per request.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import operator
import time
import types
from array import array
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import anyio
import msgspec

from lluminary.errors import DecodeError
from lluminary.events import (
    BudgetAlert,
    CacheHit,
    Cost,
    Event,
    Fallback,
    Finish,
    RateLimitWait,
    Retry,
    Start,
    TextDelta,
    decode_events_msgpack,
)
from lluminary.providers import redact
from lluminary.stores import StoreError

__all__ = ["ENTRY_VERSION", "CacheEntry", "CacheStats", "Recorder", "StoreGuard", "decode_entry", "replay"]

T = TypeVar("T")

ENTRY_VERSION: Final = 2
#: Events that describe one live call, not the response: never recorded.
LIVE_ONLY: Final = (Retry, Fallback, RateLimitWait, BudgetAlert, Cost, CacheHit)

log = logging.getLogger("lluminary.cache")
_monotonic = time.monotonic


class CacheEntry(msgspec.Struct, frozen=True, array_like=True):
    """One cached stream. ``array_like`` keeps field names out of every stored value."""

    version: int
    events: bytes  # msgpack of the events, a text delta of block 0 as its text (version 2)
    gaps_ms: list[int]  # milliseconds between the previous event (or the call) and each event
    created: float  # seconds since the epoch, for people looking at a store

    def encode(self) -> bytes:
        return _encoder.encode(self)


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(CacheEntry)
_events_decoder = msgspec.msgpack.Decoder(list[str | Event])


def decode_entry(value: bytes) -> tuple[list[Event], list[int]] | None:
    """The events and gaps of a stored value, or None if it is not a complete stream we wrote.

    Anything unexpected (another version, corrupt bytes, a stream that does not end in
    ``finish``) is treated as a miss: the live call then overwrites it.
    """
    events: list[Event]
    try:
        entry = _decoder.decode(value)
        if entry.version == ENTRY_VERSION:
            items = _events_decoder.decode(entry.events)
            events = [TextDelta(item) if isinstance(item, str) else item for item in items]
        elif entry.version == 1:
            events = decode_events_msgpack(entry.events)
        else:
            return None
    except (msgspec.DecodeError, msgspec.ValidationError, DecodeError):
        return None
    if not events or not isinstance(events[-1], Finish) or len(entry.gaps_ms) != len(events):
        return None
    return events, entry.gaps_ms


class Recorder:
    """Collects a live stream for a cache write; holds nothing but the events and their times.

    Text deltas, nearly every event of a stream, are held as their bare text (the
    string the consumer has anyway), and the times as one array of 4-byte floats,
    seconds since the recording began (exact to well under a millisecond for the
    first two hours, and gaps are stored in whole milliseconds): a recording costs
    a list slot and 4 bytes per event, not a second object. The gaps and the
    events themselves are made once, when the entry is written.

    Past ``max_events`` it gives up and frees what it held: a stream that long is
    not worth the memory, and a partial recording must never be written.
    """

    __slots__ = ("begun", "held", "max_events", "overflowed", "room", "times")

    def __init__(self, max_events: int) -> None:
        self.max_events = max_events
        self.held: list[Event | str] = []  # a str is the text of a TextDelta at index 0
        self.times = array("f")
        self.room = max_events  # events it may still take
        self.overflowed = False
        # The clock asyncio's loop (so anyio) runs on, read directly: anyio.current_time()
        # asks sniffio for the running library on every call, over 1 µs per recorded event.
        self.begun = _monotonic()

    def hot_path(
        self,
    ) -> tuple[int, Callable[[Event | str], None], Callable[[float], None], Callable[[], float], float]:
        """``(room, hold, stamp, clock, begun)``, for a caller that records text deltas inline.

        Per text delta: if ``room``, take one from it, ``hold`` the text (or the event,
        off block 0) and ``stamp`` ``clock() - begun``; without room, :meth:`overflow`.
        The caller sets :attr:`room` back before it calls anything else on the
        recorder, and reads it again after.
        """
        return self.room, self.held.append, self.times.append, _monotonic, self.begun

    def add(self, event: Event) -> None:
        if event.__class__ is TextDelta:
            self.add_text(event)
        elif not isinstance(event, LIVE_ONLY):
            self._add(event)

    def add_text(self, event: TextDelta) -> None:
        """:meth:`add` for a text delta, which nearly every event of a stream is."""
        if self.room:
            self.room -= 1
            self.held.append(event.text if event.index == 0 else event)
            self.times.append(_monotonic() - self.begun)
        else:
            self.overflow()

    def _add(self, event: Event) -> None:
        if self.room:
            self.room -= 1
            self.held.append(event)
            self.times.append(_monotonic() - self.begun)
        else:
            self.overflow()

    def overflow(self) -> None:
        """Give up: past ``max_events`` the recording is dropped, and nothing more is held."""
        if not self.overflowed:
            self.overflowed = True
            self.held = []
            self.times = array("f")

    @property
    def events(self) -> list[Event]:
        """The events recorded so far, as they were."""
        return [TextDelta(item) if item.__class__ is str else item for item in self.held]  # type: ignore[misc]

    def gaps_ms(self) -> list[int]:
        """Milliseconds between the previous event (or the recording's start) and each event.

        The clock is monotonic, so no gap is negative. Computed with ``map`` over C
        functions: a Python loop here cost more than encoding the events.
        """
        times = self.times
        before = itertools.chain((0.0,), times)
        return list(map(round, map(operator.mul, map(operator.sub, times, before), itertools.repeat(1000.0))))

    def entry(self) -> bytes:
        """The stored value: the events as held (text as bare strings), encoded without rebuilding them."""
        return CacheEntry(ENTRY_VERSION, _encoder.encode(self.held), self.gaps_ms(), time.time()).encode()


async def replay(events: list[Event], gaps_ms: list[int], hit: CacheHit, *, pace: bool) -> AsyncGenerator[Event, None]:
    """The stored stream with ``hit`` right after its ``start``; with ``pace``, at the recorded pace.

    ``cache-hit`` follows ``start`` rather than preceding it: ``start`` stays the
    first event of every stream, as from a provider, and the consumer still learns
    that the content is a replay before the first piece of it.
    """
    deadline = anyio.current_time()
    announced = False
    for event, gap in zip(events, gaps_ms, strict=True):
        if pace and gap:
            deadline += gap / 1000
            await anyio.sleep_until(deadline)
        if not announced and not isinstance(event, Start):
            announced = True
            yield hit
        yield event
        if not announced:
            announced = True
            yield hit


@dataclass
class CacheStats:
    """Counters of one cache operator (per instance, not per store)."""

    hits: int = 0
    misses: int = 0
    writes: int = 0
    #: Store operations that failed or timed out; each made a request uncached.
    errors: int = 0
    #: Streams not written: they ended in ``error``, were cut, cancelled, abandoned or too long.
    skipped: int = 0


class StoreGuard:
    """Runs store calls under a time bound and turns every failure into "no result".

    It logs a warning when a store starts failing and an info line when it answers
    again, not once per request: a cache outage must not flood the logs.
    """

    def __init__(self, timeout: float, stats: CacheStats, what: str) -> None:
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ValueError("op_timeout must be a positive number of seconds")
        self.timeout = timeout
        self.stats = stats
        self.what = what
        self._failing = False

    async def __call__(self, op: Callable[[], Awaitable[T]]) -> tuple[bool, T | None]:
        """``(True, result)``, or ``(False, None)`` after a ``StoreError`` or ``timeout`` seconds."""
        problem = None
        try:
            result = await _within(op(), self.timeout)
        except StoreError as exc:
            problem = redact(str(exc))
        except TimeoutError:
            pass
        else:
            if self._failing:
                self._failing = False
                log.info("%s answers again; caching resumed", self.what)
            return True, result
        self.stats.errors += 1
        if not self._failing:
            self._failing = True
            problem = problem or f"took longer than {self.timeout:g}s"
            log.warning("%s unavailable (%s); requests proceed uncached", self.what, problem)
        return False, None


async def _within(aw: Awaitable[T], seconds: float) -> T:
    """``await aw``, raising TimeoutError after ``seconds``.

    A store call that completes without waiting (an in-process store) needs no
    timer: its first step is taken by hand, and only a call that has to wait runs
    the rest of its course under a timeout, whose loop timer otherwise costs more
    than the call. The engine runs on asyncio (see the transports).
    """
    step = aw.__await__()
    try:
        pending = step.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    # asyncio's timeout, not an anyio cancel scope: the call may have entered scopes of
    # its own in that first step, and anyio requires scopes to nest within a task.
    async with asyncio.timeout(seconds):
        return await _resume(step, pending)


@types.coroutine
def _resume(step: Generator[Any, Any, T], pending: Any) -> Generator[Any, Any, T]:
    """Finish awaiting ``step`` after its first ``send`` stopped at ``pending``.

    What ``await`` would have done from there: waits go to the event loop, and what
    the loop sends or throws in (the timeout's cancellation) goes on to ``step``.
    """
    value = pending
    while True:
        try:
            try:
                sent = yield value
            except GeneratorExit:
                step.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - forwarded to the awaited step, as await does
                value = step.throw(exc)
            else:
                value = step.send(sent)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
