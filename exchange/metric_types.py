"""Lean metric primitives for the hot path, exposed through prometheus_client at scrape time.

prometheus_client's own ``Counter.inc`` costs ~0.9 us and ``Histogram.observe`` ~3 us, with locks an
asyncio server does not need; an auction updates ~30 of them. These keep plain numbers in slotted
objects (~0.1-0.3 us an update) and a :class:`Collector` turns them into metric families when
``/metrics`` is scraped. Same surface as prometheus_client: ``labels(...)``, ``inc``, ``set``,
``dec``, ``observe``. Single-threaded use only (one event loop per process).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector as _PromCollector
from prometheus_client.utils import floatToGoString


class CounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("counters only go up")
        self.value += amount


class GaugeChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount

    def set(self, value: float) -> None:
        self.value = float(value)


class HistogramChild:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # Prometheus buckets are "less than or equal": the first bound >= value.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


class Metric:
    """One metric family: its children by label values (the unlabelled one is ``()``)."""

    def __init__(
        self,
        collector: Collector,
        kind: str,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = (),
    ) -> None:
        self.kind = kind
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.bounds = tuple(float(b) for b in buckets)
        self.children: dict[tuple[str, ...], Any] = {}
        collector.metrics.append(self)
        if not self.labelnames:
            self._only = self.labels()

    def labels(self, *values: str) -> Any:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
        child = self.children.get(values)
        if child is None:
            if self.kind == "histogram":
                child = HistogramChild(self.bounds)
            elif self.kind == "gauge":
                child = GaugeChild()
            else:
                child = CounterChild()
            self.children[values] = child
        return child

    # The unlabelled family acts as its own child.
    def inc(self, amount: float = 1.0) -> None:
        self._only.inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        self._only.dec(amount)

    def set(self, value: float) -> None:
        self._only.set(value)

    def observe(self, value: float) -> None:
        self._only.observe(value)

    def family(self) -> Any:
        labels = list(self.labelnames)
        fam: Any
        if self.kind == "counter":
            fam = CounterMetricFamily(self.name, self.documentation, labels=labels)
            for values, child in self.children.items():
                fam.add_metric(list(values), child.value)
        elif self.kind == "gauge":
            fam = GaugeMetricFamily(self.name, self.documentation, labels=labels)
            for values, child in self.children.items():
                fam.add_metric(list(values), child.value)
        else:
            fam = HistogramMetricFamily(self.name, self.documentation, labels=labels)
            for values, child in self.children.items():
                running = 0
                buckets = []
                for bound, count in zip(self.bounds, child.counts, strict=False):
                    running += count
                    buckets.append((floatToGoString(bound), running))
                running += child.counts[-1]
                buckets.append(("+Inf", running))
                fam.add_metric(list(values), buckets, child.sum)
        return fam


class Collector(_PromCollector):
    """Holds the metrics of one server; register it in that server's CollectorRegistry."""

    def __init__(self) -> None:
        self.metrics: list[Metric] = []

    def collect(self) -> Iterator[Any]:
        for metric in self.metrics:
            yield metric.family()

    def counter(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Metric:
        return Metric(self, "counter", name, documentation, labelnames)

    def gauge(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Metric:
        return Metric(self, "gauge", name, documentation, labelnames)

    def histogram(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float],
    ) -> Metric:
        return Metric(self, "histogram", name, documentation, labelnames, buckets)
