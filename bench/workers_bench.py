"""Scaling from one SSP process to two on one port (SO_REUSEPORT): auctions/s for each.

Two set-ups, each run alternately with 1 and 2 workers under the same closed-loop load:
(a') the SSP with 5 in-process bidders (no DSP processes competing for the cores), and
(b)  the SSP calling 5 ``gavel dsp`` servers over HTTP (the lean client).
This machine has 2 cores shared by the load generator and, in (b), the DSPs: the ratio shows how
much a second worker buys here, not on a machine with cores to spare.

    .venv/bin/python -m bench.workers_bench [--duration 5] [--repeats 2] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from bench.procs import Processes
from bench.request import sample_request
from bench.runs import Options, loadgen


def _side(procs: Processes, label: str, module: str, args: list[str], workers: int) -> Any:
    # A fixed port: several workers cannot share port 0. Processes.start adds --port itself.
    return procs.start(f"{label} x{workers}", module, *args, "--workers", str(workers))


def bench(setup: str, body: Path, opts: Options, say: Any) -> dict[str, Any]:
    procs = Processes()
    try:
        if setup == "inprocess":
            module, args = "bench.inprocess_ssp", ["--host", "127.0.0.1"]
        else:
            dsps = []
            for i in range(5):
                a = ["dsp", "--host", "127.0.0.1", "--name", f"d{i}", "--strategy", "constant"]
                dsps.append(
                    procs.start(f"DSP d{i}", "gavel", *a, "--param", f"price={1 + i / 10:.2f}")
                )
            module = "gavel"
            args = ["ssp", "--host", "127.0.0.1", "--seed", "1"]
            args += [
                x for i, d in enumerate(dsps) for x in ("--dsp", f"d{i}={d.url('/openrtb2/bid')}")
            ]
        servers = {w: _side(procs, setup, module, args, w) for w in (1, 2)}
        rps: dict[int, list[float]] = {1: [], 2: []}
        for r in range(opts.repeats):
            for w, server in servers.items():
                rps[w].append(loadgen(server.url("/openrtb2/auction"), body, opts)["rps"])
            say(
                f"{setup} round {r + 1}/{opts.repeats}: 1 worker {rps[1][-1]:,.0f}/s, 2 workers {rps[2][-1]:,.0f}/s"
            )
        med = {w: statistics.median(v) for w, v in rps.items()}
        return {
            "setup": setup,
            "rps": med,
            "ratio": round(med[2] / med[1], 3) if med[1] else 0.0,
            "runs": rps,
        }
    finally:
        procs.stop_all()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.workers_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--duration", type=float, default=5.0, help="measured seconds per run (default 5)"
    )
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="warm-up seconds per run (default 1)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=64, help="load generator connections (default 64)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="runs per side (default 2)")
    parser.add_argument("--only", choices=["inprocess", "http"], help="one set-up only")
    args = parser.parse_args(argv)
    opts = Options(args.duration, args.concurrency, args.repeats, args.warmup, 0, "raw")
    setups = [args.only] if args.only else ["inprocess", "http"]

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    with tempfile.NamedTemporaryFile(suffix=".json") as fh:
        fh.write(orjson.dumps(sample_request()))
        fh.flush()
        results = [bench(s, Path(fh.name), opts, say) for s in setups]
    print(f"{'set-up':<10} {'1 worker':>10} {'2 workers':>10} {'2/1':>6}")
    for r in results:
        print(f"{r['setup']:<10} {r['rps'][1]:>10,.0f} {r['rps'][2]:>10,.0f} {r['ratio']:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
