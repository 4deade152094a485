"""What a run counts, per DSP and for the market, and the figures derived from the counts.

Money is summed in integer CPM micro-units as the exchange does (an impression at CPM ``p`` adds
``round(p * 1e6)``; money = that / 1000 / 1e6). ``spend`` is what the exchange bills: impressions
that rendered (the world's viewability), as live; ``won_cost`` is the clearing price of every win,
what a budget is charged under the iPinYou protocol. Histograms of bids and wins by bid (for the
win rate against the bid) and of clearing prices use fixed bins of :data:`BIN_CPM` up to
:data:`MAX_CPM` (the last bin holds everything above). Time series are per simulated hour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

MICROS = 1_000_000
BIN_CPM = 0.25
MAX_CPM = 15.0
N_BINS = int(MAX_CPM / BIN_CPM) + 1
HOUR_S = 3600.0
#: The figures of :meth:`DspTally.figures` that the reports aggregate, in column order.
DSP_FIELDS = ("auctions", "bids", "timeouts", "errors", "wins", "win_rate", "impressions",
              "clicks", "conversions", "spend", "won_cost", "cpm", "ctr", "ecpc", "cpa",
              "conversion_value", "roi", "click_value", "exp_clicks", "exp_conversions", "exp_cpc",
              "exp_cpa", "exp_roi")  # fmt: skip


def bins_of(price_micros: np.ndarray) -> np.ndarray:
    """The histogram bin of each price (CPM micro-units)."""
    return np.minimum(np.asarray(price_micros) // round(BIN_CPM * MICROS), N_BINS - 1)


@dataclass
class DspTally:
    """One DSP's counts in one run."""

    name: str
    value_per_click: float = 1.0
    requests: int = 0
    bids: int = 0
    nobids: int = 0
    timeouts: int = 0
    errors: int = 0
    invalid: int = 0
    wins: int = 0
    won_cost: int = 0  # CPM micro-units
    impressions: int = 0
    spend: int = 0  # CPM micro-units, billed impressions
    clicks: int = 0
    conversions: int = 0
    conversion_value: float = 0.0
    #: The ground truth's expectations over this DSP's seen impressions (the simulator knows
    #: P(click | seen) and P(conversion | click) of each): sum of P(click), of P(click) *
    #: P(conversion), and of that times the advertiser's mean order value. Far less noisy than
    #: the realised clicks and conversions, which are rare. None outside the simulator.
    exp_clicks: float | None = None
    exp_conversions: float | None = None
    exp_value: float | None = None
    bid_hist: np.ndarray = field(default_factory=lambda: np.zeros(N_BINS, np.int64))
    win_hist: np.ndarray = field(default_factory=lambda: np.zeros(N_BINS, np.int64))
    price_hist: np.ndarray = field(default_factory=lambda: np.zeros(N_BINS, np.int64))
    spend_by_hour: dict[int, int] = field(default_factory=dict)

    def add_expected(self, clicks: float, conversions: float, value: float) -> None:
        """Add to the ground truth's expectations (None so far counts as 0)."""
        self.exp_clicks = (self.exp_clicks or 0.0) + clicks
        self.exp_conversions = (self.exp_conversions or 0.0) + conversions
        self.exp_value = (self.exp_value or 0.0) + value

    def add_spend(self, hour: int, micros: int) -> None:
        self.spend_by_hour[hour] = self.spend_by_hour.get(hour, 0) + micros

    def figures(self) -> dict[str, Any]:
        spend = self.spend / 1000 / MICROS
        value = self.clicks * self.value_per_click
        return {
            "dsp": self.name,
            "auctions": self.requests,
            "bids": self.bids,
            "timeouts": self.timeouts,
            "errors": self.errors + self.invalid,
            "wins": self.wins,
            "win_rate": _ratio(self.wins, self.bids),
            "impressions": self.impressions,
            "clicks": self.clicks,
            "conversions": self.conversions,
            "spend": spend,
            "won_cost": self.won_cost / 1000 / MICROS,
            "cpm": _ratio(spend * 1000, self.impressions),
            "ctr": _ratio(self.clicks, self.impressions),
            "ecpc": _ratio(spend, self.clicks),
            "cpa": _ratio(spend, self.conversions),
            "conversion_value": self.conversion_value,
            "roi": _ratio(self.conversion_value - spend, spend),
            "click_value": value,
            "exp_clicks": self.exp_clicks,
            "exp_conversions": self.exp_conversions,
            "exp_cpc": _ratio(spend, self.exp_clicks or 0.0),
            "exp_cpa": _ratio(spend, self.exp_conversions or 0.0),
            "exp_roi": None if self.exp_value is None else _ratio(self.exp_value - spend, spend),
        }


@dataclass
class MarketTally:
    """The market's counts in one run; ``dsps`` in the experiment's order."""

    dsps: dict[str, DspTally]
    fee_bps: int = 1000
    start_ts: float = 0.0
    auctions: int = 0
    imps: int = 0
    filled: int = 0
    price_sum: int = 0  # clearing prices of the filled imps, CPM micro-units
    price_hist: np.ndarray = field(default_factory=lambda: np.zeros(N_BINS, np.int64))

    def hour(self, ts: float) -> int:
        return int((ts - self.start_ts) // HOUR_S)

    def figures(self) -> dict[str, Any]:
        spend = sum(d.spend for d in self.dsps.values())
        fee = sum(d.spend * self.fee_bps // 10_000 for d in self.dsps.values())
        return {
            "auctions": self.auctions,
            "imps": self.imps,
            "filled": self.filled,
            "fill_rate": _ratio(self.filled, self.imps),
            "avg_clearing_price": _ratio(self.price_sum / MICROS, self.filled),
            "spend": spend / 1000 / MICROS,
            "publisher_revenue": (spend - fee) / 1000 / MICROS,
            "exchange_fee": fee / 1000 / MICROS,
            "impressions": sum(d.impressions for d in self.dsps.values()),
            "clicks": sum(d.clicks for d in self.dsps.values()),
            "conversions": sum(d.conversions for d in self.dsps.values()),
            "welfare": sum(d.clicks * d.value_per_click for d in self.dsps.values()),
        }

    def series(self) -> dict[str, Any]:
        """Histograms and spend over time, as plain lists (JSON)."""
        hours = max((h for d in self.dsps.values() for h in d.spend_by_hour), default=-1) + 1
        out: dict[str, Any] = {"bin_cpm": BIN_CPM, "hours": hours}
        out["price_hist"] = _ints(self.price_hist)
        out["dsps"] = {
            name: {
                "bid_hist": _ints(d.bid_hist),
                "win_hist": _ints(d.win_hist),
                "price_hist": _ints(d.price_hist),
                "spend_by_hour": [d.spend_by_hour.get(h, 0) / 1000 / MICROS for h in range(hours)],
            }
            for name, d in self.dsps.items()
        }
        return out


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def _ints(arr: np.ndarray) -> list[int]:
    return [int(x) for x in arr]
