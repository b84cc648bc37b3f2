"""Postgres as a running system: embedded start, migrations, restarts, secrets.

These start their own pgserver instances (in tmp dirs) where they stop, restart
or freshly create a server, so the session's shared server is never disturbed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import anyio.to_thread
import asyncpg
import pytest

from lluminary.errors import ConfigError
from lluminary.stores import StoreError
from lluminary.stores.postgres import (
    EmbeddedUnavailableError,
    Migration,
    PostgresCache,
    PostgresEventLog,
    apply_migrations,
    load_migrations,
    open_pool,
    stop_embedded,
    with_connection,
)
from lluminary.stores.postgres._embedded import data_dir
from tests.stores._backends import free_port, own_pgserver

SHIPPED = [m.version for m in load_migrations()]


@pytest.fixture
def fresh_data_dir(pg_tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A machine that has never run LLuMinary: no DSN, an empty data directory."""
    root = pg_tmp_path / "data"
    root.mkdir()
    root = root.resolve()
    assert not any(root.iterdir())
    monkeypatch.delenv("LLUMINARY_DATABASE_URL", raising=False)
    monkeypatch.setenv("LLUMINARY_DATA_DIR", str(root))
    yield root
    stop_embedded(root / "pg")


async def test_fresh_machine_starts_embedded_postgres_with_pgvector(fresh_data_dir: Path) -> None:
    assert data_dir() == fresh_data_dir / "pg"
    pool = await open_pool()
    try:
        async with pool.acquire() as conn:
            version = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            applied = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
            # The pool's connections speak pgvector: a list goes in, a vector comes out.
            distance = await conn.fetchval("SELECT $1::vector <=> $2::vector", [1.0, 0.0], [0.0, 1.0])
            postmaster = await conn.fetchval("SELECT pg_postmaster_start_time()")
        assert version
        assert version[0].isdigit()
        assert applied == SHIPPED
        assert {1, 2, 3, 4} <= set(applied)
        assert distance == pytest.approx(1.0)
        assert (fresh_data_dir / "pg" / "PG_VERSION").exists()

        # A second process of the same user joins the same server instead of starting one.
        child = textwrap.dedent(
            """
            import asyncio
            from lluminary.stores.postgres import open_pool

            async def main():
                pool = await open_pool()
                print(await pool.fetchval("SELECT pg_postmaster_start_time()::text"))
                await pool.close()

            asyncio.run(main())
            """
        )
        result = await anyio.to_thread.run_sync(
            lambda: subprocess.run(
                [sys.executable, "-W", "ignore", "-c", child],
                capture_output=True,
                text=True,
                timeout=60,
                env=os.environ,
            )
        )
        assert result.returncode == 0, result.stderr
        async with pool.acquire() as conn:
            ours = await conn.fetchval("SELECT $1::timestamptz::text", postmaster)
        assert result.stdout.strip() == ours
    finally:
        await pool.close()


