"""The results table of ``bench.auction_bench`` and a description of the machine it ran on."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """CPU model, core counts, Python and the load average at the start (the machine is shared)."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 0
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "cpu_model": model,
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "loadavg_at_start": load,
    }


def _n(value: float | None, fmt: str = ",.0f") -> str:
    return "-" if value is None else format(value, fmt)


def _pair(d: dict[str, Any], a: str, b: str, fmt: str = ".2f") -> str:
    if a not in d:
        return "-"
    return f"{_n(d.get(a), fmt)} / {_n(d.get(b), fmt)}"


def render(results: dict[str, Any]) -> str:
    m, o = results["machine"], results["options"]
    lines = [
        f"Gavel auction benchmark, {results['date']}",
        f"machine: {m['cpu_model']}, {m['nproc']} CPUs, {m['python']}, "
        f"load average at start {m['loadavg_at_start']}, at end {m.get('loadavg_at_end', '-')}",
        f"HTTP runs: {o['duration_s']:g} s measured after {o['warmup_s']:g} s warm-up, "
        f"{o['repeats']} per side alternating, {o['concurrency']} connections, "
        f"{o['client']} client; medians",
        "",
        f"{'figure':<50}{'bare baseline':>15}{'gavel':>12}   gavel/baseline",
    ]
    a = results.get("a_inprocess_cpu")
    if a:
        lines.append(
            f"{'(a)  CPU per auction, 5 in-process bidders':<50}"
            f"{a['baseline_us']:>12.1f} us{a['gavel_us']:>9.1f} us   "
            f"{a['ratio']:.2f}x the CPU (+{a['overhead_us']:.1f} us)"
        )
    http = [
        ("a_inprocess_http", "(a') auctions/s over HTTP, 5 in-process bidders"),
        ("b_http", "(b)  auctions/s over HTTP, 5 DSP servers"),
    ]
    for key, label in http:
        r = results.get(key)
        if r:
            lines.append(
                f"{label:<50}{r['baseline']['rps']:>15,.0f}{r['gavel']['rps']:>12,.0f}"
                f"   {r['ratio']:.2f}"
            )
    cpu_rows = [
        ("a_inprocess_http", "(a') server CPU per auction over HTTP"),
        ("b_http", "(b)  server CPU per auction over HTTP"),
    ]
    for key, label in cpu_rows:
        r = results.get(key)
        if r:
            b, g = r["baseline"]["server_cpu_us"], r["gavel"]["server_cpu_us"]
            drained = r["gavel"]["server_cpu_drained_us"]
            extra = ""
            if drained > g * 1.02:
                extra = f" ({r['cpu_ratio_drained']:.2f}x with the notices sent after the run)"
            lines.append(
                f"{label:<50}{b:>12,.0f} us{g:>9,.0f} us   {r['cpu_ratio']:.2f}x the CPU{extra}"
            )
    shown = [(k, label) for k, label in http if k in results]
    if not shown:
        return "\n".join(lines)

    cols: list[tuple[str, dict[str, Any]]] = []
    for key, _ in shown:
        tag = "(a')" if key == "a_inprocess_http" else "(b)"
        cols.append((f"{tag} baseline", results[key]["baseline"]))
        cols.append((f"{tag} gavel", results[key]["gavel"]))
    rows: list[tuple[str, Any]] = [
        ("requests/s", lambda d: _n(d.get("rps"))),
        ("client p50 / p99 ms", lambda d: _pair(d, "p50_ms", "p99_ms")),
        ("server-side p50 / p99 ms", lambda d: _pair(d, "server_p50_ms", "server_p99_ms", ".3f")),
        ("server CPU per request, us", lambda d: _n(d.get("server_cpu_us"))),
        ("  incl. work left after the run", lambda d: _n(d.get("server_cpu_drained_us"))),
        ("DSP CPU per request (5 DSPs), us", lambda d: _n(d.get("dsp_cpu_us"))),
        ("  incl. work left after the run", lambda d: _n(d.get("dsp_cpu_drained_us"))),
        ("loadgen CPU, s", lambda d: _n(d.get("cpu_s"), ".1f")),
        ("errors (non-200/204), total", lambda d: _n(d.get("errors"))),
        ("upstream timeouts+errors, total", lambda d: _n(d.get("upstream_failures"))),
        ("bidder timeouts, total", lambda d: _n(d.get("bidder_timeouts"))),
        ("bidder errors+invalid, total", lambda d: _n(d.get("bidder_errors"))),
        ("overload 204s, total", lambda d: _n(d.get("overload"))),
        ("fill rate", lambda d: _n(d.get("fill_rate"), ".3f")),
        (
            "notices sent / dropped, total",
            lambda d: (
                f"{_n(d['notices'].get('sent'))} / {_n(d['notices'].get('dropped'))}"
                if "notices" in d
                else "-"
            ),
        ),
        ("notices queued at the end of a run", lambda d: _n(d.get("notice_queue_at_end"))),
        ("notice drain after a run, s", lambda d: _n(d.get("drain_s"), ".1f")),
    ]
    width = 19
    lines += ["", f"{'HTTP details (medians)':<34}" + "".join(f"{c:>{width}}" for c, _ in cols)]
    for title, cell in rows:
        lines.append(f"{title:<34}" + "".join(f"{cell(d):>{width}}" for _, d in cols))
    return "\n".join(lines)
