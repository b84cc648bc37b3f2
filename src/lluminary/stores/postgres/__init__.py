"""Postgres with pgvector: the default store (embedded via pgserver when no DSN is set).

:func:`open_pool` gives any part of LLuMinary a migrated asyncpg pool;
:func:`with_connection` runs work on it and survives a database restart. The
stores take that pool: :class:`PostgresCache`, :class:`PgVectorIndex` and
:class:`PostgresEventLog`.
"""

from lluminary.stores.postgres._cache import PostgresCache
from lluminary.stores.postgres._embedded import EmbeddedUnavailableError, data_dir, embedded_dsn, stop_embedded
from lluminary.stores.postgres._eventlog import PostgresEventLog
from lluminary.stores.postgres._migrations import Migration, apply_migrations, load_migrations
from lluminary.stores.postgres._pool import DATABASE_URL_ENV, open_pool, resolve_dsn, with_connection
from lluminary.stores.postgres._vectors import PgVectorIndex

__all__ = [
    "DATABASE_URL_ENV",
    "EmbeddedUnavailableError",
    "Migration",
    "PgVectorIndex",
    "PostgresCache",
    "PostgresEventLog",
    "apply_migrations",
    "data_dir",
    "embedded_dsn",
    "load_migrations",
    "open_pool",
    "resolve_dsn",
    "stop_embedded",
    "with_connection",
]
