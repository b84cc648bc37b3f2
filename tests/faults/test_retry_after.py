"""``Retry-After`` over real HTTP: honoured within 10%, and absurd values are harmless.

A 429 from the fault proxy, then the recorded stream. The gap is measured at the
server: from the moment the proxy finished the 429 response to the moment the
retried request arrived, on the monotonic clock both threads share. Absurd
values (negative, infinite, NaN, huge, past and far-future dates, garbage) must
neither crash nor park the request: each case is bounded by ``fail_after`` and
ends either in a prompt retry or, when the server asks for longer than the
operator's cap, in the 429's own ``rate_limited`` error at once.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping

import anyio
import pytest

from lluminary import Engine, Retry
from lluminary.events import Error, Event, Finish, encode_event
from lluminary.events import Retry as RetryEvent
from tests.faults.proxy import FaultProxy, Plan
from tests.faults.streams import RECORDINGS

OPENAI = RECORDINGS["sse"][0]
RATE_LIMITED = b'{"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}'
MAX_DELAY = 10.0
BASE_DELAY = 0.05


def plans(headers: Mapping[str, str]) -> tuple[Plan, Plan]:
    too_many = Plan(RATE_LIMITED, status=429, headers={"content-type": "application/json", **headers})
    return too_many, Plan(OPENAI.body)


async def stream_once(proxy: FaultProxy, key: str, headers: Mapping[str, str], deadline: float) -> list[Event]:
    proxy.push(key, *plans(headers))
    retry = Retry(max_attempts=3, base_delay=BASE_DELAY, max_delay=MAX_DELAY)
    async with Engine([retry], providers={"openai": OPENAI.make_provider(proxy.url(key))}) as engine:
        with anyio.fail_after(deadline):
            async with engine.stream(OPENAI.request()) as stream:
                return [event async for event in stream]


def http_date_in(seconds: float) -> tuple[str, float]:
    """An HTTP date about ``seconds`` ahead, and the wall-clock instant it names (whole seconds)."""
    when = math.floor(time.time() + seconds)
    return email.utils.formatdate(when, usegmt=True), float(when)


async def test_retry_after_is_honoured_within_ten_percent(proxy: FaultProxy) -> None:
    date, date_ts = http_date_in(3.0)
    cases: dict[str, dict[str, str]] = {
        "seconds-1": {"retry-after": "1"},
        "seconds-2": {"retry-after": "2"},
        "fraction": {"retry-after": "1.5"},
        "ms": {"retry-after-ms": "1200"},
        "ms-wins": {"retry-after-ms": "1100", "retry-after": "30"},
        "date": {"retry-after": date},
    }
    results: dict[str, list[Event]] = {}
    answered_at = time.time()

    async def run(key: str) -> None:
        results[key] = await stream_once(proxy, key, cases[key], deadline=10)

    async with anyio.create_task_group() as tg:  # concurrently: the waits overlap
        for key in cases:
            tg.start_soon(run, key)

    expected = {"seconds-1": 1.0, "seconds-2": 2.0, "fraction": 1.5, "ms": 1.2, "ms-wins": 1.1}
    for key, events in results.items():
        assert isinstance(events[-1], Finish), (key, events[-1])
        retries = [e for e in events if isinstance(e, RetryEvent)]
        assert len(retries) == 1, key
        assert retries[0].code == "rate_limited", key
        delay = retries[0].delay
        if key == "date":
            # The date names a whole second; the operator waits until then.
            assert delay == pytest.approx(date_ts - answered_at, rel=0.1, abs=0.05)
        else:
            assert delay == pytest.approx(expected[key])
        first, second = proxy.of(key)
        assert first.finished_at is not None
        gap = second.received_at - first.finished_at
        assert 0.9 * delay <= gap <= 1.1 * delay, f"{key}: waited {gap:.3f}s for a Retry-After of {delay:.3f}s"
        print(f"\nRetry-After {key}: asked {delay:.3f}s, waited {gap:.3f}s ({100 * (gap / delay - 1):+.1f}%)", end="")
        assert [e for e in events if not isinstance(e, RetryEvent)] == OPENAI.reference


FAIL = "fail"  # the 429 is passed on at once: the server asked for longer than the cap
RETRY = "retry"  # unparsable or harmless: a prompt retry with our own backoff (or none)

ABSURD: dict[str, tuple[dict[str, str], str]] = {
    "negative": ({"retry-after": "-1"}, RETRY),
    "negative-fraction": ({"retry-after": "-0.5"}, RETRY),
    "inf": ({"retry-after": "inf"}, RETRY),
    "Infinity": ({"retry-after": "Infinity"}, RETRY),
    "nan": ({"retry-after": "nan"}, RETRY),
    "exponent-overflow": ({"retry-after": "1e400"}, RETRY),
    "digits-overflow": ({"retry-after": "9" * 400}, FAIL),
    "far-above-cap": ({"retry-after": "99999999"}, FAIL),
    "just-above-cap": ({"retry-after": "10.5"}, FAIL),
    "zero": ({"retry-after": "0"}, RETRY),
    "empty": ({"retry-after": ""}, RETRY),
    "garbage": ({"retry-after": "soon"}, RETRY),
    "comma-decimal": ({"retry-after": "1,5"}, RETRY),
    "latin-1-digit": ({"retry-after": "\u00b2"}, RETRY),
    "date-past": ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, RETRY),
    "date-far-future": ({"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"}, FAIL),
    "date-year-zero": ({"retry-after": "Sat, 01 Jan 0000 00:00:00 GMT"}, RETRY),
    "date-garbage": ({"retry-after": "Mon, 32 Foo 2015 99:99:99 GMT"}, RETRY),
    "date-no-zone": ({"retry-after": "Wed, 21 Oct 2015 07:28:00"}, RETRY),
    "ms-negative": ({"retry-after-ms": "-5"}, RETRY),
    "ms-nan": ({"retry-after-ms": "nan"}, RETRY),
    "ms-overflow": ({"retry-after-ms": "1e400"}, RETRY),
    "ms-huge": ({"retry-after-ms": "99999999999"}, FAIL),
    "ms-garbage-falls-back": ({"retry-after-ms": "abc", "retry-after": "0.2"}, RETRY),
}


async def test_absurd_retry_after_values_are_harmless(proxy: FaultProxy) -> None:
    results: dict[str, tuple[list[Event], float]] = {}

    async def run(key: str) -> None:
        started = anyio.current_time()
        events = await stream_once(proxy, key, ABSURD[key][0], deadline=3)
        results[key] = (events, anyio.current_time() - started)

    async with anyio.create_task_group() as tg:
        for key in ABSURD:
            tg.start_soon(run, key)

    for key, (events, elapsed) in results.items():
        outcome = ABSURD[key][1]
        for event in events:
            encode_event(event)  # no NaN or infinity reaches the wire format
        retries = [e for e in events if isinstance(e, RetryEvent)]
        assert all(math.isfinite(r.delay) and 0 <= r.delay <= MAX_DELAY for r in retries), key
        if outcome == RETRY:
            assert isinstance(events[-1], Finish), (key, events[-1])
            assert len(retries) == 1, (key, retries)
            assert retries[0].delay <= 0.25, (key, retries)
            assert len(proxy.of(key)) == 2
            assert elapsed < 2, key
        else:
            assert len(events) == 1, (key, events)
            assert isinstance(events[0], Error), (key, events)
            error = events[0]
            assert (error.code, error.status) == ("rate_limited", 429)
            assert error.retry_after is not None
            assert math.isfinite(error.retry_after)
            assert error.retry_after > MAX_DELAY
            assert len(proxy.of(key)) == 1
            assert elapsed < 1, key