async def test_embedded_unavailable_is_a_clear_typed_error(
    fresh_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on Python 3.13, where pgserver has no wheel: the import fails.
    monkeypatch.setitem(sys.modules, "pgserver", None)
    with pytest.raises(EmbeddedUnavailableError, match="LLUMINARY_DATABASE_URL") as info:
        await open_pool()
    assert isinstance(info.value, StoreError)
    assert isinstance(info.value, ConfigError)
    assert not (fresh_data_dir / "pg").exists()


@pytest.fixture
async def fresh_database(pg_dsn: str, unique: str) -> Any:
    """An empty database on the session server, dropped afterwards."""
    name = f"fresh_{unique}"
    admin = await asyncpg.connect(pg_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        parts = urlsplit(pg_dsn)
        yield urlunsplit(parts._replace(path=f"/{name}"))
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_migrations_are_concurrent_safe_and_idempotent(fresh_database: str) -> None:
    # Two processes starting at once on a fresh database: one migrates, the other waits.
    conns = [await asyncpg.connect(fresh_database) for _ in range(2)]
    try:
        first, second = await asyncio.gather(*(apply_migrations(c) for c in conns))
        assert sorted(first + second) == SHIPPED, "every migration applied exactly once"
        assert [] in (first, second)
        assert await apply_migrations(conns[0]) == []  # and again: nothing to do
        rows = await conns[0].fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == SHIPPED
    finally:
        for conn in conns:
            await conn.close()
    # Pools opened concurrently on the migrated database both work.
    pools = await asyncio.gather(open_pool(fresh_database), open_pool(fresh_database))
    try:
        caches = [PostgresCache(p) for p in pools]
        await caches[0].set("k", b"v")
        assert await caches[1].get("k") == b"v"
    finally:
        await asyncio.gather(*(p.close() for p in pools))


async def test_two_pools_migrate_a_fresh_database_at_once(fresh_database: str) -> None:
    pools = await asyncio.gather(*(open_pool(fresh_database) for _ in range(3)))
    try:
        counts = await pools[0].fetch("SELECT version, count(*) AS n FROM schema_migrations GROUP BY 1 ORDER BY 1")
        assert [(r["version"], r["n"]) for r in counts] == [(v, 1) for v in SHIPPED]
    finally:
        await asyncio.gather(*(p.close() for p in pools))


def test_migration_files_are_found_by_name_in_order(tmp_path: Path) -> None:
    for name, sql in {
        "0005_ledger.sql": "SELECT 5;",
        "0001_base.sql": "SELECT 1;",
        "0010_later.sql": "SELECT 10;",
        "README.md": "not a migration",
        "0002_Bad-Name.sql": "ignored: not NNNN_lowercase",
    }.items():
        (tmp_path / name).write_text(sql)
    found = load_migrations(tmp_path)
    assert [(m.version, m.name) for m in found] == [(1, "base"), (5, "ledger"), (10, "later")]
    (tmp_path / "0005_other.sql").write_text("SELECT 5;")
    with pytest.raises(StoreError, match="share version 0005"):
        load_migrations(tmp_path)


def test_shipped_migrations() -> None:
    shipped = load_migrations()
    assert [m.version for m in shipped] == sorted(m.version for m in shipped)
    assert [(m.version, m.name) for m in shipped[:4]] == [(1, "base"), (2, "cache"), (3, "vectors"), (4, "event_log")]
    assert "CREATE EXTENSION IF NOT EXISTS vector" in shipped[0].sql


async def test_a_later_migration_is_applied_once(fresh_database: str) -> None:
    extra = Migration(9001, "test_extra", "CREATE TABLE test_extra (id int); INSERT INTO test_extra VALUES (1);")
    conn = await asyncpg.connect(fresh_database)
    try:
        assert await apply_migrations(conn) == SHIPPED
        assert await apply_migrations(conn, [*load_migrations(), extra]) == [9001]
        assert await apply_migrations(conn, [*load_migrations(), extra]) == []
        assert await conn.fetchval("SELECT count(*) FROM test_extra") == 1
        # A failing migration leaves nothing behind, not even its record.
        broken = Migration(9002, "broken", "CREATE TABLE half_done (id int); SELECT no_such_function();")
        with pytest.raises(asyncpg.PostgresError):
            await apply_migrations(conn, [broken])
        assert await conn.fetchval("SELECT to_regclass('half_done')") is None
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations WHERE version = 9002") == 0
    finally:
        await conn.close()


async def test_postgres_restart_loses_no_acknowledged_write(pg_tmp_path: Path) -> None:
    server = await anyio.to_thread.run_sync(own_pgserver, pg_tmp_path / "pg")
    try:
        pool = await open_pool(server.get_uri(), min_size=2, max_size=4)
        cache = PostgresCache(pool, prefix="restart:")
        log = PostgresEventLog(pool)
        acknowledged: list[int] = []
        failures: list[StoreError] = []
        restarted = anyio.Event()
        written_after_restart = anyio.Event()

        async def writer() -> None:
            i = 0
            while not written_after_restart.is_set():
                try:
                    await cache.set(f"k{i}", f"v{i}".encode())
                    acknowledged.append(i)  # only once set() has returned: COMMIT is done
                    if restarted.is_set():
                        written_after_restart.set()
                except StoreError as exc:
                    failures.append(exc)
                    await anyio.sleep(0.01)
                i += 1

        for seq in range(5):
            await log.append("before-restart", seq, float(seq), b"{}")
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer)
            with anyio.fail_after(30):
                while len(acknowledged) < 20:  # noqa: ASYNC110 - waits on the writer task's progress
                    await anyio.sleep(0.01)
            # A hard stop (like a crash: no checkpoint) while writes are in flight.
            await anyio.to_thread.run_sync(_pg_ctl, server, ["-w", "-m", "immediate", "stop"])
            with pytest.raises(StoreError):
                await cache.get("k0")  # the server is down: a StoreError, not a hang
            await anyio.to_thread.run_sync(server.ensure_postgres_running)
            restarted.set()
            with anyio.fail_after(30):
                await written_after_restart.wait()

        # The same pool, never recreated, works again, and every acknowledged write survived.
        for i in acknowledged:
            assert await cache.get(f"k{i}") == f"v{i}".encode(), f"acknowledged write k{i} was lost"
        assert len(await log.read("before-restart")) == 5
        await log.append("after-restart", 0, 1.0, b"{}")
        assert len(await log.read("after-restart")) == 1
        assert all(isinstance(f, StoreError) for f in failures)
        await pool.close()
    finally:
        await anyio.to_thread.run_sync(server.cleanup)


async def test_a_lost_connection_is_retried_once_on_a_fresh_one(pg_dsn: str, unique: str) -> None:
    pool = await open_pool(pg_dsn, min_size=2, max_size=2)
    try:
        cache = PostgresCache(pool, prefix=unique)
        await cache.set("k", b"v")
        # Kill both of this pool's backends from outside, as a server restart would.
        async with pool.acquire() as one, pool.acquire() as two:
            pids = [await one.fetchval("SELECT pg_backend_pid()"), await two.fetchval("SELECT pg_backend_pid()")]
        admin = await asyncpg.connect(pg_dsn)
        try:
            killed = await admin.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(p)) FROM unnest($1::int[]) p", pids
            )
        finally:
            await admin.close()
        assert killed == 2
        assert await cache.get("k") == b"v"  # no error: retried on a fresh connection

        calls = 0

        async def not_idempotent(conn: Any) -> None:
            nonlocal calls
            calls += 1
            await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")

        with pytest.raises(StoreError):
            await with_connection(pool, not_idempotent, idempotent=False)
        assert calls == 1, "work that is not idempotent is never run twice"
    finally:
        await pool.close()


