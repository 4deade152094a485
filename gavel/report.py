"""``gavel report EVENTS.jsonl``: the market and each DSP, from an event log.

Reads the records of :mod:`exchange.events` (each file given, after its rotated backups) and prints
two tables: the market (auctions, fill, latency, impressions, clicks, conversions, money) and one
row per DSP (calls, bid rate, timeouts, errors, wins, win rate, average clearing price, latency,
impressions, spend, clicks, conversions). Money is summed in integer micro-units, as the exchange
does, so spend = publisher revenue + exchange fee exactly.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from exchange.events import read_events, with_backups

MICROS = 1_000_000


@dataclass
class DspRow:
    calls: int = 0
    bids: int = 0
    timeouts: int = 0
    errors: int = 0  # error and invalid
    wins: int = 0
    price_micros: int = 0  # sum of clearing prices of the imps won (CPM)
    impressions: int = 0
    spend_micros: int = 0  # currency micro-units
    clicks: int = 0
    conversions: int = 0
    value: float = 0.0
    latencies: list[float] = field(default_factory=list)


@dataclass
class Report:
    auctions: int = 0
    filled: int = 0
    imps: int = 0
    imps_filled: int = 0
    impressions: int = 0
    clicks: int = 0
    conversions: int = 0
    value: float = 0.0
    spend_micros: int = 0
    revenue_micros: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    durations: list[float] = field(default_factory=list)
    notices: dict[tuple[str, str], int] = field(default_factory=dict)
    dsps: dict[str, DspRow] = field(default_factory=dict)

    def dsp(self, name: str) -> DspRow:
        row = self.dsps.get(name)
        if row is None:
            row = self.dsps[name] = DspRow()
        return row


def summarize(records: Iterable[dict[str, Any]]) -> Report:
    rep = Report()
    for r in records:
        kind = r.get("type")
        ts = r.get("ts")
        if isinstance(ts, int | float):
            rep.first_ts = ts if rep.first_ts is None else min(rep.first_ts, ts)
            rep.last_ts = ts if rep.last_ts is None else max(rep.last_ts, ts)
        if kind == "auction":
            _auction(rep, r)
        elif kind == "impression":
            rep.impressions += 1
            spend, revenue = _micros(r.get("spend")), _micros(r.get("revenue"))
            rep.spend_micros += spend
            rep.revenue_micros += revenue
            row = rep.dsp(r["bidder"])
            row.impressions += 1
            row.spend_micros += spend
        elif kind == "click":
            rep.clicks += 1
            rep.dsp(r["bidder"]).clicks += 1
        elif kind == "conversion":
            value = float(r.get("value") or 0.0)
            rep.conversions += 1
            rep.value += value
            row = rep.dsp(r["bidder"])
            row.conversions += 1
            row.value += value
        elif kind == "notice":
            key = (str(r.get("kind")), str(r.get("result")))
            rep.notices[key] = rep.notices.get(key, 0) + 1
    return rep


def _auction(rep: Report, r: dict[str, Any]) -> None:
    rep.auctions += 1
    rep.filled += bool(r.get("filled"))
    rep.durations.append(float(r.get("ms", 0.0)))
    for b in r.get("bidders", ()):
        row = rep.dsp(b["name"])
        row.calls += 1
        row.latencies.append(float(b.get("ms", 0.0)))
        result = b.get("result")
        if result == "bid":
            row.bids += 1
        elif result == "timeout":
            row.timeouts += 1
        elif result in ("error", "invalid"):
            row.errors += 1
    for imp in r.get("imps", ()):
        rep.imps += 1
        if imp.get("winner"):
            rep.imps_filled += 1
            row = rep.dsp(imp["winner"])
            row.wins += 1
            row.price_micros += _micros(imp.get("price"))


def _micros(value: Any) -> int:
    return round(float(value or 0.0) * MICROS)


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def _share(part: int, whole: int) -> str:
    return f"{part / whole * 100:.1f}%" if whole else "-"


def render(rep: Report) -> str:
    span = (rep.last_ts - rep.first_ts) if rep.first_ts is not None and rep.last_ts else 0.0
    fee = rep.spend_micros - rep.revenue_micros
    d = rep.durations
    lines = [
        f"market: {rep.auctions} auctions over {span:.1f} s, {rep.filled} filled "
        f"(fill rate {_share(rep.imps_filled, rep.imps)} of {rep.imps} imps)",
        f"auction latency p50 {_quantile(d, 0.5):.2f} ms, p95 {_quantile(d, 0.95):.2f} ms, "
        f"p99 {_quantile(d, 0.99):.2f} ms, max {max(d, default=0.0):.2f} ms",
        f"impressions {rep.impressions}, clicks {rep.clicks} (CTR "
        f"{_share(rep.clicks, rep.impressions)}), conversions {rep.conversions} "
        f"(value {rep.value:.2f})",
        f"spend {rep.spend_micros / MICROS:.6f} = publisher revenue "
        f"{rep.revenue_micros / MICROS:.6f} + exchange fee {fee / MICROS:.6f}",
    ]
    if rep.notices:
        notes = ", ".join(f"{k} {res} {n}" for (k, res), n in sorted(rep.notices.items()))
        lines.append(f"notices: {notes}")
    head = (
        f"{'DSP':<12} {'calls':>8} {'bid rate':>9} {'timeouts':>9} {'errors':>7} {'wins':>7} "
        f"{'win rate':>9} {'avg CPM':>8} {'p95 ms':>8} {'impr.':>7} {'spend':>11} "
        f"{'clicks':>7} {'conv.':>6}"
    )
    lines += ["", head]
    for name, row in sorted(rep.dsps.items()):
        avg = f"{row.price_micros / row.wins / MICROS:.3f}" if row.wins else "-"
        lines.append(
            f"{name:<12} {row.calls:>8} {_share(row.bids, row.calls):>9} {row.timeouts:>9} "
            f"{row.errors:>7} {row.wins:>7} {_share(row.wins, row.bids):>9} {avg:>8} "
            f"{_quantile(row.latencies, 0.95):>8.2f} {row.impressions:>7} "
            f"{row.spend_micros / MICROS:>11.6f} {row.clicks:>7} {row.conversions:>6}"
        )
    return "\n".join(lines)


def report_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """``gavel report``: exit 0, or raises ValueError (exit 2) for a missing or empty log."""
    paths: list[Path] = []
    for name in args.events:
        path = Path(name)
        if not path.is_file():
            raise ValueError(f"{name}: no such file")
        paths += with_backups(path) if not args.no_backups else [path]
    rep = summarize(read_events(paths))
    if not rep.auctions and not rep.impressions:
        raise ValueError(f"{', '.join(args.events)}: no events (is it a Gavel event log?)")
    (out or sys.stdout).write(render(rep) + "\n")
    if getattr(args, "html", None):
        from gavel.sim.eventlog import report_events

        html = report_events(args.events, Path(args.html), backups=not args.no_backups)
        (out or sys.stdout).write(f"report: {html}\n")
    return 0
