"""Test configuration: hypothesis profiles, and the fixtures most tests share."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=200)
settings.register_profile("ci", parent=settings.get_profile("default"), max_examples=300)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """A Postgres with pgvector for the whole session: ``LLUMINARY_DATABASE_URL`` when set,
    else ONE embedded pgserver shared by the store, cache and cost suites. Its data lives in
    a private tmp dir (pytest resets its own tmp root to 0700 between sessions, which would
    lock the server's user out mid-run). Tests that stop or restart Postgres start their own.
    """
    configured = os.environ.get("LLUMINARY_DATABASE_URL")
    if configured:
        yield configured
        return
    from lluminary.stores.postgres._embedded import start_embedded, stop_embedded
    from tests.stores._backends import private_tmp_dir

    with private_tmp_dir() as tmp:
        pgdata = tmp / "pg"
        dsn = start_embedded(pgdata)
        try:
            yield dsn
        finally:
            stop_embedded(pgdata)
