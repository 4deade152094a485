"""A live event log (``gavel ssp --event-log``, records of :mod:`exchange.events`) as the same
report as a simulation: CSV, JSON, plots and the HTML report, as one run of one variant ("live").

Auction records give each DSP's calls, bids, timeouts, errors, wins, clearing prices and bid
histograms; impression records its billed spend (by hour since the first record); click and
conversion records the rest. ``report_events(paths, out)`` writes everything to ``out``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from exchange.events import read_events, with_backups
from gavel.sim.html import write_html
from gavel.sim.metrics import BIN_CPM, MICROS, N_BINS, DspTally, MarketTally
from gavel.sim.plots import make_plots
from gavel.sim.report import write_results
from gavel.sim.runner import RunResult

_BIN = round(BIN_CPM * MICROS)


def _bin(price: Any) -> int:
    return min(round(float(price or 0) * MICROS) // _BIN, N_BINS - 1)


def tally_events(records: Iterable[dict[str, Any]]) -> MarketTally:
    t = MarketTally(dsps={})

    def dsp(name: str) -> DspTally:
        d = t.dsps.get(name)
        if d is None:
            d = t.dsps[name] = DspTally(name=name)
        return d

    start: float | None = None
    for r in records:
        kind = r.get("type")
        ts = r.get("ts")
        if start is None and isinstance(ts, int | float):
            start = t.start_ts = float(ts)
        if kind == "auction":
            t.auctions += 1
            for b in r.get("bidders", ()):
                d = dsp(b["name"])
                d.requests += 1
                result = b.get("result")
                if result == "bid":
                    d.bids += 1
                    for bid in b.get("bids", ()):
                        d.bid_hist[_bin(bid.get("price"))] += 1
                elif result == "timeout":
                    d.timeouts += 1
                elif result == "error":
                    d.errors += 1
                elif result == "invalid":
                    d.invalid += 1
            for imp in r.get("imps", ()):
                t.imps += 1
                winner = imp.get("winner")
                if not winner:
                    continue
                price = round(float(imp.get("price") or 0) * MICROS)
                t.filled += 1
                t.price_sum += price
                t.price_hist[_bin(imp.get("price"))] += 1
                d = dsp(winner)
                d.wins += 1
                d.won_cost += price
                d.price_hist[_bin(imp.get("price"))] += 1
                bids = [
                    b
                    for e in r.get("bidders", ())
                    if e["name"] == winner
                    for b in e.get("bids", ())
                ]
                mine = [b for b in bids if b.get("id") == imp.get("bid")]
                d.win_hist[
                    _bin((mine or bids or [{"price": imp.get("price")}])[0].get("price"))
                ] += 1
        elif kind == "impression":
            d = dsp(r["bidder"])
            price = round(float(r.get("price") or 0) * MICROS)
            d.impressions += 1
            d.spend += price
            d.add_spend(t.hour(float(ts or t.start_ts)), price)
        elif kind == "click":
            dsp(r["bidder"]).clicks += 1
        elif kind == "conversion":
            d = dsp(r["bidder"])
            d.conversions += 1
            d.conversion_value += float(r.get("value") or 0.0)
    return t


def report_events(paths: Iterable[str | Path], out: Path, *, backups: bool = True) -> Path:
    files: list[Path] = []
    for p in paths:
        files += with_backups(p) if backups else [Path(p)]
    tally = tally_events(read_events(files))
    if not tally.auctions:
        raise ValueError("no auction records (is it a Gavel event log?)")
    result = RunResult(label="live", variant="live", fraction=None, seed=0, path="event log",
                       budget=None, market=tally)  # fmt: skip
    doc = write_results(out, "Event log", ", ".join(str(f) for f in files), [result])
    focus = max(tally.dsps, key=lambda n: tally.dsps[n].spend) if tally.dsps else ""
    images = make_plots(doc, out / "plots", focus)
    return write_html(
        out / "report.html",
        doc,
        images,
        note="From a live event log: one run, no confidence intervals.",
    )
