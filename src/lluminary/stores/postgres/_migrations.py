"""Versioned schema migrations: every ``NNNN_name.sql`` in ``migrations/``, in order, once.

Each file is applied in its own transaction together with its row in
``schema_migrations``, so a migration is either fully there or not at all. The
whole run holds a Postgres advisory lock: when several processes start at once
on a fresh database, one applies the migrations and the others wait, then find
them recorded and apply nothing. Adding a migration is adding a file with the
next number; nothing here lists them.

A recorded migration whose file has changed since is reported (its checksum no
longer matches) but not re-run: migrations are append-only history.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final

from lluminary.stores._protocols import StoreError

__all__ = ["MIGRATIONS_LOCK", "Migration", "apply_migrations", "load_migrations"]

_log = logging.getLogger("lluminary.stores.postgres")

#: The advisory lock key every LLuMinary process takes while migrating ("lluminar" in ASCII).
MIGRATIONS_LOCK: Final = 0x6C6C756D696E6172
_NAME: Final = re.compile(r"(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(folder: Traversable | Path | None = None) -> list[Migration]:
    """Every ``NNNN_name.sql`` in ``folder`` (default: the package's), by version; other files are ignored."""
    found: dict[int, Migration] = {}
    if folder is None:
        folder = resources.files("lluminary.stores.postgres").joinpath("migrations")
    for entry in folder.iterdir():
        match = _NAME.fullmatch(entry.name)
        if match is None:
            continue
        version = int(match["version"])
        if version in found:
            raise StoreError(f"two migrations share version {version:04d}: {found[version].name}, {match['name']}")
        found[version] = Migration(version, match["name"], entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


async def apply_migrations(conn: Any, migrations: list[Migration] | None = None) -> list[int]:
    """Apply what ``conn``'s database lacks; returns the versions applied by this call."""
    pending_all = load_migrations() if migrations is None else migrations
    applied_now: list[int] = []
    # A session lock, not a transaction one: each migration commits on its own, and
    # the lock dies with the connection if this process does.
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATIONS_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY,"
            " name text NOT NULL,"
            " checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
        recorded = {row["version"]: row["checksum"] for row in rows}
        for migration in pending_all:
            known = recorded.get(migration.version)
            if known is not None:
                if known != migration.checksum:
                    _log.warning(
                        "migration %04d_%s changed after it was applied; it is not re-run",
                        migration.version,
                        migration.name,
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            _log.info("applied migration %04d_%s", migration.version, migration.name)
            applied_now.append(migration.version)
    finally:
        if not conn.is_closed():  # a dead connection has released its lock already
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATIONS_LOCK)
    return applied_now