async def test_expired_cache_rows_are_swept(pg_pool: Any, unique: str) -> None:
    cache = PostgresCache(pg_pool, prefix=f"{unique}:", sweep_interval=0)  # sweep on every write
    await cache.set("old", b"v", ttl=0.05)

    async def expired_rows() -> int:
        return int(
            await pg_pool.fetchval(
                "SELECT count(*) FROM lluminary_cache WHERE key LIKE $1 AND expires_at <= now()", f"{unique}:%"
            )
        )

    with anyio.fail_after(10):
        while await expired_rows() == 0:  # noqa: ASYNC110 - waits on the database's clock
            await anyio.sleep(0.02)
    await cache.set("new", b"v")  # nobody reads "old" again; the write's sweep removes it
    assert await expired_rows() == 0
    assert cache.swept >= 1
    assert await cache.get("new") == b"v"


async def test_secrets_never_appear_in_errors_or_reprs(unique: str) -> None:
    dsn = f"postgresql://bob:hunter2-{unique}@127.0.0.1:{free_port()}/db"
    with pytest.raises(StoreError) as info:
        await open_pool(dsn, connect_timeout=2)
    text = f"{info.value} {info.value!r} {info.value.__cause__!r} {info.value.__context__!r}"
    assert f"hunter2-{unique}" not in text
    assert "bob:***@" in str(info.value)
    assert f"hunter2-{unique}" not in repr(PostgresCache(None, dsn=dsn))
    assert "***" in repr(PostgresEventLog(None, dsn=dsn))


def _pg_ctl(server: Any, args: list[str]) -> None:
    from pgserver import pg_ctl

    pg_ctl(args, pgdata=server.pgdata, user=server.system_user)
