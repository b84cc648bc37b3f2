"""The embedded Postgres (with pgvector) used when no DSN is configured.

``pgserver`` ships Postgres binaries and pgvector in a wheel. Its server lives in
a data directory, ``<user data dir>/lluminary/pg`` (``LLUMINARY_DATA_DIR``
overrides the root), and is shared: the first process to ask starts it, later
processes (of the same user) find its ``postmaster.pid`` and connect to the
same server, and the last one to exit stops it. Connections go over a Unix
socket in the data directory, so no TCP port is opened.

Starting runs ``initdb``/``pg_ctl`` and blocks, so callers use
:func:`embedded_dsn`, which does it in a worker thread. pgserver has no wheel for
Python 3.13 yet; without it, :class:`EmbeddedUnavailableError` says to set
``LLUMINARY_DATABASE_URL`` instead.
"""

from __future__ import annotations

import os
import subprocess
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import anyio.to_thread
import platformdirs

from lluminary.errors import ConfigError
from lluminary.stores._protocols import StoreError

__all__ = ["EmbeddedUnavailableError", "data_dir", "embedded_dsn", "start_embedded", "stop_embedded"]

DATA_DIR_ENV: Final = "LLUMINARY_DATA_DIR"
DATABASE: Final = "postgres"

# pgserver keeps one handle per data directory in a class-level dict without a
# thread lock; two pools opening at once in one process must not both create one.
_start_lock = threading.Lock()
_servers: dict[Path, Any] = {}


class EmbeddedUnavailableError(StoreError, ConfigError):
    """The embedded Postgres cannot run here (pgserver missing, or it failed to start)."""


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the embedded server keeps its data: ``$LLUMINARY_DATA_DIR/pg`` or the user data dir's."""
    env = os.environ if env is None else env
    root = env.get(DATA_DIR_ENV) or platformdirs.user_data_dir("lluminary", appauthor=False)
    return Path(root).expanduser().resolve() / "pg"


def _pgserver() -> Any:
    try:
        with warnings.catch_warnings():
            # pgserver asks platformdirs for a runtime dir when its module loads; without
            # XDG_RUNTIME_DIR (containers, cron) platformdirs warns and falls back to /tmp,
            # which is exactly what we want, so the warning is noise here.
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
            import pgserver
    except ImportError as exc:
        raise EmbeddedUnavailableError(
            "the embedded Postgres needs the 'pgserver' package, which is not installed "
            f"(it has no wheel for this Python yet: {exc.name or exc}); "
            "set LLUMINARY_DATABASE_URL to a Postgres with pgvector instead"
        ) from None
    return pgserver


def start_embedded(pgdata: Path | None = None) -> str:
    """Start (or join) the embedded server in ``pgdata`` and return its DSN. Blocks."""
    pgdata = (pgdata or data_dir()).expanduser().resolve()
    pgserver = _pgserver()
    with _start_lock:
        server = _servers.get(pgdata)
        if server is None:
            try:
                pgdata.parent.mkdir(parents=True, exist_ok=True)
                # cleanup_mode="stop": pgserver counts the processes using the server
                # and the last one to exit stops it, so no daemon outlives its users.
                server = pgserver.get_server(pgdata, cleanup_mode="stop")
            except (OSError, subprocess.SubprocessError, AssertionError, RuntimeError) as exc:
                raise EmbeddedUnavailableError(
                    f"the embedded Postgres in {pgdata} did not start: {type(exc).__name__}: {exc} "
                    f"(its log is {pgdata / 'log'})"
                ) from None
            _servers[pgdata] = server
        else:
            # The handle is cached, but the server may have been stopped under it.
            _ensure_running(server, pgdata)
        return str(server.get_uri(DATABASE))


def _ensure_running(server: Any, pgdata: Path) -> None:
    info = server.get_postmaster_info()
    if info.is_running():
        return
    try:
        server.ensure_postgres_running()
    except (OSError, subprocess.SubprocessError, AssertionError, RuntimeError) as exc:
        raise EmbeddedUnavailableError(f"the embedded Postgres in {pgdata} did not restart: {exc}") from None


async def embedded_dsn(pgdata: Path | None = None) -> str:
    """:func:`start_embedded` in a worker thread, so the event loop keeps running."""
    return await anyio.to_thread.run_sync(start_embedded, pgdata)


def stop_embedded(pgdata: Path | None = None) -> None:
    """Release this process's handle on the server in ``pgdata``; it stops if it was the last."""
    pgdata = (pgdata or data_dir()).expanduser().resolve()
    with _start_lock:
        server = _servers.pop(pgdata, None)
    if server is not None:
        server.cleanup()
