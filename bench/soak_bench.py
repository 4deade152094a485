"""Benchmark 4, soak: N minutes at 50% load; does the SSP's memory or any queue keep growing?

The world: the SSP calling 4 DSPs that bid (constant prices 1.00-1.75; two of them listen to win
and loss notices, ``bench.soak_bidder``, so the notice queue carries real traffic) and one that
hangs on 5% of its requests for 2 s (late calls drain in the background). First a short closed
loop finds the saturation throughput; then an open loop (bench.loadgen ``--rate``) sends 50% of
it for ``--minutes`` (default 10), while every ``--interval`` seconds this samples:

- the SSP's resident memory (``VmRSS`` of /proc/<pid>/status),
- its ``/stats``: ``notice_queue`` (notices waiting), ``late_calls_draining`` (bidder calls past
  their deadline still running), ``in_flight`` (auctions), and its auction count;
- its ``/metrics``: notices sent and dropped.

Report: memory at the end of warm-up (the first ``--warmup-minutes``, default 10% of the run, at
least 30 s) and at the end (each the median of 3 samples), growth in between (target < 10%), and
the largest and final queue lengths against their bounds (``ssp.notice_queue`` 10,000 by default,
``exchange.max_late`` 1,024). Exit code 1 when a target is missed, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from bench.deadline_bench import Progress, loadgen, saturation, start_dsp, start_ssp
from bench.procs import Processes, Server, ServerFailed, exit_on_sigterm, get, get_json
from bench.report import machine
from bench.request import sample_request

NOTICE_QUEUE_BOUND = 10_000  # SspSettings.notice_queue
LATE_BOUND = 1024  # ExchangeSettings.max_late
GROWTH_TARGET = 0.10


def rss_kb(pid: int) -> int | None:
    """Resident memory of ``pid`` in kB (VmRSS), None when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def notices(metrics_text: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    for line in metrics_text.splitlines():
        if line.startswith("gavel_notices_total{"):
            labels, value = line.rsplit(" ", 1)
            result = labels.split('result="', 1)[1].split('"', 1)[0]
            totals[result] = totals.get(result, 0.0) + float(value)
    return totals


def sample(ssp: Server, t0: float) -> dict[str, Any]:
    stats = get_json(ssp.url("/stats"))
    sent = notices(get(ssp.url("/metrics")).decode())
    return {
        "t": round(time.monotonic() - t0, 1),
        "rss_kb": rss_kb(ssp.pid),
        "auctions": stats["auctions"],
        "notice_queue": stats["notice_queue"],
        "late_calls_draining": stats["late_calls_draining"],
        "in_flight": stats["in_flight"],
        "notices_sent": sent.get("sent", 0.0),
        "notices_dropped": sent.get("dropped", 0.0),
        "p99_ms": round(stats["latency_s"]["p99"] * 1000, 2),
    }


def analyse(samples: list[dict[str, Any]], warmup_s: float) -> dict[str, Any]:
    """Memory growth after warm-up and the queues' levels (pure: the tests call it).

    Memory: the median of 3 samples at the end of warm-up against the median of the last 3; and,
    to tell a leak from a bounded structure still filling up during the first minutes (the win
    book holds every unbilled win up to its capacity), the same over the second half alone.
    Queues: bounded when they never reach their bound and do not climb: the median of the second
    half at most 25% (or 50 entries) above the first half's (medians, not maxima: a shared
    machine stalls now and then, and a stall is a spike, not a trend).
    """
    after = [s for s in samples if s["t"] >= warmup_s and s["rss_kb"]]
    if len(after) < 6:
        return {"error": "too few samples after warm-up"}
    half = len(after) // 2

    def mb(kb: float) -> float:
        return round(kb / 1024, 1)

    start = statistics.median(s["rss_kb"] for s in after[:3])
    middle = statistics.median(s["rss_kb"] for s in after[half - 1 : half + 2])
    end = statistics.median(s["rss_kb"] for s in after[-3:])
    growth = (end - start) / start
    out: dict[str, Any] = {
        "rss_after_warmup_mb": mb(start),
        "rss_half_mb": mb(middle),
        "rss_end_mb": mb(end),
        "rss_peak_mb": mb(max(s["rss_kb"] for s in after)),
        "rss_growth": round(growth, 4),
        "rss_growth_second_half": round((end - middle) / middle, 4),
        "memory_ok": growth < GROWTH_TARGET,
    }
    for key, bound in (("notice_queue", NOTICE_QUEUE_BOUND), ("late_calls_draining", LATE_BOUND)):
        values = [s[key] for s in after]
        first, second = statistics.median(values[:half]), statistics.median(values[half:])
        out[key] = {
            "max": max(values),
            "end": values[-1],
            "median_first_half": first,
            "median_second_half": second,
            "bound": bound,
            "bounded": max(values) < bound and second <= max(1.25 * first, first + 50),
        }
    out["notices_dropped"] = samples[-1]["notices_dropped"] - samples[0]["notices_dropped"]
    out["notices_sent"] = samples[-1]["notices_sent"] - samples[0]["notices_sent"]
    out["queues_ok"] = out["notice_queue"]["bounded"] and out["late_calls_draining"]["bounded"]
    return out


class Sampler:
    """Samples the SSP every ``interval`` s in a thread and prints a progress line."""

    def __init__(self, ssp: Server, interval: float, total_s: float, warmup_s: float) -> None:
        self.ssp, self.interval, self.total_s, self.warmup_s = ssp, interval, total_s, warmup_s
        self.samples: list[dict[str, Any]] = []
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        self._take()
        while not self._stop.wait(self.interval):
            self._take()

    def _take(self) -> None:
        try:
            s = sample(self.ssp, self.t0)
        except (OSError, ValueError, KeyError):
            return
        prev = self.samples[-1] if self.samples else None
        self.samples.append(s)
        rate = (s["auctions"] - prev["auctions"]) / max(s["t"] - prev["t"], 1e-9) if prev else 0.0
        base = next((x["rss_kb"] for x in self.samples if x["t"] >= self.warmup_s), None)
        growth = (
            f"{(s['rss_kb'] - base) / base * 100:+5.1f}%" if base and s["rss_kb"] else "  (warm-up)"
        )
        print(
            f"[{s['t']:5.0f}s/{self.total_s:.0f}s] rss {(s['rss_kb'] or 0) / 1024:7.1f} MB {growth}"
            f"  auctions/s {rate:6.0f}  p99 {s['p99_ms']:6.1f} ms  notice queue {s['notice_queue']:5}"
            f"  late calls {s['late_calls_draining']:4}  in flight {s['in_flight']:4}"
            f"  notices dropped {s['notices_dropped']:.0f}",
            file=sys.stderr,
            flush=True,
        )


def render(results: dict[str, Any]) -> str:
    m, a = results["machine"], results["analysis"]
    lines = [
        f"Soak (benchmark 4), {results['date']}",
        f"machine: {m['cpu_model']}, {m['nproc']} CPUs, {m['python']}, load average at start "
        f"{m['loadavg_at_start']}, at end {m.get('loadavg_at_end', '-')}",
        f"saturation {results['saturation']['run_rps']:,.0f} auctions/s run; soak at "
        f"{results['share']:.0%} = {results['rate']:,.0f}/s for {results['minutes']:g} min "
        f"(warm-up {results['warmup_s']:.0f} s), {len(results['samples'])} samples",
        f"load generator: {results['client']['rps']:,.1f} answers/s, {results['client']['errors']} "
        f"errors, {results['client']['dropped']} dropped, p99 {results['client']['p99_ms']:.1f} ms",
    ]
    if "error" in a:
        return "\n".join([*lines, f"analysis: {a['error']}"])
    lines += [
        f"SSP resident memory: {a['rss_after_warmup_mb']} MB after warm-up -> {a['rss_half_mb']} MB "
        f"half way -> {a['rss_end_mb']} MB at the end (peak {a['rss_peak_mb']} MB): growth "
        f"{a['rss_growth'] * 100:+.1f}% (target < {GROWTH_TARGET:.0%}): "
        f"{'met' if a['memory_ok'] else 'MISSED'}; over the second half alone "
        f"{a['rss_growth_second_half'] * 100:+.1f}%",
    ]
    for key, label in (("notice_queue", "notice queue"), ("late_calls_draining", "late calls")):
        q = a[key]
        lines.append(
            f"{label}: max {q['max']:,}, median {q['median_first_half']:g} in the first half and "
            f"{q['median_second_half']:g} in the second, at the end {q['end']}, bound "
            f"{q['bound']:,}: {'bounded' if q['bounded'] else 'NOT bounded'}"
        )
    lines.append(f"notices sent {a['notices_sent']:,.0f}, dropped {a['notices_dropped']:,.0f}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.soak_bench",
        description=(__doc__ or "").split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--minutes", type=float, default=10.0, help="soak length (default 10)")
    p.add_argument("--share", type=float, default=0.5, help="share of saturation (default 0.5)")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between samples (5)")
    p.add_argument("--warmup-minutes", type=float, help="warm-up (default 10%%, at least 0.5)")
    p.add_argument(
        "--concurrency",
        type=lambda t: [int(x) for x in t.split(",")],
        default=[32, 64, 128],
        help="connections of the saturation loops, the best counts (default 32,64,128)",
    )
    p.add_argument("--ssp-arg", action="append", default=[], help="extra `gavel ssp` argument")
    p.add_argument("--json", metavar="FILE", help="also write every sample and figure to FILE")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.minutes <= 0 or not 0 < args.share <= 1 or args.interval <= 0:
        print("soak_bench: minutes > 0, share in (0, 1], interval > 0", file=sys.stderr)
        return 2
    total_s = args.minutes * 60
    warmup_s = (
        args.warmup_minutes * 60 if args.warmup_minutes is not None else max(30.0, total_s / 10)
    )
    if warmup_s >= total_s:
        print("soak_bench: the warm-up must be shorter than the run", file=sys.stderr)
        return 2
    progress = Progress()
    results: dict[str, Any] = {
        "command": " ".join(["python -m bench.soak_bench", *(argv or sys.argv[1:])]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": machine(),
        "minutes": args.minutes,
        "share": args.share,
        "warmup_s": warmup_s,
    }
    exit_on_sigterm()  # so that the finally below stops the servers
    procs = Processes()
    with tempfile.TemporaryDirectory(prefix="gavel-soak-") as tmp:
        body = Path(tmp) / "bid_request.json"
        body.write_bytes(orjson.dumps(sample_request()))
        try:
            progress("starting 5 DSPs and the SSP")
            dsps = []
            for i, price in enumerate((1.0, 1.25, 1.5, 1.75)):
                strategy = "bench.soak_bidder:NoticedBidder" if i < 2 else "constant"
                dsps.append(
                    start_dsp(procs, f"d{i}", "--strategy", strategy, "--param", f"price={price}")
                )
            flaky = ["--strategy", "constant", "--param", "price=0.9"]
            flaky += ["--hang-rate", "0.05", "--hang-s", "2"]
            dsps.append(start_dsp(procs, "flaky", *flaky))
            ssp = start_ssp(procs, "SSP", dsps, *args.ssp_arg)
            url = ssp.url("/openrtb2/auction")
            sat = saturation(ssp, body, concurrencies=args.concurrency, duration=5.0)
            results["saturation"] = sat
            rate = args.share * sat["run_rps"]
            results["rate"] = round(rate, 1)
            progress(
                f"saturation {sat['run_rps']:,.0f} auctions/s run ({sat['shed']:,} shed); "
                f"soaking at {rate:,.0f}/s"
            )
            load = ["--rate", f"{rate:.1f}", "--duration", f"{total_s:g}", "--warmup", "0"]
            with Sampler(ssp, args.interval, total_s, warmup_s) as sampler:
                client = loadgen(url, body, *load, timeout=total_s + 60)
            results["client"] = {k: v for k, v in client.items() if k != "error_statuses"}
            results["samples"] = sampler.samples
            results["analysis"] = analyse(sampler.samples, warmup_s)
        except (ServerFailed, RuntimeError) as exc:
            print(f"soak_bench: {exc}", file=sys.stderr)
            return 1
        finally:
            procs.stop_all()
    results["machine"]["loadavg_at_end"] = machine()["loadavg_at_start"]
    print(render(results))
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    a = results["analysis"]
    return 0 if a.get("memory_ok") and a.get("queues_ok") else 1


if __name__ == "__main__":
    raise SystemExit(main())
