"""The semantic cache: measured on a labelled set, guarded against near misses, and run end to end.

``data/paraphrases.jsonl`` holds labelled pairs: true paraphrases, and near
misses (negations, changed numbers, changed names, reversed meanings, quoted
strings, a swapped topic word). Rows marked ``"split": "tune"`` were used while
designing the guards and picking the threshold; ``"holdout"`` rows were written
afterwards and evaluated once, unchanged. The operator tests run on both real
vector indexes (memory and pgvector) with the local MiniLM embedder.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from lluminary import Engine
from lluminary.cache import GUARDS, context_key, entry_key, near_miss
from lluminary.embedders import LocalEmbedder, OpenAIEmbedder
from lluminary.engine.operators._semantic import DEFAULT_THRESHOLD, SemanticCache
from lluminary.events import CacheHit, ChatRequest, Event, Finish, ImagePart, Message, TextPart
from lluminary.providers import create_provider
from lluminary.stores import CacheStore, VectorIndex
from lluminary.stores.memory import MemoryCache, MemoryVectorIndex
from lluminary.stores.postgres import PgVectorIndex, PostgresCache, open_pool
from lluminary.stores.redis import RedisCache
from tests.stores._backends import free_port
from tests.support import ReplayServer, Reply, check_invariants, fixture_bytes

DATA = Path(__file__).parent / "data" / "paraphrases.jsonl"
OPENAI_TEXT = fixture_bytes("openai_chat", "text_stream_include_usage.sse")


class Pair(msgspec.Struct, frozen=True):
    a: str
    b: str
    label: str
    kind: str
    split: str


PAIRS = [msgspec.json.decode(line, type=Pair) for line in DATA.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def similarity(embedder: LocalEmbedder) -> dict[tuple[str, str], float]:
    """Cosine similarity of every labelled pair, from one batched embedding of all texts."""
    texts = sorted({t for p in PAIRS for t in (p.a, p.b)})
    started = time.perf_counter()
    vectors = dict(zip(texts, embedder.embed_sync(texts), strict=True))
    assert time.perf_counter() - started < 15  # a few seconds on one core
    return {(p.a, p.b): sum(x * y for x, y in zip(vectors[p.a], vectors[p.b], strict=True)) for p in PAIRS}


def rates(
    similarity: dict[tuple[str, str], float], threshold: float, *, guards: bool, split: str | None = None
) -> tuple[float, float]:
    """(hit rate on paraphrases, false-hit rate on near misses)."""
    chosen = [p for p in PAIRS if split is None or p.split == split]

    def hits(pair: Pair) -> bool:
        return similarity[(pair.a, pair.b)] >= threshold and (not guards or near_miss(pair.a, pair.b) is None)

    paraphrases = [p for p in chosen if p.label == "paraphrase"]
    near = [p for p in chosen if p.label == "near_miss"]
    return sum(map(hits, paraphrases)) / len(paraphrases), sum(map(hits, near)) / len(near)


def test_the_labelled_set_is_big_and_varied() -> None:
    assert len(PAIRS) >= 200
    kinds = {p.kind for p in PAIRS if p.label == "near_miss"}
    assert {"negation", "number", "entity", "reversal", "quoted", "topic"} <= kinds
    assert sum(p.label == "paraphrase" for p in PAIRS) >= 100
    assert sum(p.label == "near_miss" for p in PAIRS) >= 100
    assert {p.split for p in PAIRS} == {"tune", "holdout"}


def test_hit_and_false_hit_rates_at_the_default_threshold(similarity: dict[tuple[str, str], float]) -> None:
    hit, false_hit = rates(similarity, DEFAULT_THRESHOLD, guards=True)
    hit_raw, false_raw = rates(similarity, DEFAULT_THRESHOLD, guards=False)
    holdout_hit, holdout_false = rates(similarity, DEFAULT_THRESHOLD, guards=True, split="holdout")
    report = (
        f"threshold {DEFAULT_THRESHOLD}: hit {hit:.1%}, false hit {false_hit:.1%} "
        f"(holdout: hit {holdout_hit:.1%}, false hit {holdout_false:.1%}; "
        f"threshold alone: hit {hit_raw:.1%}, false hit {false_raw:.1%})"
    )
    assert false_hit <= 0.01, report
    assert holdout_false <= 0.01, report
    assert hit >= 0.75, report  # guards that refused everything would pass the line above
    assert false_raw >= 0.3, report  # no threshold alone separates these: the guards do the work


def test_the_password_negation_is_similar_yet_refused(similarity: dict[tuple[str, str], float]) -> None:
    a, b = "How do I reset my password?", "How do I not reset my password?"
    assert similarity[(a, b)] >= 0.9  # MiniLM rates it 0.93
    assert near_miss(a, b) == "negation"


@pytest.mark.parametrize(
    ("a", "b", "guard"),
    [
        ("Is coffee bad for you?", "Isn't coffee bad for you?", "negation"),
        ("Make bread with yeast", "Make bread without yeast", "negation"),
        ("Convert 10 miles to km", "Convert 12 miles to km", "numbers"),
        ("Plan a three day trip", "Plan a 4 day trip", "numbers"),
        ("Python 3.10 features", "Python 3.1 features", "numbers"),
        ('What does "ephemeral" mean?', 'What does "ubiquitous" mean?', "quoted"),
        ("What is the capital of France?", "What is the capital of Germany?", "entities"),
        ("Does Alice owe Bob money?", "Does Bob owe Alice money?", "entities"),
        ("How do I enable dark mode?", "How do I disable dark mode?", "opposites"),
        ("Sort in ascending order", "Sort in descending order", "opposites"),
        ("Which is the cheapest city?", "Which is the most expensive city?", "opposites"),
        ("Is the data valid?", "Is the data invalid?", "opposites"),
        ("convert miles to km", "convert km to miles", "roles"),
        ("How do I fix a flat bike tire?", "How do I fix a flat car tire?", "substitution"),
    ],
)
def test_each_guard_refuses_its_near_miss(a: str, b: str, guard: str) -> None:
    assert guard in GUARDS
    assert near_miss(a, b) == guard
    assert near_miss(b, a) == guard  # symmetric


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What is the capital of France?", "Tell me the capital city of France."),
        ("How do I contact customer support?", "How can I reach customer support?"),
        ("How do I turn on dark mode?", "HOW DO I TURN ON DARK MODE?"),
        ("how do i reset my password", "How Do I Reset My Password?"),
        ("Translate 'good morning' into Spanish", "Translate 'good morning' to Spanish"),
    ],
)
def test_guards_let_paraphrases_through(a: str, b: str) -> None:
    assert near_miss(a, b) is None


def test_guards_are_linear_in_the_text() -> None:
    long_text = "The quick brown Fox jumps over 3 lazy dogs. " * 2000  # 88,000 characters
    started = time.perf_counter()
    assert near_miss(long_text, long_text) is None
    assert time.perf_counter() - started < 1.0


# -- the operator, end to end -------------------------------------------------------------


@pytest.fixture(params=["memory", "postgres"])
async def backends(request: pytest.FixtureRequest) -> AsyncIterator[tuple[VectorIndex, CacheStore]]:
    """A vector index and a cache store of the same real backend."""
    if request.param == "memory":
        yield MemoryVectorIndex(dim=384), MemoryCache()
        return
    pool = await open_pool(request.getfixturevalue("pg_dsn"), min_size=1, max_size=4)
    index = PgVectorIndex(pool, name="cache_tests", dim=384, owns_pool=True)
    try:
        yield index, PostgresCache(pool, prefix=f"t{request.getfixturevalue('unique')}:")
    finally:
        await index.aclose()


def engine_for(server: ReplayServer, cache: SemanticCache) -> Engine:
    provider = create_provider("openai", api_key="sk-test", base_url=server.url + "/v1")
    return Engine([cache], providers={"openai": provider}, env={})


def ask(text: str, unique: str, **fields: Any) -> ChatRequest:
    fields.setdefault("metadata", {"tenant": unique})
    fields.setdefault("model", "openai:gpt-4o-mini")
    return ChatRequest(messages=[Message.user(text)], **fields)


async def collect(engine: Engine, request: ChatRequest) -> list[Event]:
    async with engine.stream(request) as stream:
        return [event async for event in stream]


async def test_a_paraphrase_hits_and_a_near_miss_does_not(
    backends: tuple[VectorIndex, CacheStore], embedder: LocalEmbedder, unique: str
) -> None:
    index, store = backends
    cache = SemanticCache(index, store, embedder)
    async with ReplayServer([Reply(OPENAI_TEXT)]) as server, engine_for(server, cache) as engine:
        live = await collect(engine, ask("What is the capital of the United Kingdom?", unique))
        hit = await collect(engine, ask("Which city is the capital of the United Kingdom?", unique))
        same = await collect(engine, ask("What is the capital of the United Kingdom?", unique))
        assert len(server.requests) == 1
        negated = await collect(engine, ask("What is not the capital of the United Kingdom?", unique))
        other = await collect(engine, ask("What is the capital of the United States?", unique))
        assert len(server.requests) == 3
    check_invariants(hit)
    announced = hit[1]
    assert isinstance(announced, CacheHit)
    assert announced.similarity is not None
    assert DEFAULT_THRESHOLD <= announced.similarity < 0.999
    assert hit == [live[0], announced, *live[1:]]
    assert isinstance(same[1], CacheHit)
    assert same[1].similarity == pytest.approx(1.0, abs=1e-3)
    assert not any(isinstance(e, CacheHit) for e in negated + other)
    assert (cache.stats.hits, cache.stats.misses) == (2, 3)


async def test_only_requests_equal_in_everything_else_can_match(
    backends: tuple[VectorIndex, CacheStore], embedder: LocalEmbedder, unique: str
) -> None:
    index, store = backends
    cache = SemanticCache(index, store, embedder)
    text = "How do I reset my password?"
    variants = [
        ask(text, unique, model="openai:gpt-4o"),
        ask(text, unique, temperature=0.9),
        ask(text, unique, system="Answer in French."),
        ask(text, unique, metadata={"tenant": unique + "-other"}),
        ChatRequest(
            model="openai:gpt-4o-mini",
            messages=[Message.user("Hi"), Message.assistant("Hello!"), Message.user(text)],
            metadata={"tenant": unique},
        ),
    ]
    async with ReplayServer([Reply(OPENAI_TEXT)]) as server, engine_for(server, cache) as engine:
        await collect(engine, ask(text, unique))
        for variant in variants:
            events = await collect(engine, variant)
            assert not any(isinstance(e, CacheHit) for e in events), variant
        assert len(server.requests) == 1 + len(variants)


async def test_requests_it_cannot_compare_bypass_it(embedder: LocalEmbedder, unique: str) -> None:
    cache = SemanticCache(MemoryVectorIndex(dim=384), MemoryCache(), embedder, max_chars=200)
    requests = [
        ask("x" * 201, unique),
        ChatRequest(
            model="openai:gpt-4o-mini",
            messages=[Message.user([TextPart("What is this?"), ImagePart(url="https://x/y.png")])],
        ),
        ChatRequest(model="openai:gpt-4o-mini", messages=[Message.user("Hi"), Message.assistant("Hello")]),
        ChatRequest(model="openai:gpt-4o-mini", messages=[Message.tool("call_1", "42")]),
    ]
    async with ReplayServer([Reply(OPENAI_TEXT)]) as server, engine_for(server, cache) as engine:
        for request in requests * 2:
            events = await collect(engine, request)
            assert isinstance(events[-1], Finish)
        assert len(server.requests) == 8
    assert (cache.stats.hits, cache.stats.misses, cache.stats.writes) == (0, 0, 0)


async def test_an_expired_stream_drops_its_vector(embedder: LocalEmbedder, unique: str) -> None:
    index, store = MemoryVectorIndex(dim=384), MemoryCache()
    cache = SemanticCache(index, store, embedder)
    first = ask("How tall is Mount Everest?", unique)
    async with ReplayServer([Reply(OPENAI_TEXT)]) as server, engine_for(server, cache) as engine:
        await collect(engine, first)
        assert len(index) == 1
        assert len(store) == 1
        await store.delete(entry_key(context_key(first), "How tall is Mount Everest?"))  # as if expired
        events = await collect(engine, ask("What is the height of Mount Everest?", unique))
        assert len(server.requests) == 2
    assert not any(isinstance(e, CacheHit) for e in events)
    assert len(index) == 1
    assert len(store) == 1


async def test_it_fails_open_when_the_store_or_the_embedder_is_down(embedder: LocalEmbedder, unique: str) -> None:
    dead = RedisCache(f"redis://127.0.0.1:{free_port()}/0", timeout=1.0)
    down_store = SemanticCache(MemoryVectorIndex(dim=384), dead, embedder)
    offline = OpenAIEmbedder(
        "text-embedding-3-small", api_key="sk-embed", base_url=f"http://127.0.0.1:{free_port()}/v1"
    )
    down_embedder = SemanticCache(MemoryVectorIndex(dim=1536), MemoryCache(), offline)
    async with ReplayServer([Reply(OPENAI_TEXT)]) as server:
        for cache in (down_store, down_embedder):
            async with engine_for(server, cache) as engine:
                for text in ("How tall is Mount Everest?", "What is the height of Mount Everest?"):
                    events = await collect(engine, ask(text, unique))
                    assert isinstance(events[-1], Finish)
        assert len(server.requests) == 4
    await dead.aclose()
    await offline.aclose()
    assert down_store.stats.hits == 0
    assert down_store.stats.errors == 2
    assert down_embedder.stats.errors == 2
    assert down_embedder.stats.misses == 0


async def test_a_slow_embedding_is_cut_by_embed_timeout(embedder: LocalEmbedder, unique: str) -> None:
    cache = SemanticCache(MemoryVectorIndex(dim=384), MemoryCache(), embedder, embed_timeout=0.001)
    question = "Explain, step by step and with examples, how a semantic cache decides on a hit. " * 10
    async with ReplayServer([Reply(OPENAI_TEXT)]) as server, engine_for(server, cache) as engine:
        events = await collect(engine, ask(question[:990], unique))
        assert len(server.requests) == 1
    assert isinstance(events[-1], Finish)
    assert (cache.stats.errors, cache.stats.misses, cache.stats.writes) == (1, 0, 0)
