"""Cache: replay the complete stream of an identical earlier request.

On a hit the stored events are replayed as a stream, ``start`` first, then a
``cache-hit`` event, then everything else exactly as the provider sent it (text,
reasoning with its signatures, tool calls with their argument deltas, usage,
finish); with ``pace=True`` at the recorded pace, time to first token included.
On a miss the live events pass through unchanged, nothing extra is emitted, and
the stream is recorded. It is written only when it ended in ``finish``: never
after ``error``, never when cut, cancelled, timed out or abandoned by its
consumer, since a partial stream replayed for an hour is worse than no cache
(cashews #246, gonka #1722).

The write happens when ``finish`` arrives and before it is passed on, so the
final event waits for the write (at most ``op_timeout``). Writing after passing
it on would not work: a consumer that has its ``finish`` closes the stream, and
with it this generator, at once.

Fail open: when the store raises :class:`StoreError` or takes longer than
``op_timeout`` (100 ms by default), the request goes to the provider uncached and
its write is skipped too, so a request pays for a dead store at most once.

Keys (see :mod:`lluminary.cache`) cover every output-affecting field, the
provider's base URL, a namespace and the tenant. The base URL is not in the
request, so it comes from ``base_url``: a string, or a callable from the request
(``lluminary.cache.engine_base_url(engine)`` reads it from the engine's
providers). Left out, requests that one provider name routes to different
endpoints would share entries. When the callable raises :class:`ConfigError`
(the provider cannot be built) the request bypasses the cache.

Where to put it: outside Retry and Fallback, so the successful outcome of the
whole policy is cached; inside Cost and budget operators if a hit should cost
nothing (a hit replays the original ``usage``, marked by the ``cache-hit`` before it).
Concurrent misses for one key all go to the provider; the last write wins.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing

from lluminary.cache._entry import CacheStats, Recorder, StoreGuard, decode_entry, replay
from lluminary.cache._key import cache_key
from lluminary.engine._operator import Handler
from lluminary.errors import ConfigError
from lluminary.events import CacheHit, ChatRequest, Event, Finish, TextDelta, is_terminal
from lluminary.stores import CacheStore

__all__ = ["BaseUrl", "Cache", "resolve_base_url"]

#: A fixed base URL, or a function from the request to its provider's base URL.
BaseUrl = str | Callable[[ChatRequest], str | None] | None


def resolve_base_url(base_url: BaseUrl, request: ChatRequest) -> tuple[bool, str | None]:
    """``(usable, url)``: not usable when the resolver cannot name the provider's endpoint."""
    if base_url is None or isinstance(base_url, str):
        return True, base_url
    try:
        return True, base_url(request)
    except ConfigError:
        return False, None


class Cache:
    """Exact-match response cache over any :class:`~lluminary.stores.CacheStore`.

    ``ttl`` is in seconds (None: no expiry). ``namespace`` separates caches that
    share a store (per application, per deployment); the tenant is always part of
    the key as well. ``max_events`` bounds what one recording may hold.
    """

    def __init__(
        self,
        store: CacheStore,
        *,
        ttl: float | None = 3600,
        namespace: str | None = None,
        pace: bool = False,
        op_timeout: float = 0.1,
        base_url: BaseUrl = None,
        max_events: int = 100_000,
    ) -> None:
        if ttl is not None and not ttl > 0:
            raise ValueError("ttl must be a positive number of seconds, or None")
        if max_events < 1:
            raise ValueError("max_events must be positive")
        self.store = store
        self.ttl = ttl
        self.namespace = namespace
        self.pace = pace
        self.base_url = base_url
        self.max_events = max_events
        self.stats = CacheStats()
        self._guard = StoreGuard(op_timeout, self.stats, f"cache store {type(store).__name__}")

    @property
    def op_timeout(self) -> float:
        return self._guard.timeout

    def key(self, request: ChatRequest) -> str | None:
        """The key ``request`` is cached under, or None if it bypasses the cache."""
        usable, url = resolve_base_url(self.base_url, request)
        return cache_key(request, namespace=self.namespace, base_url=url) if usable else None

    def __call__(self, inner: Handler) -> Handler:
        store, guard, stats = self.store, self._guard, self.stats

        async def handler(request: ChatRequest) -> AsyncIterator[Event]:
            key = self.key(request)
            if key is None:
                stream = inner(request)
                try:
                    async for event in stream:
                        yield event
                finally:
                    await stream.aclose()  # type: ignore[attr-defined]
                return
            ok, value = await guard(lambda: store.get(key))
            if value is not None:
                stored = decode_entry(value)
                if stored is not None:
                    stats.hits += 1
                    async with aclosing(replay(*stored, CacheHit(key=key), pace=self.pace)) as events:
                        async for event in events:
                            yield event
                    return
            stats.misses += 1
            # A store that just failed is not asked again for this request's write.
            recorder = Recorder(self.max_events) if ok else None
            # Text deltas are recorded inline (Recorder.add_text, without a method call per
            # event, which cost a quarter of this operator): the appends and the room left
            # are locals, and the room goes back to the recorder before any other call on it.
            room, hold, stamp, clock, begun = (0, None, None, None, 0.0) if recorder is None else recorder.hot_path()
            written = False
            stream = inner(request)
            try:
                async for event in stream:
                    if event.__class__ is TextDelta:  # the bulk of every stream: neither finish nor terminal
                        if room:
                            room -= 1
                            hold(event.text if event.index == 0 else event)  # type: ignore[misc]
                            stamp(clock() - begun)  # type: ignore[misc]
                        elif recorder is not None:
                            recorder.overflow()
                            recorder = hold = stamp = None
                        yield event
                        continue
                    if recorder is not None:
                        recorder.room = room
                        recorder.add(event)
                        room = recorder.room
                        if isinstance(event, Finish) and not recorder.overflowed:
                            entry = recorder.entry()
                            recorder = hold = stamp = None  # the events are in ``entry`` now; free the list
                            room = 0
                            written, _ = await guard(functools.partial(store.set, key, entry, self.ttl))
                            stats.writes += written
                    yield event
                    if is_terminal(event):
                        return
            finally:
                if ok and not written:
                    stats.skipped += 1
                await stream.aclose()  # type: ignore[attr-defined]

        return handler
