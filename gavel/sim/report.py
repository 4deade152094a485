"""The result files of a simulation: CSV and JSON per run and per variant, with confidence intervals.

Everything written here depends only on the experiment and its seeds (sorted keys, fixed float
formatting), so the same seed gives the same files byte for byte; wall-clock figures go to
``run-info.json`` only.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from gavel.sim.runner import RunResult

DSP_FIELDS = ("auctions", "bids", "timeouts", "errors", "wins", "win_rate", "impressions",
              "clicks", "conversions", "spend", "won_cost", "cpm", "ctr", "ecpc", "cpa",
              "conversion_value", "roi", "click_value")  # fmt: skip
MARKET_FIELDS = ("auctions", "imps", "filled", "fill_rate", "avg_clearing_price", "spend",
                 "publisher_revenue", "exchange_fee", "impressions", "clicks", "conversions",
                 "welfare")  # fmt: skip
# Student's t, two-sided 95%, by degrees of freedom (1..30); normal beyond.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


def fmt(x: Any) -> str:
    """Fixed formatting: integers as they are, floats with 6 significant digits, None empty."""
    if x is None:
        return ""
    if isinstance(x, bool):
        return "1" if x else "0"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return "" if math.isnan(x) else f"{x:.6g}"
    return str(x)


def mean_ci(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and the half-width of its 95% confidence interval (None with fewer than 2 values)."""
    xs = [v for v in values if v is not None]
    if not xs:
        return None, None
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, None
    var = sum((x - m) ** 2 for x in xs) / (len(xs) - 1)
    t = _T95[len(xs) - 2] if len(xs) - 1 <= len(_T95) else 1.96
    return m, t * math.sqrt(var / len(xs))


def run_rows(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    rows = []
    for r in results:
        for d in r.market.dsps.values():
            f = d.figures()
            rows.append({"variant": r.label, "fraction": r.fraction, "seed": r.seed,
                         "budget": r.budget, "path": r.path, **f})  # fmt: skip
    return rows


def market_rows(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    return [
        {"variant": r.label, "seed": r.seed, "path": r.path, **r.market.figures()} for r in results
    ]


def aggregate(
    rows: Sequence[dict[str, Any]], keys: Sequence[str], fields: Sequence[str]
) -> list[dict[str, Any]]:
    """Per group of ``keys``: each field's mean and 95% CI half-width over the seeds."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    out = []
    for key, members in groups.items():
        agg: dict[str, Any] = dict(zip(keys, key, strict=True))
        agg["runs"] = len(members)
        for f in fields:
            m, ci = mean_ci([row[f] for row in members])
            agg[f] = m
            agg[f"{f}_ci"] = ci
        out.append(agg)
    return out


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        path.write_text("")
        return
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = list(rows[0])
    w.writerow(cols)
    for row in rows:
        w.writerow([fmt(row.get(c)) for c in cols])
    path.write_text(buf.getvalue())


def _round(obj: Any) -> Any:
    if isinstance(obj, float):
        return float(f"{obj:.9g}")
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_round(v) for v in obj]
    return obj


def write_json(path: Path, obj: Any) -> None:
    path.write_bytes(
        orjson.dumps(_round(obj), option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
    )


def tables(results: Sequence[RunResult]) -> dict[str, list[dict[str, Any]]]:
    runs = run_rows(results)
    market = market_rows(results)
    return {
        "runs": runs,
        "market_runs": market,
        "variants": aggregate(runs, ("variant", "dsp"), DSP_FIELDS),
        "market": aggregate(market, ("variant",), MARKET_FIELDS),
    }


def write_results(
    out: Path, name: str, description: str, results: Sequence[RunResult]
) -> dict[str, Any]:
    """runs.csv, variants.csv, market.csv, market_runs.csv and results.json (with the series)."""
    out.mkdir(parents=True, exist_ok=True)
    t = tables(results)
    write_csv(out / "runs.csv", t["runs"])
    write_csv(out / "market_runs.csv", t["market_runs"])
    write_csv(out / "variants.csv", t["variants"])
    write_csv(out / "market.csv", t["market"])
    series = [{"variant": r.label, "seed": r.seed, **r.market.series()} for r in results]
    doc = {"experiment": name, "description": description, **t, "series": series}
    write_json(out / "results.json", doc)
    return doc
