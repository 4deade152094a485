"""The lean metric primitives expose what prometheus_client's own types would."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exchange.metric_types import Collector


def _scrape(collector: Collector) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_histogram_buckets_are_cumulative_and_inclusive_of_their_bound() -> None:
    c = Collector()
    h = c.histogram("t_seconds", "doc", ["who"], buckets=(0.001, 0.01, 0.1))
    child = h.labels("a")
    for v in (0.001, 0.0005, 0.05, 0.1, 7.0):
        child.observe(v)
    got = _scrape(c)
    buckets = {dict(k)["le"]: v for k, v in got["t_seconds_bucket"].items()}
    assert buckets == {"0.001": 2, "0.01": 2, "0.1": 4, "+Inf": 5}
    assert got["t_seconds_count"][(("who", "a"),)] == 5
    assert got["t_seconds_sum"][(("who", "a"),)] == pytest.approx(7.1515)


def test_counters_gauges_and_labels() -> None:
    c = Collector()
    total = c.counter("t_things_total", "doc", ["kind"])
    total.labels("x").inc()
    total.labels("x").inc(2)
    g = c.gauge("t_level", "doc")
    g.inc(5)
    g.dec(2)
    got = _scrape(c)
    assert got["t_things_total"] == {(("kind", "x"),): 3.0}
    assert got["t_level"] == {(): 3.0}
    with pytest.raises(ValueError):
        total.labels("x").inc(-1)
    with pytest.raises(ValueError):
        total.labels("x", "y")
    assert total.labels("x") is total.labels("x")  # bound once, then cached
