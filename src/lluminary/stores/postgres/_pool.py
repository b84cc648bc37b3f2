"""The Postgres connection pool, and the one place asyncpg exceptions are translated.

:func:`open_pool` is how every part of LLuMinary gets a database: the DSN is the
argument, else ``LLUMINARY_DATABASE_URL``, else the embedded server. It applies
the migrations first (on one plain connection, because pgvector's codec can only
be registered once the ``vector`` type exists), then opens an asyncpg pool whose
connections all have the pgvector codec.

:func:`with_connection` runs one unit of work on a pooled connection and makes a
database restart survivable. When the server goes away, the pooled connections
are dead but the pool does not know until it uses them; the first query on one
fails. That query is then run once more on a fresh connection (all pooled ones
are expired, so the retry cannot pick another dead one) when that is safe: when
the work is idempotent, or when it failed before anything was sent. Otherwise,
or if the retry fails too, the caller gets :class:`StoreError`; later calls
reconnect on their own once the server is back. Nothing is acknowledged before
its statement (and so its implicit COMMIT) has returned, so a write that
returned is durable.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import asyncpg
from pgvector.asyncpg import register_vector

from lluminary.stores._common import redact_url, scrub
from lluminary.stores._protocols import StoreError
from lluminary.stores.postgres._embedded import embedded_dsn
from lluminary.stores.postgres._migrations import apply_migrations

__all__ = ["DATABASE_URL_ENV", "open_pool", "resolve_dsn", "translate", "with_connection"]

T = TypeVar("T")

DATABASE_URL_ENV: Final = "LLUMINARY_DATABASE_URL"

# Failures that mean "this connection, or the server, is gone", not "this query is wrong".
_GONE: Final = (
    asyncpg.PostgresConnectionError,  # incl. ConnectionDoesNotExistError: closed mid-operation
    asyncpg.exceptions.AdminShutdownError,  # the server is shutting down (pg_ctl stop)
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,  # the server is starting up or shutting down
    OSError,  # refused, reset, the Unix socket is gone
    TimeoutError,  # connecting took too long
)
# Everything asyncpg (or the socket under it) can raise; translated to StoreError.
_DRIVER: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError, TimeoutError)


async def resolve_dsn(dsn: str | None = None) -> str:
    """``dsn``, else ``LLUMINARY_DATABASE_URL``, else the embedded server (started if need be)."""
    return dsn or os.environ.get(DATABASE_URL_ENV) or await embedded_dsn()


async def open_pool(
    dsn: str | None = None,
    *,
    min_size: int = 1,
    max_size: int = 10,
    connect_timeout: float = 10.0,
    command_timeout: float | None = 60.0,
    migrate: bool = True,
) -> Any:
    """An ``asyncpg.Pool`` on a migrated database whose connections speak pgvector.

    ``dsn`` None means ``LLUMINARY_DATABASE_URL``, else the embedded Postgres,
    started on first use. Close the pool with ``await pool.close()``.
    """
    url = await resolve_dsn(dsn)
    try:
        if migrate:
            conn = await asyncpg.connect(url, timeout=connect_timeout, command_timeout=command_timeout)
            try:
                await apply_migrations(conn)
            finally:
                await conn.close()
        pool = await asyncpg.create_pool(
            url,
            min_size=min_size,
            max_size=max_size,
            init=register_vector,
            timeout=connect_timeout,
            command_timeout=command_timeout,
        )
    except (*_DRIVER, ValueError) as exc:  # ValueError: asyncpg's verdict on a malformed DSN
        raise StoreError(f"cannot open Postgres at {redact_url(url)}: {_describe(exc, url)}") from None
    return pool


async def with_connection(
    pool: Any,
    work: Callable[[Any], Awaitable[T]],
    *,
    what: str = "query",
    idempotent: bool = True,
    acquire_timeout: float | None = 10.0,
) -> T:
    """``await work(connection)`` on a pooled connection, retried once after a lost connection.

    Set ``idempotent=False`` for work that must not run twice; it is then retried
    only when the failure came before a connection was even handed out.
    """
    for attempt in (1, 2):
        acquired = False
        closed = False
        try:
            async with pool.acquire(timeout=acquire_timeout) as conn:
                acquired = True
                try:
                    return await work(conn)
                except BaseException:
                    closed = _is_closed(conn)
                    raise
        except _DRIVER as exc:
            if not _gone(exc, closed or not acquired):
                raise translate(exc, what) from None
            # Every pooled connection predates the failure and may be dead as well.
            await pool.expire_connections()
            if attempt == 2 or not (idempotent or not acquired):
                raise translate(exc, what) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _is_closed(conn: Any) -> bool:
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:
        # The pool detaches a connection's proxy as soon as the connection closes.
        return True


def _gone(exc: BaseException, closed: bool) -> bool:
    """Did ``exc`` come from a lost connection or server, rather than from the work itself?"""
    if isinstance(exc, _GONE):
        return True
    # The server closed the connection while it sat idle in the pool (a restart, a
    # terminated backend) and the next query finds the protocol in a broken state.
    if isinstance(exc, asyncpg.InternalClientError):
        return True
    # InterfaceError covers both "connection is closed" and client-side mistakes
    # (DataError: a value that does not encode); only the first is a lost connection.
    return isinstance(exc, asyncpg.InterfaceError) and not isinstance(exc, asyncpg.DataError) and closed


def translate(exc: BaseException, what: str = "query", url: str | None = None) -> StoreError:
    """The :class:`StoreError` for a driver exception, without any secret in its text."""
    return StoreError(f"Postgres {what} failed: {_describe(exc, url)}")


def _describe(exc: BaseException, url: str | None) -> str:
    text = str(exc) or "no detail"
    return scrub(f"{type(exc).__name__}: {text}", url)
