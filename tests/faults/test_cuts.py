"""Cut streams lose nothing and invent nothing: SSE, NDJSON and AWS event stream, cut at random bytes.

Two levels. At the decoder level every recording is cut at *every* byte offset,
and then 2,000 times per framing at seeded random offsets, fed in random chunks
and ended either cleanly (``close``, what a FIN looks like) or by a transport
failure (``interrupt``, what a reset looks like). Over real HTTP, streams go
through :class:`~tests.faults.proxy.FaultProxy` and ``lluminary.Engine`` with the
real provider and ``Retry(max_attempts=3)`` (or a two-model ``Fallback``) in the
pipeline, cut (FIN or RST) at a random body byte on the first attempt and served
whole on the second, a hundred at a time.

For every stream: exactly one terminal event, last; no hang (each inside
``anyio.fail_after``); no ``finish`` unless the provider's end marker had fully
arrived (``streams.Recording.marker_end``, found from the bytes); a clean cut
finishes exactly when the body still holds a complete response; the content
delivered is a prefix of the recording's, and all of it, once, when the stream
finishes, even when the retry served it a second time.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from dataclasses import dataclass, replace

import anyio
import pytest

from lluminary import Engine, Retry
from lluminary.engine.operators import Fallback
from lluminary.events import Error, Event, Finish, Start, is_content
from lluminary.events import Fallback as FallbackEvent
from lluminary.events import Retry as RetryEvent
from lluminary.providers import AiohttpTransport
from lluminary.providers._errors import error_event
from tests.faults.proxy import FaultProxy, Plan
from tests.faults.streams import RECORDINGS, Framing, Recording, content, env_int, is_prefix, text_of
from tests.support import check_invariants, split

FRAMINGS: list[Framing] = ["sse", "ndjson", "eventstream"]
DECODER_CUTS = 2_000
HTTP_CUTS = env_int("LLUMINARY_FAULT_HTTP_STREAMS", 2_000 if os.environ.get("CI") else 300)
IN_FLIGHT = 100
#: Codes a cut may end in; an in-band error recording keeps its own code once the error arrived.
CUT_CODES = {"protocol", "connection"}


def cut_offset(rng: random.Random, rec: Recording) -> int:
    """Uniform over the body, but one time in eight right around the end marker, where it matters."""
    end, size = rec.marker_end, len(rec.body)
    if end is not None and rng.random() < 0.125:
        return rng.choice([max(0, end - 1), end, size, rng.randint(end, size)])
    return rng.randint(0, size)


def check_cut(rec: Recording, n: int, events: list[Event], *, clean: bool, attempts: int = 1) -> None:
    """The properties every cut stream has; ``attempts`` is how many requests the server saw."""
    check_invariants(events)
    terminal = events[-1]
    assert sum(isinstance(e, (RetryEvent, FallbackEvent)) for e in events) == attempts - 1
    starts = [i for i, e in enumerate(events) if isinstance(e, Start)]
    assert len(starts) <= 1, "one start, whatever the attempts"
    if starts:
        assert all(i > starts[0] for i, e in enumerate(events) if is_content(e)), "start comes before content"
    delivered, expected = content(events), content(rec.reference)
    if isinstance(terminal, Finish):
        if attempts == 1:
            assert rec.marker_end is not None, f"finish without the end marker (cut at {n})"
            assert n >= rec.marker_end, f"finish without the end marker (cut at {n})"
        assert delivered == expected, "a finished stream carries the whole response, once"
        assert text_of(events) == rec.text
    else:
        assert isinstance(terminal, Error)
        assert is_prefix(delivered, expected), "a cut stream delivers a prefix of the response, nothing else"
        assert rec.text.startswith(text_of(events))
        if rec.marker_end is not None:
            assert terminal.code in CUT_CODES, terminal
    if clean and attempts == 1:
        assert isinstance(terminal, Finish) == rec.must_finish(n), f"clean cut at {n} of {len(rec.body)}"


@pytest.mark.parametrize("rec", [r for rs in RECORDINGS.values() for r in rs], ids=lambda r: f"{r.provider}-{r.name}")
def test_every_offset(rec: Recording) -> None:
    """Cut at every byte, one chunk, clean close: the end marker alone decides finish."""
    for n in range(len(rec.body) + 1):
        decoder = rec.decoder()
        events = decoder.feed(rec.body[:n]) + decoder.close()
        check_cut(rec, n, events, clean=True)


@pytest.mark.parametrize("framing", FRAMINGS)
def test_random_cuts_random_chunks(framing: Framing) -> None:
    rng = random.Random(f"decoder-cuts-{framing}")
    tally: Counter[str] = Counter()
    for _ in range(DECODER_CUTS):
        rec = rng.choice(RECORDINGS[framing])
        n = cut_offset(rng, rec)
        points = [rng.randint(1, max(1, n)) for _ in range(rng.randint(0, 12))]
        pieces = [rec.body[i : i + 1] for i in range(n)] if rng.random() < 0.05 else split(rec.body[:n], points)
        decoder = rec.decoder()
        events: list[Event] = []
        for piece in pieces:
            events += decoder.feed(piece)
        clean = rng.random() < 0.5
        if clean:
            events += decoder.close()
        else:  # a reset: the transport fails instead of the body ending
            events += decoder.interrupt(error_event("connection", "reset", provider=rec.provider))
        check_cut(rec, n, events, clean=clean)
        terminal = events[-1]
        tally[f"{'fin' if clean else 'rst'}:{terminal.code if isinstance(terminal, Error) else 'finish'}"] += 1
    print(f"\n{framing} decoder cuts: {sum(tally.values())} {dict(sorted(tally.items()))}")
    assert tally["fin:finish"] > 0
    assert tally["fin:protocol"] > 0
    assert tally["rst:connection"] > 0


def body_received(plan: Plan, wire_cut: int) -> int:
    """How many body bytes a cut after ``wire_cut`` framed bytes lets through (chunked framing adds sizes)."""
    body = plan.body or b""
    if plan.framing != "chunked":
        return min(wire_cut, len(body))
    size = plan.chunk_size or max(len(body), 1)
    pos = got = 0
    for i in range(0, len(body), size):
        piece = body[i : i + size]
        pos += len(b"%x\r\n" % len(piece))
        take = max(0, min(len(piece), wire_cut - pos))
        got += take
        if take < len(piece):
            break
        pos += len(piece) + 2
    return got


@dataclass(frozen=True)
class HttpCut:
    rec: Recording
    key: str
    plan: Plan
    wire_cut: int
    fallback: bool  # a two-model Fallback in the pipeline instead of Retry

    @property
    def received(self) -> int:
        return body_received(self.plan, self.wire_cut)

    @property
    def clean(self) -> bool:
        # Only a FIN on a close-delimited body looks like a complete response to the client.
        return self.plan.ending == "fin" and self.plan.framing == "close"


def http_cut(rng: random.Random, rec: Recording, key: str) -> HttpCut:
    """A seeded cut: FIN on a close-delimited body, or FIN or RST inside a chunked one.

    A reset ends a chunked body, as real servers send it: aiohttp reads a reset on a
    close-delimited body as its normal end, so there it is no different from a FIN.
    """
    ending = rng.choice(["fin", "rst"])
    framing = "close" if ending == "fin" and rng.random() < 0.6 else "chunked"
    size = rng.choice([None, 7, 64, 512])
    headers = {"content-type": rec.content_type}
    plan = Plan(rec.body, headers=headers, framing=framing, ending=ending, chunk_size=size)  # type: ignore[arg-type]
    wire = plan.wire()[1]
    cut = cut_offset(rng, rec)
    if framing == "chunked":  # the same spread, in framed bytes
        cut = round(cut * len(wire) / max(1, len(rec.body)))
    return HttpCut(rec, key, replace(plan, cut_after=cut), cut, fallback=rng.random() < 0.3)


async def _one_http_stream(proxy: FaultProxy, transport: AiohttpTransport, case: HttpCut) -> tuple[list[Event], int]:
    rec = case.rec
    proxy.push(case.key, case.plan, Plan(rec.body, headers={"content-type": rec.content_type}))
    provider = rec.make_provider(proxy.url(case.key))
    if case.fallback:  # another model of the same provider, so the second request reaches the same plan queue
        operator: Retry | Fallback = Fallback([f"{rec.provider}:fallback-model"])
    else:
        operator = Retry(max_attempts=3, base_delay=0.0)
    async with Engine([operator], providers={rec.provider: provider}, transport=transport) as engine:
        with anyio.fail_after(10):  # a stream that hangs fails here, not at the suite timeout
            async with engine.stream(rec.request()) as stream:
                events = [event async for event in stream]
    return events, len(proxy.of(case.key))


@pytest.mark.parametrize("framing", FRAMINGS)
async def test_random_cuts_over_http_with_retry(framing: Framing, proxy: FaultProxy) -> None:
    rng = random.Random(f"http-cuts-{framing}")
    cases = [http_cut(rng, rng.choice(RECORDINGS[framing]), f"{framing}{i}") for i in range(HTTP_CUTS)]
    results: dict[str, tuple[list[Event], int]] = {}
    limiter = anyio.CapacityLimiter(IN_FLIGHT)
    transport = AiohttpTransport()

    async def run(case: HttpCut) -> None:
        async with limiter:
            results[case.key] = await _one_http_stream(proxy, transport, case)

    try:
        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                for case in cases:
                    tg.start_soon(run, case)
    finally:
        await transport.aclose()
    tally: Counter[str] = Counter()
    for case in cases:
        events, attempts = results[case.key]
        check_cut(case.rec, case.received, events, clean=case.clean, attempts=attempts)
        terminal = events[-1]
        outcome = terminal.code if isinstance(terminal, Error) else "finish"
        how = f"{case.plan.ending}/{case.plan.framing}"
        again = ("+fell-back" if case.fallback else "+retried") if attempts > 1 else ""
        tally[f"{how}:{outcome}{again}"] += 1
    print(f"\n{framing} HTTP cuts: {len(cases)} {dict(sorted(tally.items()))}")
    assert len(results) == len(cases)
    assert tally["fin/close:finish"]
    assert tally["fin/close:protocol"]
    assert tally["rst/chunked:finish+retried"], "resets before any output must be retried, without duplicates"
    assert tally["rst/chunked:finish+fell-back"], "and fall back, without duplicates"
