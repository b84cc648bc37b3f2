"""Fixtures for the cost tests: a real Postgres for the ledger, loopback servers for providers.

Postgres is ``LLUMINARY_DATABASE_URL`` when set, else one embedded pgserver for
the session (its data in a temporary directory of its own), opened with
:func:`lluminary.stores.postgres.open_pool`, which applies ``0005_ledger.sql``.
Rows of different tests never meet: each test uses its own request ids and
tenants, and its own time window for reports.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lluminary.stores.postgres import open_pool


@pytest.fixture
async def pg_pool(pg_dsn: str) -> AsyncIterator[Any]:
    pool = await open_pool(pg_dsn, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
def epoch() -> float:
    """A UTC midnight of its own, far from now and from other tests' rows: a private report window."""
    return 86400.0 * random.randrange(20_000, 40_000)
