"""The auction benchmark: Gavel next to a bare baseline, measured in the same run, as a ratio.

Three figures, each against the least that could do the same job:

(a)  CPU per auction with 5 in-process bidders: Exchange.auction on a parsed request, against
     calling the 5 bidders' bid() and taking the highest price (same process, same loop).
(a') auctions/s over HTTP with those 5 in-process bidders: the SSP app (bench.inprocess_ssp)
     against a bare aiohttp handler that parses the JSON body and answers.
(b)  auctions/s over HTTP with 5 DSP servers (gavel dsp): the SSP (gavel ssp) against the
     bare aiohttp 5-way fan-out of bench.baseline_proxy.

HTTP figures come from bench.loadgen (its own process, closed loop); baseline and Gavel runs
alternate and the median of each is reported, since the machine is shared and noisy.
Ratios: (a) is Gavel's CPU over the baseline's (1.0 = no overhead); (a') and (b) are Gavel's
auctions/s over the baseline's requests/s (1.0 = as fast as bare aiohttp).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from bench.cpu import bench_cpu
from bench.procs import Processes, ServerFailed, exit_on_sigterm
from bench.report import machine, render
from bench.request import sample_request
from bench.runs import Options, compare, run_baseline, run_ssp

DSP_PRICES = (1.0, 1.25, 1.5, 1.75, 2.0)


class Progress:
    """One line per phase on stderr, with the time since the start."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:5.1f}s] {text}", file=sys.stderr, flush=True)


def bench_inprocess_http(
    procs: Processes, body: Path, opts: Options, progress: Progress
) -> dict[str, Any]:
    """(a'): the bare intake against the SSP app with 5 in-process bidders."""
    progress("(a') starting the bare intake and the SSP with 5 in-process bidders")
    intake = procs.start("bare intake", "bench.baseline_proxy")
    ssp = procs.start("SSP (in-process bidders)", "bench.inprocess_ssp", "--bidders", "5")
    return compare(
        "(a')",
        lambda: run_baseline(intake, body, opts, ()),
        lambda: run_ssp(ssp, body, opts, ()),
        opts.repeats,
        progress,
    )


def bench_http(procs: Processes, body: Path, opts: Options, progress: Progress) -> dict[str, Any]:
    """(b): the bare fan-out against the SSP, both calling the same 5 DSP servers."""
    progress(f"(b) starting {len(DSP_PRICES)} DSP servers, the bare fan-out and the SSP")
    dsps = []
    for i, price in enumerate(DSP_PRICES):
        args = ["dsp", "--host", "127.0.0.1", "--name", f"d{i}", "--strategy", "constant"]
        args += ["--param", f"price={price}", "--param", f"seat=d{i}"]
        dsps.append(procs.start(f"DSP d{i}", "gavel", *args))
    urls = [d.url("/openrtb2/bid") for d in dsps]
    upstreams = [a for url in urls for a in ("--upstream", url)]
    proxy = procs.start("bare fan-out", "bench.baseline_proxy", *upstreams)
    dsp_flags = [a for i, url in enumerate(urls) for a in ("--dsp", f"d{i}={url}")]
    ssp = procs.start("SSP", "gavel", "ssp", "--host", "127.0.0.1", "--seed", "1", *dsp_flags)
    pids = [d.pid for d in dsps]
    return compare(
        "(b)",
        lambda: run_baseline(proxy, body, opts, pids),
        lambda: run_ssp(ssp, body, opts, pids),
        opts.repeats,
        progress,
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.auction_bench",
        description=(__doc__ or "").split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="The table goes to stdout, one progress line per phase to stderr. A default run "
        "takes about 2.5 minutes.\nexample: make bench ARGS='--only http --duration 5 --repeats 1'",
    )
    p.add_argument(
        "--duration", type=float, default=8.0, help="measured seconds per HTTP run (default 8)"
    )
    p.add_argument(
        "--warmup", type=float, default=1.0, help="load before each measured run, s (default 1)"
    )
    p.add_argument(
        "--concurrency", type=int, default=32, help="load generator connections (default 32)"
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs of each side, alternating baseline and Gavel; medians reported (default 3)",
    )
    p.add_argument(
        "--auctions",
        type=int,
        default=20_000,
        help="auctions per round of the in-process CPU figure (a) (default 20000)",
    )
    p.add_argument(
        "--only",
        choices=["inprocess", "http"],
        help="inprocess: (a) and (a') only; http: (b) only (default: all three)",
    )
    p.add_argument(
        "--client",
        choices=["raw", "aiohttp"],
        default="raw",
        help="load generator client: raw asyncio.Protocol (default, ~25 us/request) or aiohttp "
        "(~130 us/request, which takes CPU from the servers on a small machine)",
    )
    p.add_argument("--json", metavar="FILE", help="also write every figure and run to FILE")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.duration <= 0 or args.concurrency < 1 or args.repeats < 1 or args.auctions < 1:
        print(
            "auction_bench: duration, concurrency, repeats, auctions must be > 0", file=sys.stderr
        )
        return 2
    opts = Options(
        args.duration, args.concurrency, args.repeats, args.warmup, args.auctions, args.client
    )
    progress = Progress()
    results: dict[str, Any] = {
        "command": " ".join(["python -m bench.auction_bench", *(argv or sys.argv[1:])]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": machine(),
        "options": {
            "duration_s": opts.duration,
            "warmup_s": opts.warmup,
            "concurrency": opts.concurrency,
            "repeats": opts.repeats,
            "auctions": opts.auctions,
            "client": opts.client,
        },
    }
    exit_on_sigterm()  # so that the finally below stops the servers
    procs = Processes()
    with tempfile.TemporaryDirectory(prefix="gavel-bench-") as tmp:
        body = Path(tmp) / "bid_request.json"
        body.write_bytes(orjson.dumps(sample_request()))
        try:
            if args.only in (None, "inprocess"):
                progress(f"(a) CPU per auction, {opts.auctions:,} auctions x {opts.repeats}")
                results["a_inprocess_cpu"] = bench_cpu(opts.auctions, opts.repeats, progress)
                results["a_inprocess_http"] = bench_inprocess_http(procs, body, opts, progress)
                procs.stop_all()  # their idle loops need no CPU, but their memory goes too
            if args.only in (None, "http"):
                results["b_http"] = bench_http(procs, body, opts, progress)
        except ServerFailed as exc:
            print(f"auction_bench: {exc}", file=sys.stderr)
            return 1
        finally:
            procs.stop_all()
    results["machine"]["loadavg_at_end"] = machine()["loadavg_at_start"]
    progress("done")
    print(render(results))
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
