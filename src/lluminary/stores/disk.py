"""A cache on local disk: one SQLite file in WAL mode, driven from a worker thread.

sqlite3 blocks, so every call runs in one worker thread at a time
(``anyio.to_thread`` with a limiter of one): the event loop never waits on the
disk, and the single connection is never used by two threads at once. WAL mode
lets other processes read the same file while one writes.

Values are stored exactly as given (callers pass msgpack bytes); nothing is ever
pickled (diskcache's pickle default is CVE-2025-69872). Each row carries a CRC32
of its value, so a damaged entry is detected on read and becomes a miss. A
damaged *file* ("file is not a database", "database disk image is malformed")
is moved aside and replaced by an empty one: a cache can always start over, and
a read never raises for corruption. Other failures (disk full, a read-only
directory) raise :class:`StoreError`.

The size bound counts key and value bytes. Triggers keep the running total in
the file itself, so several processes sharing it agree on it; when a write
takes it over ``max_bytes``, expired rows go first, then the least recently
read ones.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

import anyio
import anyio.to_thread

from lluminary.stores._common import norm_ttl
from lluminary.stores._protocols import StoreError

__all__ = ["DiskCache"]

_log = logging.getLogger("lluminary.stores.disk")
T = TypeVar("T")

_CORRUPT_CODES: Final = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    crc INTEGER NOT NULL,
    size INTEGER NOT NULL,
    expires_at REAL,
    accessed_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS cache_accessed_at ON cache (accessed_at);
CREATE INDEX IF NOT EXISTS cache_expires_at ON cache (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS meta (id INTEGER PRIMARY KEY CHECK (id = 0), total INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (id, total) VALUES (0, 0);
CREATE TRIGGER IF NOT EXISTS cache_ins AFTER INSERT ON cache
    BEGIN UPDATE meta SET total = total + NEW.size WHERE id = 0; END;
CREATE TRIGGER IF NOT EXISTS cache_del AFTER DELETE ON cache
    BEGIN UPDATE meta SET total = total - OLD.size WHERE id = 0; END;
CREATE TRIGGER IF NOT EXISTS cache_upd AFTER UPDATE OF size ON cache
    BEGIN UPDATE meta SET total = total - OLD.size + NEW.size WHERE id = 0; END;
"""


class DiskCache:
    """A SQLite-backed :class:`~lluminary.stores.CacheStore` bounded by ``max_bytes``.

    ``path`` is the database file; a directory means ``<dir>/cache.sqlite3``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int = 1024 * 1024 * 1024,
        prefix: str = "",
        busy_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        target = Path(path).expanduser()
        if target.is_dir():
            target = target / "cache.sqlite3"
        self.path = target
        self.max_bytes = max_bytes
        self.prefix = prefix
        self.busy_timeout = busy_timeout
        self.evictions = 0
        self.corruptions = 0
        self._clock = clock  # wall time: entries outlive the process that wrote them
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._limiter = anyio.CapacityLimiter(1)
        self._lock = threading.Lock()  # belt and braces: the limiter already serialises

    def __repr__(self) -> str:
        return f"DiskCache(path={str(self.path)!r}, max_bytes={self.max_bytes})"

    async def get(self, key: str) -> bytes | None:
        return await self._run(self._get, self.prefix + key)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        seconds = norm_ttl(ttl)
        await self._run(self._set, self.prefix + key, bytes(value), seconds)

    async def delete(self, key: str) -> None:
        await self._run(self._delete, self.prefix + key)

    async def total_bytes(self) -> int:
        """Key and value bytes held, as the triggers count them."""
        return await self._run(self._total)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await anyio.to_thread.run_sync(self._close, limiter=self._limiter)

    # -- the worker-thread side ------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        if self._closed:
            raise StoreError("the disk cache is closed")
        return await anyio.to_thread.run_sync(self._guarded, fn, args, limiter=self._limiter)

    def _guarded(self, fn: Callable[..., T], args: tuple[object, ...]) -> T:
        """Run ``fn`` with a connection; corruption resets the file, anything else is a StoreError."""
        with self._lock:
            for attempt in (0, 1):
                try:
                    return fn(self._connection(), *args)
                except sqlite3.DatabaseError as exc:
                    if _is_corrupt(exc) and attempt == 0:
                        self._reset(exc)
                        continue
                    raise StoreError(f"disk cache {self.path}: {exc}") from exc
                except OSError as exc:
                    raise StoreError(f"disk cache {self.path}: {exc}") from exc
            raise AssertionError("unreachable")  # pragma: no cover

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL is durable against process crashes in WAL mode; a power cut may
                # lose the last writes, which a cache can afford.
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_SCHEMA)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _reset(self, exc: sqlite3.DatabaseError) -> None:
        """Move a damaged file aside and start an empty one."""
        self.corruptions += 1
        _log.warning("disk cache %s is damaged (%s); starting an empty one", self.path, exc)
        self._close()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for suffix in ("", "-wal", "-shm"):
            damaged = Path(f"{self.path}{suffix}")
            if damaged.exists():
                damaged.replace(Path(f"{self.path}.corrupt-{stamp}-{self.corruptions}{suffix}"))

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _get(self, conn: sqlite3.Connection, key: str) -> bytes | None:
        row = conn.execute("SELECT value, crc, expires_at FROM cache WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        value, crc, expires_at = row
        now = self._clock()
        if not isinstance(value, bytes) or zlib.crc32(value) != crc:
            # A damaged entry: drop it, and answer as if it had never been there.
            self.corruptions += 1
            _log.warning("disk cache %s: entry failed its checksum; dropped", self.path)
            conn.execute("DELETE FROM cache WHERE key = ?", (key,))
            return None
        if expires_at is not None and expires_at <= now:
            conn.execute("DELETE FROM cache WHERE key = ? AND expires_at <= ?", (key, now))
            return None
        conn.execute("UPDATE cache SET accessed_at = ? WHERE key = ?", (now, key))
        return value

    def _set(self, conn: sqlite3.Connection, key: str, value: bytes, seconds: float | None) -> None:
        size = len(key.encode()) + len(value)
        if seconds == 0.0 or size > self.max_bytes:
            conn.execute("DELETE FROM cache WHERE key = ?", (key,))
            return
        now = self._clock()
        expires_at = None if seconds is None else now + seconds
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT INTO cache (key, value, crc, size, expires_at, accessed_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, crc = excluded.crc, "
                "size = excluded.size, expires_at = excluded.expires_at, accessed_at = excluded.accessed_at",
                (key, value, zlib.crc32(value), size, expires_at, now),
            )
            if self._total(conn) > self.max_bytes:
                self._evict(conn, now, keep=key)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _evict(self, conn: sqlite3.Connection, now: float, keep: str) -> None:
        conn.execute("DELETE FROM cache WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))
        # One row at a time, least recently read first: each step is an index lookup,
        # and nothing more is evicted than the bound needs.
        while self._total(conn) > self.max_bytes:
            cursor = conn.execute(
                "DELETE FROM cache WHERE key = (SELECT key FROM cache WHERE key != ? ORDER BY accessed_at LIMIT 1)",
                (keep,),
            )
            if cursor.rowcount <= 0:
                break
            self.evictions += 1

    def _delete(self, conn: sqlite3.Connection, key: str) -> None:
        conn.execute("DELETE FROM cache WHERE key = ?", (key,))

    def _total(self, conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT total FROM meta WHERE id = 0").fetchone()
        return int(row[0]) if row is not None else 0


def _is_corrupt(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _CORRUPT_CODES
    text = str(exc)
    return "malformed" in text or "not a database" in text
