"""The reliability suites' configuration: the ``soak`` marker, the shared proxy and the scale knobs.

Tests marked ``soak`` are the full-size runs (tens of thousands of streams). They
are deselected unless the ``-m`` expression names them (``pytest -m soak
tests/faults``); the default suite runs reduced versions of the same code.

Scale comes from the environment, so CI and a developer can change it without
editing tests: ``LLUMINARY_FUZZ_EXAMPLES`` (hypothesis examples per parser:
10,000 when ``CI`` is set, else 300), ``LLUMINARY_FUZZ_SHARD`` (``k/n``: run the
fuzz properties of every n-th parser only, to split them over CI jobs) and
``LLUMINARY_FAULT_HTTP_STREAMS`` (streams per framing through the proxy in the
cut suite: 2,000 when ``CI`` is set, else 300).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.faults.proxy import FaultProxy


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: full-size soak runs, selected only with -m soak")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "soak" in (config.getoption("markexpr", "") or ""):
        return
    deselected = [item for item in items if item.get_closest_marker("soak") is not None]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item.get_closest_marker("soak") is None]


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    async with FaultProxy() as running:
        yield running
