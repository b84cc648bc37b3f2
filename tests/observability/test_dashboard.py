"""The Grafana dashboard queries only series and labels that the code really exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from lluminary import Retry
from lluminary.events import (
    CacheHit,
    Cost,
    Error,
    Event,
    Fallback,
    Finish,
    Start,
    TextDelta,
    Usage,
)
from lluminary.observability import Metrics, PrometheusMetrics
from tests.observability.helpers import request, run, scripted

DASHBOARD = Path(__file__).parents[2] / "dashboards" / "grafana" / "lluminary.json"
# A series name is followed by its selector, its range, or (in label_values) a comma;
# grouping clauses are removed first, since their label lists have commas too.
_METRIC = re.compile(r"\b((?:gen_ai|lluminary)_[a-z0-9_]+)\s*[{\[,]")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
_GROUPING = re.compile(r"\bby\s*\(([^)]*)\)")
_LABEL_VALUES = re.compile(r"label_values\(.*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)")


def exprs(node: Any) -> Iterator[str]:
    """Every PromQL expression in the dashboard: panel targets and variable queries."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                yield value
            else:
                yield from exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from exprs(item)


async def exported() -> tuple[set[str], set[str]]:
    """Sample and label names after driving every instrument the Metrics operator has."""
    prom = PrometheusMetrics()
    metrics = Metrics(prom.meter_provider, count_cache_misses=True, by_tenant=True, chunk_timing=True)
    full: list[Event] = [
        CacheHit("k", similarity=0.9),
        Start("r", "openai", "m"),
        Fallback(1, "anthropic:claude-haiku", "overloaded"),
        TextDelta("a"),
        TextDelta("b"),
        Usage(3, 4),
        Cost(0.1),
        Finish("stop"),
    ]
    failed: list[Event] = [Start("r", "openai", "m"), Error("rate_limited", "slow down", retryable=True)]
    try:
        await run(scripted(full), [metrics], request(metadata={"tenant": "acme"}))
        await run(scripted(failed), [metrics, Retry(max_attempts=2, base_delay=0)])
        body, _ = prom.render()
    finally:
        prom.shutdown()
    samples = [s for f in text_string_to_metric_families(body.decode()) for s in f.samples]
    names = {s.name for s in samples}
    labels = {label for s in samples for label in s.labels}
    assert "lluminary_client_retries_total" in names  # the retry really happened
    return names, labels


async def test_every_queried_metric_and_label_is_exported() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    names, labels = await exported()
    queries = list(exprs(dashboard))
    assert len(queries) > 20
    queried = {m for q in queries for m in _METRIC.findall(_GROUPING.sub("", q))}
    assert queried - names == set(), "the dashboard queries series the code does not export"
    used = {m for q in queries for m in _MATCHER.findall(q)}
    used |= {label.strip() for q in queries for group in _GROUPING.findall(q) for label in group.split(",")}
    used |= {m for q in queries for m in _LABEL_VALUES.findall(q)}
    assert used - labels - {"le"} == set(), "the dashboard uses labels the code does not export"
    # Every family the code exports is on the dashboard somewhere.
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in names if n.startswith(("gen_ai", "lluminary"))}
    shown = {re.sub(r"_(bucket|sum|count)$", "", n) for n in queried}
    assert families - shown == set()


def test_every_panel_reads_the_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    (source,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert (source["name"], source["query"]) == ("datasource", "prometheus")
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 12
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
