"""SemanticCache: answer a question from the stream of an earlier question that means the same.

Off unless added to an engine. What is compared: the text of the request's last
message, when it is a user message made only of text (anything else, and texts
longer than ``max_chars``, bypass this cache). Everything else must be equal:
the vector-index namespace is a hash of the request with that text blanked out
(:func:`~lluminary.cache.context_key`), so model, parameters, tools, the system
prompt (exactly, not by similarity: a long shared system prompt would otherwise
dominate the embedding and make every question look alike), earlier turns,
provider base URL, namespace and tenant all have to match.

Lookup: embed the text, take the ``k`` nearest entries of that namespace, and
hit on the most similar one at or above ``threshold`` that also passes the
near-miss ``guard`` (:func:`~lluminary.cache.near_miss`: negations, numbers,
names, quoted strings, opposites, swapped roles, one swapped topic word). The default threshold was
measured on the labelled set in ``tests/cache/data/paraphrases.jsonl`` with the
local embedder: see :data:`DEFAULT_THRESHOLD`. A hit replays the stored stream
like :class:`~lluminary.engine.operators.Cache`, announced by ``cache-hit`` with
the entry key and the similarity.

Storage: the stream goes to the :class:`CacheStore` under the entry key, the
vector to the :class:`VectorIndex` with a small payload (the question and that
key), both with ``ttl``. A vector whose stream has expired is a miss and is
dropped. The write rules are the exact cache's: only after ``finish``, before
passing it on, each store call bounded by ``op_timeout``; embedding is bounded by
``embed_timeout``. Any failure (:class:`StoreError`, :class:`EmbedderError`, a
bound passed) means the request goes to the provider uncached.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Final

import anyio
import msgspec

from lluminary.cache._entry import CacheStats, Recorder, StoreGuard, decode_entry, replay
from lluminary.cache._guards import near_miss
from lluminary.cache._key import context_key, entry_key
from lluminary.embedders import Embedder, EmbedderError
from lluminary.engine._operator import Handler
from lluminary.engine.operators._cache import BaseUrl, resolve_base_url
from lluminary.events import CacheHit, ChatRequest, Event, Finish, TextPart, is_terminal
from lluminary.stores import CacheStore, VectorIndex

__all__ = ["DEFAULT_THRESHOLD", "SemanticCache"]

#: Cosine similarity a candidate needs; measured with all-MiniLM-L6-v2 and the guards on, on
#: the 316 labelled pairs of tests/cache/data/paraphrases.jsonl. No near miss that gets past
#: the guards scores above 0.79 there, so 0.85 leaves a margin for near misses unlike ours.
#: At 0.85: 81% of paraphrases hit (124/153; 70% on the held-out part), 0 of 163 near misses
#: do; the threshold alone would let 50% of the near misses through. Other embedders need
#: their own measurement.
DEFAULT_THRESHOLD: Final = 0.85

Guard = Callable[[str, str], str | None]


class _Payload(msgspec.Struct, frozen=True, array_like=True):
    text: str
    key: str


_encode_payload = msgspec.msgpack.Encoder().encode
_decode_payload = msgspec.msgpack.Decoder(_Payload).decode


def question(request: ChatRequest) -> str | None:
    """The text the semantic cache compares: the last message, if it is a text-only user message."""
    if not request.messages:
        return None
    last = request.messages[-1]
    if last.role != "user":
        return None
    if isinstance(last.content, str):
        return last.content.strip() or None
    if not all(isinstance(part, TextPart) for part in last.content):
        return None
    return "\n".join(part.text for part in last.content if isinstance(part, TextPart)).strip() or None


class SemanticCache:
    """Similarity cache over a :class:`VectorIndex`, a :class:`CacheStore` and an :class:`Embedder`."""

    def __init__(
        self,
        index: VectorIndex,
        store: CacheStore,
        embedder: Embedder,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        namespace: str | None = None,
        ttl: float | None = 3600,
        guard: Guard | None = near_miss,
        k: int = 4,
        max_chars: int = 1000,
        pace: bool = False,
        op_timeout: float = 0.1,
        embed_timeout: float = 2.0,
        base_url: BaseUrl = None,
        max_events: int = 100_000,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        if ttl is not None and not ttl > 0:
            raise ValueError("ttl must be a positive number of seconds, or None")
        if k < 1 or max_chars < 1 or max_events < 1 or not embed_timeout > 0:
            raise ValueError("k, max_chars, max_events and embed_timeout must be positive")
        self.index, self.store, self.embedder = index, store, embedder
        self.threshold = threshold
        self.namespace = namespace
        self.ttl = ttl
        self.guard = guard
        self.k = k
        self.max_chars = max_chars
        self.pace = pace
        self.embed_timeout = embed_timeout
        self.base_url = base_url
        self.max_events = max_events
        self.stats = CacheStats()
        self._stores = StoreGuard(op_timeout, self.stats, f"semantic cache ({type(store).__name__})")
        self._vectors = StoreGuard(op_timeout, self.stats, f"vector index {type(index).__name__}")

    def __call__(self, inner: Handler) -> Handler:
        stats = self.stats

        async def handler(request: ChatRequest) -> AsyncIterator[Event]:
            text = question(request)
            usable, url = resolve_base_url(self.base_url, request)
            vector = await self._embed(text) if usable and text and len(text) <= self.max_chars else None
            # What a write needs, once a lookup has missed on a working index and store.
            pending: tuple[str, str, list[float]] | None = None
            if text and vector is not None:
                space = context_key(request, namespace=self.namespace, base_url=url)
                ok, found = await self._lookup(space, text, vector)
                if found is not None:
                    stats.hits += 1
                    (events, gaps), hit = found
                    # aclosing: a consumer that stops early ends the replay now, not at garbage collection.
                    async with aclosing(replay(events, gaps, hit, pace=self.pace)) as replayed:
                        async for event in replayed:
                            yield event
                    return
                stats.misses += 1
                if ok:
                    pending = (space, text, vector)
            recorder = Recorder(self.max_events) if pending is not None else None
            written = False
            stream = inner(request)
            try:
                async for event in stream:
                    if recorder is not None and pending is not None:
                        recorder.add(event)
                        if isinstance(event, Finish) and not recorder.overflowed:
                            entry, recorder = recorder.entry(), None
                            written = await self._write(*pending, entry)
                    yield event
                    if is_terminal(event):
                        return
            finally:
                if pending is not None and not written:
                    stats.skipped += 1
                await stream.aclose()  # type: ignore[attr-defined]

        return handler

    async def _embed(self, text: str) -> list[float] | None:
        with anyio.move_on_after(self.embed_timeout):
            try:
                (vector,) = await self.embedder.embed([text])
            except EmbedderError:
                self.stats.errors += 1
                return None
            return vector
        self.stats.errors += 1
        return None

    async def _lookup(
        self, space: str, text: str, vector: list[float]
    ) -> tuple[bool, tuple[tuple[list[Event], list[int]], CacheHit] | None]:
        """``(store usable, (stream, cache-hit) or None)``."""
        ok, hits = await self._vectors(lambda: self.index.nearest(space, vector, self.k))
        if not ok:
            return False, None
        for hit in hits or ():
            if hit.similarity < self.threshold:
                break  # most similar first: the rest are below too
            try:
                payload = _decode_payload(hit.payload)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
            if self.guard is not None and self.guard(text, payload.text) is not None:
                continue
            get = functools.partial(self.store.get, payload.key)
            ok, value = await self._stores(get)
            if not ok:
                return False, None
            stored = decode_entry(value) if value is not None else None
            if stored is None:
                # The stream expired or was evicted before its vector: drop the vector.
                await self._vectors(functools.partial(self.index.delete, space, hit.key))
                continue
            return True, (stored, CacheHit(key=payload.key, similarity=hit.similarity))
        return True, None

    async def _write(self, space: str, text: str, vector: list[float], entry: bytes) -> bool:
        """Store the stream and its vector concurrently, so ``finish`` waits one bound, not two.

        If only the vector lands, a later lookup finds no stream behind it, drops it and misses.
        """
        key = entry_key(space, text)
        payload = _encode_payload(_Payload(text, key))
        results: list[bool] = []

        async def put_stream() -> None:
            ok, _ = await self._stores(lambda: self.store.set(key, entry, self.ttl))
            results.append(ok)

        async def put_vector() -> None:
            ok, _ = await self._vectors(lambda: self.index.add(space, key, vector, payload, self.ttl))
            results.append(ok)

        async with anyio.create_task_group() as group:
            group.start_soon(put_stream)
            group.start_soon(put_vector)
        written = all(results)
        self.stats.writes += written
        return written
