"""In-memory aggregates of the running exchange: what ``/stats``, the status line and the summary read.

Money is summed in integer micro-units of CPM (one impression costs ``price / 1000``), so the books
balance exactly: spend = publisher revenue + exchange fee.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

MICROS = 1_000_000


@dataclass(slots=True)
class BidderStats:
    requests: int = 0
    bids: int = 0
    nobids: int = 0
    timeouts: int = 0
    errors: int = 0
    invalid: int = 0
    bids_dropped: int = 0
    wins: int = 0
    impressions: int = 0
    clicks: int = 0
    spend_cpm_micros: int = 0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["spend"] = self.spend_cpm_micros / 1000 / MICROS
        return out


@dataclass(slots=True)
class Stats:
    auctions: int = 0
    filled: int = 0
    rejected: int = 0
    overload: int = 0
    #: Loop turns new auctions yielded to auctions past their cutoff (Exchange.answers_first).
    answers_first: int = 0
    imps: int = 0
    imps_filled: int = 0
    impressions: int = 0
    clicks: int = 0
    spend_cpm_micros: int = 0
    publisher_cpm_micros: int = 0
    fee_cpm_micros: int = 0
    bidders: dict[str, BidderStats] = field(default_factory=dict)
    #: The most recent auction durations (seconds), for percentiles.
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=4096))

    def bidder(self, name: str) -> BidderStats:
        b = self.bidders.get(name)
        if b is None:
            b = self.bidders[name] = BidderStats()
        return b

    def percentiles(self) -> dict[str, float]:
        values = sorted(self.recent)
        if not values:
            return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
        n = len(values)
        return {
            "p50": values[(n - 1) // 2],
            "p95": values[min(n - 1, int(n * 0.95))],
            "p99": values[min(n - 1, int(n * 0.99))],
            "max": values[-1],
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "auctions": self.auctions,
            "filled": self.filled,
            "rejected": self.rejected,
            "overload": self.overload,
            "answers_first": self.answers_first,
            "imps": self.imps,
            "imps_filled": self.imps_filled,
            "fill_rate": self.imps_filled / self.imps if self.imps else 0.0,
            "impressions": self.impressions,
            "clicks": self.clicks,
            "spend": self.spend_cpm_micros / 1000 / MICROS,
            "publisher_revenue": self.publisher_cpm_micros / 1000 / MICROS,
            "exchange_fee": self.fee_cpm_micros / 1000 / MICROS,
            "latency_s": self.percentiles(),
            "bidders": {name: b.to_json() for name, b in sorted(self.bidders.items())},
        }
