"""The ledger, in memory and in Postgres (real, with the shipped migration), and ``lluminary costs``.

Both ledgers answer the same questions the same way: reports grouped by model,
tenant and day whose total is the sum of the per-request costs, spend per tenant
since a time, unpriced requests counted apart, idempotent writes.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from lluminary.commands import costs as costs_command
from lluminary.ledger import Ledger, LedgerEntry, MemoryLedger, PostgresLedger, day_of, summarize
from lluminary.stores import StoreError


def make_entries(unique: str, epoch: float) -> list[LedgerEntry]:
    """Requests over three days, two tenants and three models; one unpriced, some estimated."""
    models = [("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5"), ("ollama", "llama3.2")]
    out = []
    for i in range(24):
        provider, model = models[i % 3]
        cost = None if i == 7 else (0.0 if provider == "ollama" else 0.000123 * (i + 1) + 1e-9 * i)
        out.append(
            LedgerEntry(
                request_id=f"{unique}-{i}",
                ts=epoch + (i % 3) * 86400 + i * 60.0,
                tenant=f"{unique}-t{i % 2}",
                provider=provider,
                model=model,
                input_tokens=100 + i,
                output_tokens=10 * i,
                cache_read_tokens=i % 4,
                cache_write_tokens=i % 5,
                cost_usd=cost,
                estimated=i % 5 == 0,
                status="cancelled" if i % 6 == 0 else "finish",
                latency_ms=12.5 * i,
            )
        )
    return out


@pytest.fixture(params=["memory", "postgres"])
async def ledger(request: pytest.FixtureRequest) -> AsyncIterator[Ledger]:
    if request.param == "memory":
        yield MemoryLedger()
        return
    ledger = await PostgresLedger.open(request.getfixturevalue("pg_dsn"))
    try:
        yield ledger
    finally:
        await ledger.aclose()


async def test_report_totals_are_the_sum_of_the_request_costs(ledger: Ledger, unique: str, epoch: float) -> None:
    entries = make_entries(unique, epoch)
    await ledger.record_many(entries[:10])
    for entry in entries[10:]:
        await ledger.record(entry)
    expected_usd = math.fsum(e.cost_usd for e in entries if e.cost_usd is not None)
    for by in ("model", "tenant", "day"):
        report = await ledger.report(since=epoch, until=epoch + 3 * 86400, by=by)
        total = report.total
        assert total.cost_usd == pytest.approx(expected_usd, rel=1e-12)
        assert total.cost_usd == pytest.approx(math.fsum(r.cost_usd for r in report.rows), rel=1e-12)
        assert total.requests == len(entries)
        assert total.input_tokens == sum(e.input_tokens for e in entries)
        assert total.output_tokens == sum(e.output_tokens for e in entries)
        assert total.cache_read_tokens == sum(e.cache_read_tokens for e in entries)
        assert total.cache_write_tokens == sum(e.cache_write_tokens for e in entries)
        assert total.unpriced == 1
        assert total.estimated == sum(1 for e in entries if e.estimated)
        # The same as the reference implementation over the same entries.
        reference = summarize(entries, by=by, since=epoch, until=epoch + 3 * 86400)
        assert [r.key for r in report.rows] == [r.key for r in reference.rows]
        for got, want in zip(report.rows, reference.rows, strict=True):
            assert got.requests == want.requests
            assert got.cost_usd == pytest.approx(want.cost_usd, rel=1e-12)
    by_day = await ledger.report(since=epoch, until=epoch + 3 * 86400, by="day")
    assert [r.key for r in by_day.rows] == [day_of(epoch + d * 86400) for d in range(3)]
    by_model = await ledger.report(since=epoch, until=epoch + 3 * 86400, by="model")
    assert [r.key for r in by_model.rows] == ["anthropic:claude-sonnet-4-5", "ollama:llama3.2", "openai:gpt-4o-mini"]


async def test_time_window_and_spend(ledger: Ledger, unique: str, epoch: float) -> None:
    entries = make_entries(unique, epoch)
    await ledger.record_many(entries)
    day_two = await ledger.report(since=epoch + 86400, until=epoch + 2 * 86400, by="tenant")
    assert day_two.total.requests == sum(1 for e in entries if epoch + 86400 <= e.ts < epoch + 2 * 86400)
    tenant = f"{unique}-t1"
    since_midnight = await ledger.spend(tenant, epoch + 86400)
    assert since_midnight == pytest.approx(
        math.fsum(e.cost_usd or 0.0 for e in entries if e.tenant == tenant and e.ts >= epoch + 86400), rel=1e-12
    )
    mid_morning = epoch + 86400 + 600.0  # not a midnight: answered from the entries themselves
    assert await ledger.spend(tenant, mid_morning) == pytest.approx(
        math.fsum(e.cost_usd or 0.0 for e in entries if e.tenant == tenant and e.ts >= mid_morning), rel=1e-12
    )
    assert await ledger.spend(f"{unique}-nobody", epoch) == 0.0


async def test_recording_a_request_twice_keeps_the_first(ledger: Ledger, unique: str, epoch: float) -> None:
    first = make_entries(unique, epoch)[1]
    await ledger.record(first)
    await ledger.record_many([LedgerEntry(**{**_fields(first), "cost_usd": 99.0})])
    report = await ledger.report(since=epoch, until=epoch + 86400 * 3, by="tenant")
    assert report.total.requests == 1
    assert report.total.cost_usd == pytest.approx(first.cost_usd or 0.0)
    assert await ledger.spend(first.tenant, epoch) == pytest.approx(first.cost_usd or 0.0)


def _fields(entry: LedgerEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in entry.__struct_fields__}


async def test_postgres_keeps_every_field(pg_pool: Any, unique: str, epoch: float) -> None:
    ledger = PostgresLedger(pg_pool)
    entries = make_entries(unique, epoch)[:6]
    await ledger.record_many(entries)
    back = await ledger.entries([e.request_id for e in entries])
    assert sorted(back, key=lambda e: e.request_id) == sorted(entries, key=lambda e: e.request_id)


async def test_postgres_failures_are_store_errors(pg_dsn: str, unique: str, epoch: float) -> None:
    ledger = await PostgresLedger.open(pg_dsn)
    await ledger.pool.close()  # the database is gone as far as this ledger knows
    with pytest.raises(StoreError):
        await ledger.record(make_entries(unique, epoch)[0])
    await ledger.aclose()
    with pytest.raises(StoreError, match="closed"):
        await ledger.spend("x", 0.0)


async def test_memory_ledger_is_bounded_but_budgets_do_not_loosen(unique: str, epoch: float) -> None:
    ledger = MemoryLedger(max_entries=5)
    entries = make_entries(unique, epoch)
    await ledger.record_many(entries)
    assert len(ledger) == 5
    assert [e.request_id for e in ledger.entries] == [e.request_id for e in entries[-5:]]
    for tenant in (f"{unique}-t0", f"{unique}-t1"):
        assert await ledger.spend(tenant, epoch) == pytest.approx(
            math.fsum(e.cost_usd or 0.0 for e in entries if e.tenant == tenant), rel=1e-12
        )


# -- lluminary costs ------------------------------------------------------------------------------


async def test_costs_command_prints_rows_and_total_and_writes_csv(
    pg_dsn: str, pg_pool: Any, unique: str, epoch: float, tmp_path: Path
) -> None:
    entries = make_entries(unique, epoch)
    await PostgresLedger(pg_pool).record_many(entries)
    since = time.strftime("%Y-%m-%d", time.gmtime(epoch))
    out, err = io.StringIO(), io.StringIO()
    target = tmp_path / "costs.csv"
    until = time.strftime("%Y-%m-%d", time.gmtime(epoch + 3 * 86400))  # this test's window only
    status = await costs_command.costs(
        since=since, until=until, by="tenant", csv_path=str(target), dsn=pg_dsn, out=out, err=err
    )
    assert status == 0, err.getvalue()
    lines = out.getvalue().splitlines()
    assert lines[0] == f"costs since {since} 00:00 UTC until {until} 00:00 UTC, by tenant"
    assert lines[1].split()[:2] == ["tenant", "requests"]
    rows = {line.split()[0]: line.split() for line in lines[2:] if line.startswith(unique)}
    assert set(rows) == {f"{unique}-t0", f"{unique}-t1"}
    total = next(line.split() for line in lines if line.startswith("total"))
    expected_usd = math.fsum(e.cost_usd for e in entries if e.cost_usd is not None)
    assert total[1] == str(len(entries))
    assert float(total[6]) == pytest.approx(expected_usd, abs=1e-6)
    assert float(total[6]) == pytest.approx(sum(float(r[6]) for r in rows.values()), abs=2e-6)
    with target.open(newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == ["tenant", *costs_command._CSV_HEADER]
    assert [row[0] for row in table[1:]] == [f"{unique}-t0", f"{unique}-t1", "total"]
    assert float(table[-1][6]) == pytest.approx(expected_usd, rel=1e-12)  # full precision in the CSV
    assert float(table[-1][6]) == pytest.approx(float(table[1][6]) + float(table[2][6]), rel=1e-12)


@pytest.mark.parametrize(("since", "delta"), [("7d", 7 * 86400), ("24h", 86400), ("90m", 5400), ("2w", 14 * 86400)])
def test_since_takes_durations(since: str, delta: float) -> None:
    assert costs_command.parse_since(since, 1_000_000.0) == 1_000_000.0 - delta


def test_since_takes_utc_dates() -> None:
    assert costs_command.parse_since("1970-01-02", 0.0) == 86400.0
    assert costs_command.parse_since("1970-01-02T01:00", 0.0) == 90000.0
    with pytest.raises(ValueError, match="is no time: use a duration"):
        costs_command.parse_since("last tuesday", 0.0)


async def test_costs_command_usage_mistakes_and_unreachable_databases() -> None:
    err = io.StringIO()
    assert await costs_command.costs(since="yesterday", err=err) == 2
    assert "'yesterday' is no time" in err.getvalue()
    err = io.StringIO()
    assert await costs_command.costs(since="2026-11-02", until="2026-11-01", err=err) == 2
    assert "--until must be later" in err.getvalue()
    err = io.StringIO()
    status = await costs_command.costs(
        since="7d", dsn="postgresql://ledger:s3cret-pw@127.0.0.1:1/nowhere", err=err, out=io.StringIO()
    )
    assert status == 1
    assert "cannot read the ledger" in err.getvalue()
    assert "s3cret-pw" not in err.getvalue()


def test_costs_command_arguments() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    costs_command.add_arguments(parser)
    args = parser.parse_args(["--since", "30d", "--by", "day", "--csv", "x.csv", "--database-url", "postgresql://h/d"])
    assert (args.since, args.by, args.csv, args.database_url) == ("30d", "day", "x.csv", "postgresql://h/d")
    with pytest.raises(SystemExit):
        parser.parse_args(["--by", "colour"])
    assert costs_command.HELP


def test_lluminary_costs_on_the_command_line(pg_dsn: str, epoch: float, capsys: pytest.CaptureFixture[str]) -> None:
    from lluminary.cli import main

    unique = f"cli{int(epoch)}"

    async def record() -> None:
        ledger = await PostgresLedger.open(pg_dsn)
        try:
            await ledger.record_many(make_entries(unique, epoch))
        finally:
            await ledger.aclose()

    anyio.run(record)
    since, until = (time.strftime("%Y-%m-%d", time.gmtime(t)) for t in (epoch, epoch + 3 * 86400))
    status = main(["costs", "--since", since, "--until", until, "--by", "model", "--database-url", pg_dsn])
    out = capsys.readouterr().out
    assert status == 0
    assert [line.split()[0] for line in out.splitlines()[2:] if ":" in line.split()[0]] == [
        "anthropic:claude-sonnet-4-5",
        "ollama:llama3.2",
        "openai:gpt-4o-mini",
    ]
    assert out.splitlines()[-1].split()[:2] == ["total", "24"]
