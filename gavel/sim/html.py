"""One self-contained HTML report: the tables and the plots, images embedded as base64 data URIs,
no external resources (it opens offline, from an e-mail attachment)."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gavel.sim.report import fmt, verdict

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;font-size:12px;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px;
text-align:right}th{background:#f0f0f0}td:first-child,td:nth-child(2){text-align:left}img{max-width:100%}"""
_VARIANT_COLS = ("variant", "dsp", "runs", "auctions", "bids", "wins", "win_rate", "impressions",
                 "clicks", "conversions", "spend", "cpm", "ctr", "ecpc", "cpa", "roi", "timeouts",
                 "exp_clicks", "exp_conversions", "exp_cpa", "exp_roi")  # fmt: skip
_COMPARE_COLS = ("variant", "baseline", "figure", "runs", "value", "baseline_value", "diff",
                 "change", "separate")  # fmt: skip
_MARKET_COLS = ("variant", "runs", "auctions", "fill_rate", "avg_clearing_price", "spend",
                "publisher_revenue", "impressions", "clicks", "conversions", "welfare")  # fmt: skip


def _cell(row: dict[str, Any], col: str) -> str:
    value = fmt(row.get(col))
    ci = row.get(f"{col}_ci")
    if ci:
        value += f" ± {fmt(ci)}"
    return html.escape(value)


def _table(rows: Sequence[dict[str, Any]], cols: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(r, c)}</td>" for c in cols) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def write_html(path: Path, doc: dict[str, Any], images: Sequence[Path], *, note: str = "") -> Path:
    title = html.escape(str(doc.get("experiment", "Gavel report")))
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>",
             f"<style>{_CSS}</style></head><body><h1>{title}</h1>"]  # fmt: skip
    if doc.get("description"):
        parts.append(f"<p>{html.escape(doc['description'])}</p>")
    if note:
        parts.append(f"<p><em>{html.escape(note)}</em></p>")
    comps = doc.get("comparisons") or []
    if comps:
        key = comps[0]["figure"]
        parts.append(f"<h2>Answer: {html.escape(key)}, paired by seed</h2><ul>")
        parts.extend(f"<li>{html.escape(verdict(c))}</li>" for c in comps if c["figure"] == key)
        parts.append("</ul><h3>Each pair of variants (same seed, same world)</h3>")
        parts.append(_table(comps, _COMPARE_COLS))
    parts.append("<h2>Market</h2>" + _table(doc["market"], _MARKET_COLS))
    parts.append("<h2>Per variant and DSP (mean ± 95% CI over seeds)</h2>")
    parts.append(_table(doc["variants"], _VARIANT_COLS))
    parts.append("<h2>Plots</h2>")
    for img in images:
        data = base64.b64encode(img.read_bytes()).decode()
        alt = html.escape(img.stem.replace("_", " "))
        parts.append(f"<h3>{alt}</h3><img alt='{alt}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>\n")
    path.write_text("".join(parts))
    return path
