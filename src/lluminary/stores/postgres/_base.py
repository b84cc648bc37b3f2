"""What the Postgres stores share: a pool they may own, and one way to run work on it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from lluminary.stores._common import redact_url
from lluminary.stores._protocols import StoreError
from lluminary.stores.postgres._pool import with_connection

__all__ = ["PgStore"]

T = TypeVar("T")


class PgStore:
    """A store over an asyncpg pool from :func:`open_pool`.

    With ``owns_pool`` the store closes the pool in :meth:`aclose` (the factory
    does this); otherwise the pool is the caller's to close, so several stores
    can share one. ``dsn`` is only shown, redacted, in the repr.
    """

    def __init__(self, pool: Any, *, owns_pool: bool = False, dsn: str | None = None) -> None:
        self.pool = pool
        self._owns_pool = owns_pool
        self._where = redact_url(dsn) if dsn else None
        self._closed = False

    def __repr__(self) -> str:
        where = f"dsn={self._where!r}" if self._where else "pool"
        return f"{type(self).__name__}({where})"

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_pool:
            await self.pool.close()

    async def _run(self, what: str, work: Callable[[Any], Awaitable[T]], *, idempotent: bool = True) -> T:
        if self._closed:
            raise StoreError(f"{type(self).__name__} is closed")
        return await with_connection(self.pool, work, what=what, idempotent=idempotent)
