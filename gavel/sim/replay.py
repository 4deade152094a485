"""Replay of iPinYou bid logs with the benchmark's protocol (Zhang et al., "Real-Time Bidding
Benchmarking with iPinYou Dataset", 2014; the make-ipinyou-data scripts).

The format assumed: make-ipinyou-data's ``train.log.txt`` / ``test.log.txt``, tab-separated, one
header line naming the columns, in this order (checked against the scripts' documentation)::

    click weekday hour bidid timestamp logtype ipinyouid useragent IP region city adexchange
    domain url urlid slotid slotwidth slotheight slotvisibility slotformat slotprice creative
    bidprice payprice keypage advertiser usertag

Columns are found by their header name, so extra or reordered columns are fine; ``click`` and
``payprice`` are required, ``slotprice`` (the floor) is used when present. Prices are CPM in the
log's unit (RMB fen for iPinYou). Protocol: the strategy bids for each impression; it wins when its
bid is strictly above ``payprice`` and pays ``payprice``; a win the remaining budget cannot pay
is not taken, so the spend never passes the budget and bidding stops once it is spent.
"""

from __future__ import annotations

import csv
from fractions import Fraction
from pathlib import Path
from typing import Any

from dsp.registry import make_strategy
from dsp.strategy import BidContext

REQUIRED = ("click", "payprice")
_PRIOR_WEIGHT = 100.0


def parse_fraction(text: str) -> float:
    try:
        f = float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"--budget-fraction: expected 1/8 or 0.125, got {text!r}") from None
    if not 0 < f <= 1:
        raise ValueError(f"--budget-fraction must be in (0, 1], got {text!r}")
    return f


def read_log(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path}: the header has no {', '.join(missing)} column "
                             "(expected make-ipinyou-data's log.txt)")  # fmt: skip
        return list(reader)


def _key(row: dict[str, str]) -> tuple[str, str, str, str]:
    return (row.get("slotwidth", ""), row.get("slotheight", ""), row.get("slotvisibility", ""),
            row.get("adexchange", ""))  # fmt: skip


def ctr_table(rows: list[dict[str, str]]) -> tuple[float, dict[tuple[str, ...], float]]:
    """The mean CTR and a smoothed CTR per (slot size, visibility, ad exchange)."""
    clicks = sum(int(r["click"] or 0) for r in rows)
    mean = clicks / len(rows) if rows else 0.0
    counts: dict[tuple[str, ...], list[int]] = {}
    for r in rows:
        c = counts.setdefault(_key(r), [0, 0])
        c[0] += int(r["click"] or 0)
        c[1] += 1
    table = {k: (c + _PRIOR_WEIGHT * mean) / (n + _PRIOR_WEIGHT) for k, (c, n) in counts.items()}
    return mean, table


def replay(
    rows: list[dict[str, str]],
    *,
    strategy: str,
    params: dict[str, Any],
    budget: float | None = None,
    fraction: float | None = None,
    train: list[dict[str, str]] | None = None,
    value_per_click: float = 1.0,
    seed: int = 1,
) -> dict[str, Any]:
    total_micros = sum(round(float(r["payprice"]) * 1_000_000) for r in rows)  # CPM micro-units
    if fraction is not None:
        budget_micros = round(total_micros * fraction)
    elif budget is not None:
        budget_micros = round(budget * 1000 * 1_000_000)
    else:
        budget_micros = total_micros
    mean, table = ctr_table(train if train is not None else rows)
    use_table = train is not None
    s = make_strategy(strategy, params)
    s.reset(seed)
    ctx = BidContext(value_per_click=value_per_click, cpc_goal=value_per_click)
    spent = bids = imps = clicks = 0
    for r in rows:
        pay = round(float(r["payprice"]) * 1_000_000)
        if budget_micros - spent < pay:
            continue
        ctx._pctr = table.get(_key(r), mean) if use_table else mean
        ctx.floor = float(r.get("slotprice") or 0.0)
        price = s.price(ctx)
        if price is None or not price > 0:
            continue
        bids += 1
        if round(price * 1_000_000) > pay:
            imps += 1
            spent += pay
            clicks += int(r["click"] or 0)
    money = spent / 1000 / 1_000_000
    return {
        "records": len(rows),
        "budget": budget_micros / 1000 / 1_000_000,
        "bids": bids,
        "impressions": imps,
        "clicks": clicks,
        "spend": round(money, 6),
        "ctr": round(clicks / imps, 6) if imps else None,
        "cpm": round(money * 1000 / imps, 6) if imps else None,
        "ecpc": round(money / clicks, 6) if clicks else None,
    }


def replay_file(path: Path, *, train: Path | None = None, **kwargs: Any) -> dict[str, Any]:
    rows = read_log(path)
    return replay(rows, train=read_log(train) if train else None, **kwargs)
