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

from gavel.sim.metrics import DSP_FIELDS
from gavel.sim.runner import RunResult

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


def comparisons(
    rows: Sequence[dict[str, Any]], *, focus: str, fields: Sequence[str]
) -> list[dict[str, Any]]:
    """Each pair of variants (a later one against an earlier one, in file order), for DSP
    ``focus``, paired by seed.

    Runs of the same seed share their world and traffic, so the seed-to-seed variation of a
    figure (one world has more shoe shoppers than another) is common to the variants: the paired
    difference ``variant - baseline`` has a far tighter interval than either variant's mean. Per
    figure: both means with their 95% CIs, the mean paired difference and relative change
    (``variant / baseline - 1``) with theirs, over the seeds where both have the figure;
    ``separate`` says whether the difference's interval excludes 0, ``overlap`` whether the two
    variants' own intervals overlap.
    """
    by_run = {(r["variant"], r["seed"]): r for r in rows if r["dsp"] == focus}
    labels = list(dict.fromkeys(r["variant"] for r in rows))
    out: list[dict[str, Any]] = []
    if len(labels) < 2:
        return out
    seeds = sorted({seed for _, seed in by_run})
    pairs_of_labels = [(a, b) for i, b in enumerate(labels) for a in labels[i + 1 :]]
    for label, first in sorted(pairs_of_labels, key=lambda p: labels.index(p[1])):
        for f in fields:
            pairs = [(by_run[(label, s)][f], by_run[(first, s)][f]) for s in seeds
                     if (label, s) in by_run and (first, s) in by_run]  # fmt: skip
            pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
            value, value_ci = mean_ci([a for a, _ in pairs])
            base, base_ci = mean_ci([b for _, b in pairs])
            diff, diff_ci = mean_ci([a - b for a, b in pairs])
            change, change_ci = mean_ci([a / b - 1 for a, b in pairs if b])
            separate = None if diff is None or diff_ci is None else abs(diff) > diff_ci
            overlap = None
            if None not in (value, value_ci, base, base_ci):
                overlap = abs(value - base) <= value_ci + base_ci  # type: ignore[operator]
            out.append({"variant": label, "baseline": first, "dsp": focus, "figure": f,
                        "runs": len(pairs), "value": value, "value_ci": value_ci,
                        "baseline_value": base, "baseline_value_ci": base_ci, "diff": diff,
                        "diff_ci": diff_ci, "change": change, "change_ci": change_ci,
                        "separate": separate, "overlap": overlap})  # fmt: skip
    return out


def verdict(c: dict[str, Any]) -> str:
    """One comparison (a row of :func:`comparisons`) in a sentence."""
    f, n = c["figure"], c["runs"]
    head = (f"{c['variant']} vs {c['baseline']}, {c['dsp']}'s {f}: {fmt(c['value'])} vs "
            f"{fmt(c['baseline_value'])} (means of {n} seeds)")  # fmt: skip
    if c["separate"] is None:
        return f"{head}; too few seeds for an interval (use --runs 3 or more)."
    change = ""
    if c["change"] is not None and c["change_ci"] is not None:
        change = f" ({100 * c['change']:+.0f}% ± {100 * c['change_ci']:.0f}%)"
    diff = f"the paired difference is {fmt(c['diff'])} ± {fmt(c['diff_ci'])}{change}"
    if not c["separate"]:
        return (f"{head}; {diff}: its 95% interval includes 0, so at {n} seeds this does NOT "
                f"tell the variants apart (more --runs, users or days would).")  # fmt: skip
    why = ""
    if c["overlap"]:
        why = (" The variants' own intervals overlap: they include the differences between the"
               " seeds' worlds, which the paired difference (same seed, same world) removes.")  # fmt: skip
    return f"{head}; {diff}: its 95% interval excludes 0, a clear difference.{why}"


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


def tables(
    results: Sequence[RunResult], *, focus: str = "", compare: Sequence[str] = ()
) -> dict[str, list[dict[str, Any]]]:
    runs = run_rows(results)
    market = market_rows(results)
    out = {
        "runs": runs,
        "market_runs": market,
        "variants": aggregate(runs, ("variant", "dsp"), DSP_FIELDS),
        "market": aggregate(market, ("variant",), MARKET_FIELDS),
    }
    if compare:
        out["comparisons"] = comparisons(runs, focus=focus, fields=compare)
    return out


def write_results(
    out: Path,
    name: str,
    description: str,
    results: Sequence[RunResult],
    *,
    focus: str = "",
    compare: Sequence[str] = (),
) -> dict[str, Any]:
    """runs.csv, variants.csv, market.csv, market_runs.csv, results.json (with the series) and,
    when ``compare`` names figures, comparisons.csv (each variant against the first, paired by
    seed, for the ``focus`` DSP)."""
    out.mkdir(parents=True, exist_ok=True)
    t = tables(results, focus=focus, compare=compare)
    write_csv(out / "runs.csv", t["runs"])
    write_csv(out / "market_runs.csv", t["market_runs"])
    write_csv(out / "variants.csv", t["variants"])
    write_csv(out / "market.csv", t["market"])
    if "comparisons" in t:
        write_csv(out / "comparisons.csv", t["comparisons"])
    series = [{"variant": r.label, "seed": r.seed, **r.market.series()} for r in results]
    doc = {"experiment": name, "description": description, **t, "series": series}
    write_json(out / "results.json", doc)
    return doc
