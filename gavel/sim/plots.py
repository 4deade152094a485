"""PNG plots of a simulation's results with matplotlib's Agg backend (no display needed):
spend over time, clicks by budget per strategy, win rate against the bid, clearing prices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

_META = {"Software": None}  # no version stamp: the same results, the same bytes


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata=_META)
    plt.close(fig)
    return path


def _first_seed(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One series per variant: the first seed's."""
    out: dict[str, dict[str, Any]] = {}
    for s in doc["series"]:
        out.setdefault(s["variant"], s)
    return out


def spend_over_time(doc: dict[str, Any], focus: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4))
    for variant, s in _first_seed(doc).items():
        for dsp, d in s["dsps"].items():
            if dsp != focus:
                continue
            cum = np.cumsum(d["spend_by_hour"])
            if cum.size and cum[-1] > 0:
                ax.plot(np.arange(1, cum.size + 1), cum, label=f"{variant}: {dsp}", lw=1)
    ax.set(
        xlabel="simulated hour",
        ylabel=f"cumulative spend of {focus}",
        title="Budget spent over time (first seed)",
    )
    if ax.lines:
        ax.legend(fontsize=6, ncol=2)
    return _save(fig, path)


def clicks_by_budget(doc: dict[str, Any], focus: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4))
    by_variant: dict[str, list[tuple[float, float, float]]] = {}
    for row in doc["variants"]:
        if row["dsp"] != focus or " @ " not in row["variant"]:
            continue
        name, frac = row["variant"].split(" @ ")
        num, den = frac.split("/")
        by_variant.setdefault(name, []).append(
            (int(num) / int(den), row["clicks"] or 0, row["clicks_ci"] or 0)
        )
    for name, pts in by_variant.items():
        pts.sort()
        x, y, e = zip(*pts, strict=True)
        ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label=name)
    ax.set_xscale("log", base=2)
    ax.set(xlabel="budget (fraction of the total market cost)", ylabel=f"clicks of {focus}",
           title="Clicks by budget per strategy (mean, 95% CI)")  # fmt: skip
    if by_variant:
        ax.legend(fontsize=7)
    else:
        ax.text(
            0.5, 0.5, "no budget fractions in this experiment", ha="center", transform=ax.transAxes
        )
    return _save(fig, path)


def win_rate_by_bid(doc: dict[str, Any], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4))
    for variant, s in _first_seed(doc).items():
        width = s["bin_cpm"]
        for dsp, d in s["dsps"].items():
            bids, wins = np.array(d["bid_hist"]), np.array(d["win_hist"])
            ok = bids >= 20
            if ok.sum() >= 2:
                x = (np.flatnonzero(ok) + 0.5) * width
                ax.plot(x, wins[ok] / bids[ok], marker=".", lw=1, label=f"{variant}: {dsp}")
        break  # the first variant's DSPs: one market, every bidder's curve
    ax.set(xlabel="bid (CPM)", ylabel="win rate", ylim=(0, 1.02),
           title="Win rate against the bid (first variant and seed; bins with >= 20 bids)")  # fmt: skip
    if ax.lines:
        ax.legend(fontsize=6, ncol=2)
    return _save(fig, path)


def price_distribution(doc: dict[str, Any], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4))
    for variant, s in _first_seed(doc).items():
        hist = np.array(s["price_hist"], dtype=float)
        if hist.sum():
            x = (np.arange(hist.size) + 0.5) * s["bin_cpm"]
            ax.step(x, hist / hist.sum(), where="mid", label=variant, lw=1)
    ax.set(xlabel="clearing price (CPM; last bin: above)", ylabel="share of sold imps",
           title="Clearing price distribution (first seed)")  # fmt: skip
    if ax.lines:
        ax.legend(fontsize=7)
    return _save(fig, path)


def make_plots(doc: dict[str, Any], out: Path, focus: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    return [
        spend_over_time(doc, focus, out / "spend_over_time.png"),
        clicks_by_budget(doc, focus, out / "clicks_by_budget.png"),
        win_rate_by_bid(doc, out / "win_rate_by_bid.png"),
        price_distribution(doc, out / "price_distribution.png"),
    ]
