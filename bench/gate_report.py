"""The load gate's report (text) and its figures (JSON), from what bench/locustfile.py measured.

Pure functions over plain data, no Locust (the tests call them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from bench.loadgate import (
    Miss,
    Observed,
    ServerSnapshot,
    Thresholds,
    histogram_max,
    histogram_quantile,
    rounded_percentile,
    timeout_shares,
)

QUANTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))


def client_percentile(counts: Mapping[int, int], q: float) -> float | None:
    """Locust's percentile of ``{rounded ms: count}``; None without a request."""
    return float(rounded_percentile(counts, q)) if counts else None


def render_gate(
    o: Observed,
    counts: Mapping[int, int],
    server: ServerSnapshot | None,
    t: Thresholds,
    misses: Sequence[Miss],
    *,
    elapsed: float = 0.0,
    invalid: int = 0,
) -> str:
    """The report printed at the end of a load test: both sides' latency, timeouts, verdict."""
    rate = f" ({o.requests / elapsed:.1f}/s)" if elapsed > 0 else ""
    lines = [
        "",
        "== Gavel load gate ==",
        f"requests {o.requests}{rate}, failed {o.failures} ({o.fail_ratio * 100:.2f}%); "
        f"auctions {o.auction_requests}"
        + (f"; invalid OpenRTB requests {invalid} (400 expected)" if invalid else ""),
        "auction latency   client (Locust, whole ms < 100)   server (SSP histogram: guess (bucket])",
    ]
    buckets = server.buckets if server else ()
    for label, q in QUANTILES:
        est = histogram_quantile(buckets, q)
        lines.append(
            f"  {label:<15} {_ms(client_percentile(counts, q)):>32}   {est.ms() if est else '-'}"
        )
    top = histogram_max(buckets)
    recent = ""
    if o.server_recent_max_ms is not None:
        recent = f"; slowest of the last 4096 (/stats): {o.server_recent_max_ms:.2f} ms"
    lines.append(
        f"  {'max':<15} {_ms(o.client_max_ms, exact=True):>32}   "
        f"{'in ' + top.bucket() if top else '-'}{recent}"
    )
    if server is not None:
        shares = timeout_shares(server.outcomes)
        parts = [f"{name} {share * 100:.1f}%" for name, share in shares.items()]
        ratio = o.timeout_ratio
        lines.append(
            "bidder calls timed out (SSP): "
            + ("  ".join(parts) if parts else "no bidder called")
            + (f"  | all {ratio * 100:.2f}%" if ratio is not None else "")
        )
        shed, rejected = server.auctions.get("overload", 0.0), server.auctions.get("rejected", 0.0)
        lines.append(
            f"auctions shed for overload (204 at once) {shed:g}, rejected (400) {rejected:g}"
        )
    else:
        lines.append(f"server side: not read ({o.server_error})")
    checked = [f"{name} {value:g}" for name, value in t.items()]
    lines.append("thresholds: " + (", ".join(checked) if checked else "none"))
    if misses:
        lines.append(f"FAILED: {len(misses)} threshold(s) missed")
        lines += [f"  - {m.threshold}: {m.text}" for m in misses]
    else:
        lines.append("PASSED: every threshold met")
    return "\n".join(lines)


def _ms(value: float | None, *, exact: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.2f} ms" if exact else f"{value:g} ms"


def gate_json(
    o: Observed,
    counts: Mapping[int, int],
    server: ServerSnapshot | None,
    misses: Sequence[Miss],
) -> dict[str, Any]:
    """The gate's figures as one JSON-ready dict (``--gate-json``)."""
    data: dict[str, Any] = {"observed": asdict(o), "misses": [asdict(m) for m in misses]}
    data["client_p50_ms"] = client_percentile(counts, 0.5)
    if server is not None:
        for label, q in QUANTILES:
            est = histogram_quantile(server.buckets, q)
            data[f"server_{label}"] = asdict(est) if est else None
        top = histogram_max(server.buckets)
        data["server_max_bucket"] = asdict(top) if top else None
        data["timeout_shares"] = timeout_shares(server.outcomes)
        data["auctions"] = dict(server.auctions)
    return data
