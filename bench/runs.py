"""The HTTP runs: one load generator run against a baseline or the SSP, and what the servers did.

Around each run the servers' CPU (from /proc) and counters (``/stats``, ``/metrics``) are read, so
that each run reports, next to the client's figures, the server CPU per request, the SSP's own
latency percentiles, bidder timeouts and errors, and the notices it sent, queued or dropped.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.procs import ROOT, Server, cpu_seconds, get, get_json

DRAIN_WAIT_S = 15.0  # the most we wait for the SSP's notice queue to empty between runs


@dataclass(frozen=True, slots=True)
class Options:
    duration: float
    concurrency: int
    repeats: int
    warmup: float
    auctions: int
    client: str


def loadgen(url: str, body_file: Path, opts: Options) -> dict[str, Any]:
    """One run of ``bench.loadgen`` against ``url`` (a child process, stopped by PID if we fail)."""
    cmd = [
        sys.executable,
        "-m",
        "bench.loadgen",
        url,
        "--body-file",
        str(body_file),
        "--concurrency",
        str(opts.concurrency),
        "--duration",
        str(opts.duration),
        "--warmup",
        str(opts.warmup),
        "--client",
        opts.client,
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=opts.warmup + opts.duration + 30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen failed ({proc.returncode}): {err.decode()[-2000:]}")
    return dict(orjson.loads(out))


def _cpu(pids: Sequence[int]) -> float:
    return sum(cpu_seconds(p) or 0.0 for p in pids)


def _notices(server: Server) -> dict[str, float]:
    """The SSP's notice counters, summed over kinds: {"sent": n, "dropped": n, ...}."""
    totals: dict[str, float] = {}
    for line in get(server.url("/metrics")).decode().splitlines():
        if line.startswith("gavel_notices_total{"):
            labels, value = line.rsplit(" ", 1)
            result = labels.split('result="', 1)[1].split('"', 1)[0]
            totals[result] = totals.get(result, 0.0) + float(value)
    return totals


def run_baseline(
    proxy: Server, body: Path, opts: Options, upstream_pids: Sequence[int]
) -> dict[str, Any]:
    before = get_json(proxy.url("/stats"))
    cpu0, up0 = _cpu([proxy.pid]), _cpu(upstream_pids)
    result = loadgen(proxy.url("/openrtb2/auction"), body, opts)
    cpu1, up1 = _cpu([proxy.pid]), _cpu(upstream_pids)
    after = get_json(proxy.url("/stats"))
    served = max(1, after["requests"] - before["requests"])
    result["server_cpu_us"] = round((cpu1 - cpu0) / served * 1e6, 1)
    if upstream_pids:
        result["dsp_cpu_us"] = round((up1 - up0) / served * 1e6, 1)
    result["upstream_failures"] = after["upstream_errors"] - before["upstream_errors"]
    return result


def run_ssp(ssp: Server, body: Path, opts: Options, upstream_pids: Sequence[int]) -> dict[str, Any]:
    before, notices0 = get_json(ssp.url("/stats")), _notices(ssp)
    cpu0, up0 = _cpu([ssp.pid]), _cpu(upstream_pids)
    result = loadgen(ssp.url("/openrtb2/auction"), body, opts)
    cpu1, up1 = _cpu([ssp.pid]), _cpu(upstream_pids)
    after, notices1 = get_json(ssp.url("/stats")), _notices(ssp)
    auctions = max(1, after["auctions"] - before["auctions"])
    result["server_cpu_us"] = round((cpu1 - cpu0) / auctions * 1e6, 1)
    if upstream_pids:
        result["dsp_cpu_us"] = round((up1 - up0) / auctions * 1e6, 1)
    latency = after["latency_s"]  # the most recent auctions (the end of this run)
    result["server_p50_ms"] = round(latency["p50"] * 1000, 3)
    result["server_p99_ms"] = round(latency["p99"] * 1000, 3)

    def delta(field: str) -> int:
        return sum(
            b[field] - before["bidders"].get(name, {}).get(field, 0)
            for name, b in after["bidders"].items()
        )

    result["bidder_timeouts"] = delta("timeouts")
    result["bidder_errors"] = delta("errors") + delta("invalid")
    result["overload"] = after["overload"] - before["overload"]
    result["fill_rate"] = round((after["filled"] - before["filled"]) / auctions, 4)
    result["notices"] = {k: notices1.get(k, 0) - notices0.get(k, 0) for k in sorted(notices1)}
    result["notice_queue_at_end"] = after["notice_queue"]
    result["drain_s"] = _wait_drained(ssp)
    # What the run left behind (queued notices, late calls) is work it caused: count it too.
    drained = get_json(ssp.url("/stats"))
    result["server_cpu_drained_us"] = round((_cpu([ssp.pid]) - cpu0) / auctions * 1e6, 1)
    if upstream_pids:
        result["dsp_cpu_drained_us"] = round((_cpu(upstream_pids) - up0) / auctions * 1e6, 1)
    result["notices_sent_after_run"] = _notices(ssp).get("sent", 0) - notices1.get("sent", 0)
    result["auctions_after_run"] = drained["auctions"] - after["auctions"]
    return result


def _wait_drained(ssp: Server) -> float:
    """Wait until the SSP has no notices queued nor late calls draining (so that the next run
    does not share the CPU with them); the seconds it took."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < DRAIN_WAIT_S:
        stats = get_json(ssp.url("/stats"))
        if not stats["notice_queue"] and not stats["late_calls_draining"]:
            break
        time.sleep(0.1)
    return round(time.monotonic() - t0, 2)


def compare(
    label: str,
    run_base: Callable[[], dict[str, Any]],
    run_gavel: Callable[[], dict[str, Any]],
    repeats: int,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Alternate baseline and Gavel runs; medians of each side and the ratio of the rps medians."""
    base: list[dict[str, Any]] = []
    gavel: list[dict[str, Any]] = []
    for r in range(repeats):
        base.append(run_base())
        progress(f"{label} round {r + 1}/{repeats}: baseline {base[-1]['rps']:,.0f} req/s")
        gavel.append(run_gavel())
        progress(f"{label} round {r + 1}/{repeats}: gavel    {gavel[-1]['rps']:,.0f} auctions/s")
    b, g = _medians(base), _medians(gavel)
    return {
        "baseline": b,
        "gavel": g,
        "ratio": _ratio(g["rps"], b["rps"]),
        # CPU time per request is steadier than throughput on a shared machine
        "cpu_ratio": _ratio(g["server_cpu_us"], b["server_cpu_us"]),
        "cpu_ratio_drained": _ratio(g["server_cpu_drained_us"], b["server_cpu_us"]),
        "runs": {"baseline": base, "gavel": gavel},
    }


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else 0.0


# Counters reported as totals over the runs; every other figure is a median.
SUMMED = frozenset({"errors", "bidder_timeouts", "bidder_errors", "overload", "upstream_failures"})


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every numeric figure over ``runs``; totals for the counters in SUMMED."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        values = [r[key] for r in runs]
        out[key] = sum(values) if key in SUMMED else statistics.median(values)
    if "notices" in runs[0]:
        kinds = {k for r in runs for k in r["notices"]}
        out["notices"] = {k: sum(r["notices"].get(k, 0) for r in runs) for k in sorted(kinds)}
    return out
