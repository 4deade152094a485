"""Benchmark 1 of the hot path: HTTP fan-out throughput with K DSP servers, against a bare fan-out.

For each K in --dsps (default 1, 3, 5, 10): K ``gavel dsp`` constant bidders, the bare aiohttp
fan-out proxy (bench/baseline_proxy.py: receive, forward to the K DSPs, keep the max, answer) and the
SSP twice, once per DSP client (``--transport aiohttp`` and ``--transport lean``). The same load
generator drives each in turn (baseline, aiohttp, lean, baseline, ...) and each side reports its
median; the ratios against the baseline of the same K are the figures that matter.

    .venv/bin/python -m bench.fanout_bench [--dsps 1,3,5,10] [--duration 5] [--repeats 2]
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from bench.procs import Processes
from bench.request import sample_request
from bench.runs import Options, _medians, _ratio, run_baseline, run_ssp

SIDES = ("baseline", "aiohttp", "lean")


def bench_k(k: int, body: Path, opts: Options, say: Any) -> dict[str, Any]:
    procs = Processes()
    try:
        dsps = []
        for i in range(k):
            args = ["dsp", "--host", "127.0.0.1", "--name", f"d{i}", "--strategy", "constant"]
            args += ["--param", f"price={1 + i / 10:.2f}", "--param", f"seat=d{i}"]
            dsps.append(procs.start(f"DSP d{i}", "gavel", *args))
        urls = [d.url("/openrtb2/bid") for d in dsps]
        proxy = procs.start(
            "bare fan-out", "bench.baseline_proxy", *[a for u in urls for a in ("--upstream", u)]
        )
        flags = [a for i, u in enumerate(urls) for a in ("--dsp", f"d{i}={u}")]
        ssps = {
            t: procs.start(
                f"SSP {t}",
                "gavel",
                "ssp",
                "--host",
                "127.0.0.1",
                "--seed",
                "1",
                "--transport",
                t,
                *flags,
            )
            for t in ("aiohttp", "lean")
        }
        pids = [d.pid for d in dsps]
        runs: dict[str, list[dict[str, Any]]] = {s: [] for s in SIDES}
        for r in range(opts.repeats):
            runs["baseline"].append(run_baseline(proxy, body, opts, pids))
            for t, ssp in ssps.items():
                runs[t].append(run_ssp(ssp, body, opts, pids))
            say(
                f"K={k} round {r + 1}/{opts.repeats}: "
                + ", ".join(f"{s} {runs[s][-1]['rps']:,.0f}/s" for s in SIDES)
            )
        med = {s: _medians(v) for s, v in runs.items()}
        return {
            "k": k,
            "medians": med,
            "ratio": {
                t: _ratio(med[t]["rps"], med["baseline"]["rps"]) for t in ("aiohttp", "lean")
            },
            "cpu_ratio": {
                t: _ratio(med[t]["server_cpu_us"], med["baseline"]["server_cpu_us"])
                for t in ("aiohttp", "lean")
            },
            "runs": runs,
        }
    finally:
        procs.stop_all()


def table(results: Sequence[dict[str, Any]]) -> str:
    rows = [
        f"{'K':>3} {'bare rps':>9} {'aiohttp rps':>12} {'lean rps':>9} {'aiohttp/bare':>13} {'lean/bare':>10} "
        f"{'CPU us/auction bare | aiohttp | lean':>37} {'p99 ms aiohttp | lean':>22} {'timeouts a|l':>13}"
    ]
    for r in results:
        m = r["medians"]
        rows.append(
            f"{r['k']:>3} {m['baseline']['rps']:>9,.0f} {m['aiohttp']['rps']:>12,.0f} {m['lean']['rps']:>9,.0f} "
            f"{r['ratio']['aiohttp']:>13.2f} {r['ratio']['lean']:>10.2f} "
            f"{m['baseline']['server_cpu_us']:>15,.0f} | {m['aiohttp']['server_cpu_us']:>7,.0f} | "
            f"{m['lean']['server_cpu_us']:>6,.0f}"
            f"{m['aiohttp']['server_p99_ms']:>14.1f} | {m['lean']['server_p99_ms']:>5.1f}"
            f"{m['aiohttp']['bidder_timeouts']:>8} | {m['lean']['bidder_timeouts']}"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fanout_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dsps", default="1,3,5,10", help="the K values, comma-separated (default 1,3,5,10)"
    )
    parser.add_argument(
        "--duration", type=float, default=5.0, help="measured seconds per run (default 5)"
    )
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="warm-up seconds per run (default 1)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=32, help="load generator connections (default 32)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="runs per side and K (default 2)")
    parser.add_argument("--json", metavar="FILE", help="also write every run as JSON")
    args = parser.parse_args(argv)
    try:
        ks = [int(x) for x in args.dsps.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--dsps takes comma-separated integers, not {args.dsps!r}")
    if not ks or min(ks) < 1:
        parser.error("--dsps needs at least one K >= 1")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    opts = Options(args.duration, args.concurrency, args.repeats, args.warmup, 0, "raw")

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    with tempfile.NamedTemporaryFile(suffix=".json") as fh:
        fh.write(orjson.dumps(sample_request()))
        fh.flush()
        results = [bench_k(k, Path(fh.name), opts, say) for k in ks]
    print(table(results))
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
