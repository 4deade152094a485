"""``gavel simulate`` and ``gavel replay``: argument handling and output files."""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from gavel.sim.experiment import load_experiment

SIMULATE_HELP = """\
Run an experiment offline: the simulated world (users, sites, traffic, ground truth), the
exchange and the DSPs in one process on a virtual clock. No sockets, no sleeping: a simulated
day takes as long as its auctions take to compute. The rules are the live ones (OpenRTB
requests, bid validation, the auction, win/loss/billing/click/conversion feedback), and each
DSP's response time is drawn from its latency model and compared with the deadline in virtual
time: late answers are timeouts, as live. Same seed, same output files, byte for byte.

An experiment file (TOML; docs/simulation.md, configs/experiments/) names the world, the
competing DSPs, the auction (second or first price), floors, the variants to compare and
budgets as fractions of the total market cost (the iPinYou protocol: an unconstrained pass
measures that cost first). Each variant runs once per seed (--runs N seeds from --seed K) and
the tables show the mean and its 95% confidence interval.

Writes to --out: runs.csv and market_runs.csv (one row per run), variants.csv and market.csv
(per variant, mean and CI), results.json (all of it, with the time series and histograms),
plots/*.png, report.html (self-contained), and run-info.json (wall clock, auctions/s: the only
file that differs between two runs of the same seed).
"""

SIMULATE_EXAMPLES = """\
examples:
  gavel simulate configs/experiments/strategies.toml --out out/strategies
  gavel simulate configs/experiments/first_price.toml --out out/fp --runs 5 --seed 7

exit codes: 0 ok, 2 usage or configuration error (the message names the key and file)
"""

REPLAY_HELP = """\
Replay an iPinYou bid log (make-ipinyou-data's train/test log.txt: tab-separated with a header
line; click, weekday, hour, bidid, ..., slotprice, ..., payprice, ...) with the benchmark's
protocol: for each impression the strategy bids; it wins when its bid is strictly above the
market price (payprice), pays the market price, and stops winning when the budget is spent.
Prices are read in the log's unit (CPM). pCTR: the log's mean CTR, or with --train LOG the
smoothed CTR of the impression's (slot size, slot visibility, ad exchange) in the training log.
"""

REPLAY_EXAMPLES = """\
examples:
  gavel replay ipinyou/1458/test.log.txt --strategy lin --param base_bid=80 --budget-fraction 1/8
  gavel replay test.log.txt --train train.log.txt --strategy ortb1 --param c=50 --param lam=5e-6

exit codes: 0 ok, 2 usage or configuration error
"""


def add_parsers(sub: Any, name_value: Any) -> None:
    p = sub.add_parser("simulate", help="run an experiment offline on a virtual clock: tables, plots, HTML",
                       description=SIMULATE_HELP, epilog=SIMULATE_EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("experiment", metavar="EXPERIMENT.toml", help="the experiment file")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for the results")
    p.add_argument("--seed", type=int, metavar="K", help="first seed (default: the file's)")
    p.add_argument("--runs", type=int, metavar="N", help="seeds per variant (default: the file's)")
    p.add_argument("--quiet", action="store_true", help="no progress line")

    p = sub.add_parser("replay", help="replay an iPinYou bid log with a strategy and a budget",
                       description=REPLAY_HELP, epilog=REPLAY_EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("log", metavar="LOG.txt", help="make-ipinyou-data log.txt")
    p.add_argument(
        "--strategy", default="lin", help="pricing strategy: registry id or package.module:Class"
    )
    p.add_argument("--param", action="append", type=name_value, default=[], metavar="KEY=VALUE",
                   help="a parameter of the strategy; repeatable")  # fmt: skip
    g = p.add_mutually_exclusive_group()
    g.add_argument("--budget", type=float, metavar="X", help="budget in the log's money unit")
    g.add_argument(
        "--budget-fraction",
        metavar="F",
        help="budget as a fraction of the log's total cost (1/8 or 0.125)",
    )
    p.add_argument(
        "--train", metavar="LOG", help="training log for the pCTR (default: the log's mean CTR)"
    )
    p.add_argument(
        "--value-per-click", type=float, default=1.0, help="for truthful/mcpc (default 1)"
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON")


def simulate_command(args: argparse.Namespace) -> int:
    from gavel.sim.html import write_html
    from gavel.sim.plots import make_plots
    from gavel.sim.report import write_json, write_results
    from gavel.sim.runner import Progress, run_experiment

    path = Path(args.experiment)
    exp = load_experiment(path)
    if args.seed is not None:
        exp = dataclasses.replace(exp, seed=args.seed)
    if args.runs is not None:
        if args.runs <= 0:
            raise ValueError("--runs must be > 0")
        exp = dataclasses.replace(exp, runs=args.runs)
    base = Path(__file__).resolve().parent.parent.parent
    out = Path(args.out)
    t0 = time.perf_counter()
    results = run_experiment(exp, base=base, progress=Progress(total=0, quiet=args.quiet))
    wall = time.perf_counter() - t0
    doc = write_results(out, exp.name, exp.description, results, focus=exp.focus_name,
                        compare=exp.compare)  # fmt: skip
    images = make_plots(doc, out / "plots", exp.focus_name)
    write_html(out / "report.html", doc, images)
    auctions = sum(r.market.auctions for r in results)
    info = {"wall_s": round(wall, 3), "auctions": auctions, "auctions_per_s": round(auctions / wall),
            "runs": [{"variant": r.label, "seed": r.seed, "path": r.path,
                      "auctions_per_s": round(r.auctions_per_s)} for r in results],
            "python": platform.python_version(), "machine": platform.machine(),
            "note": "wall-clock figures: the only file that changes between runs of the same seed"}  # fmt: skip
    write_json(out / "run-info.json", info)
    sys.stdout.write(f"{len(results)} runs, {auctions:,} auctions in {wall:.1f} s; "
                     f"report: {out / 'report.html'}\n")  # fmt: skip
    return 0


def replay_command(args: argparse.Namespace) -> int:
    from dsp.registry import parse_params
    from gavel.sim.replay import parse_fraction, replay_file

    params = parse_params(f"{k}={v}" for k, v in args.param)
    fraction = parse_fraction(args.budget_fraction) if args.budget_fraction else None
    result = replay_file(Path(args.log), strategy=args.strategy, params=params, budget=args.budget,
                         fraction=fraction, train=Path(args.train) if args.train else None,
                         value_per_click=args.value_per_click)  # fmt: skip
    if args.json:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_SORT_KEYS).decode() + "\n")
    else:
        for key, value in result.items():
            sys.stdout.write(f"{key:<14} {value}\n")
    return 0
