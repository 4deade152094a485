"""The ``gavel`` command: serve an SSP or a DSP, or run the demo world.

Exit codes: 0 ok, 1 a check or SLO failed, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from exchange.config import ConfigError, override

EXAMPLES = """\
examples:
  gavel run                                   the demo world: an SSP, 4 DSPs, traffic, 30 s
  gavel traffic --ssp http://127.0.0.1:8000 --qps 200 --duration 60   the world's traffic at an SSP
  gavel run --duration 10 --qps 200           shorter and busier
  gavel ssp --port 8000 --dsp a=http://127.0.0.1:9001/openrtb2/bid --dsp b=http://127.0.0.1:9002/openrtb2/bid
  gavel dsp --port 9001 --strategy constant --param price=1.5
  gavel dsp --port 9002 --strategy random --param low=0.5 --param high=3 --latency-ms 40 --hang-rate 0.05
  gavel dsp --port 9003 --config configs/dsp/stride.toml   a campaign DSP (/pixel, /stats)
  gavel run --event-log events.jsonl && gavel report events.jsonl   the market, from its event log
  gavel simulate configs/experiments/strategies.toml --out out/strategies   offline, virtual clock
  gavel replay test.log.txt --strategy lin --param base_bid=80 --budget-fraction 1/8   iPinYou log
"""


TRAFFIC_HELP = """\
Send the simulated world's traffic to an SSP's POST /ad, open loop (arrivals never wait for
answers), and act out what users do with the ads served.

  arrivals   page views arrive as a Poisson process whose rate follows the users' local time of
             day, in simulated time: a simulated day lasts --day-minutes real minutes
  requests   each page view picks a site by its share and a visitor from the site's audience,
             and asks for every slot of the page's layout (phone or desktop) with the user's id,
             interest segments, device, geo (home city, jittered) and ts (the simulated time)
  rendering  a filled slot fires the impression beacon when the ad is seen (viewability), the
             click beacon with the ground truth's P(click), and a conversion later with
             P(conversion | click); a purchase ends the user's intent in that category
  pixels     researching users visit advertisers' sites: visits, purchases and attributed
             conversions go to the DSPs' GET /pixel (failures are counted, never fatal)

The world comes from the scenario file: [[sites]], [users], [intent], [truth], [[advertisers]]
and [traffic] (docs/world.md has the model and its formulas). A progress line each second, a
summary at the end.
"""

TRAFFIC_EXAMPLES = """\
examples:
  gavel traffic --ssp http://127.0.0.1:8000 --qps 100 --duration 60
  gavel traffic --ssp http://127.0.0.1:8000 --users 1000000 --day-minutes 1 --seed 7
  gavel traffic --ssp http://127.0.0.1:8000 --dsp steady=http://127.0.0.1:9001 --burst 20:5:4

exit codes: 0 ok, 1 the SSP is unreachable or too many requests failed, 2 usage or configuration
"""


def _name_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number between 0 and 1, got {text!r}"
        ) from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def _number(text: str, ok: Callable[[float], bool], what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _positive(text: str) -> float:
    return _number(text, lambda v: v > 0, "a number > 0")


def _non_negative(text: str) -> float:
    return _number(text, lambda v: v >= 0, "a number >= 0")


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _burst(text: str) -> Any:
    from gavel.traffic import parse_burst

    return parse_burst(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gavel",
        description="Gavel: a real-time bidding ad exchange simulator (OpenRTB 2.6 over HTTP, "
        "a hard deadline, second-price auctions).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "ssp",
        help="serve the SSP (OpenRTB intake, /ad, beacons, /metrics)",
        description="Serve the SSP: POST /openrtb2/auction and /ad fan out to every DSP under the deadline.",
    )
    p.add_argument(
        "--config", metavar="FILE", help="scenario file (TOML); default: built-in defaults"
    )
    p.add_argument("--host", help="address to listen on (default from config: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default from config: 8000)")
    p.add_argument(
        "--dsp",
        action="append",
        type=_name_value,
        default=[],
        metavar="NAME=URL",
        help="an HTTP DSP's bid URL; repeatable; replaces a config DSP of the same name",
    )
    p.add_argument("--tmax-ms", type=int, help="the most an auction may take, in ms (default 100)")
    p.add_argument("--seed", type=int, help="seed of the auction's tie-break RNG")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes serving the same port (SO_REUSEPORT; one per core); each has its own "
        "/stats and /metrics (default 1)",
    )
    p.add_argument(
        "--event-log",
        metavar="FILE",
        help="append every auction, impression, click, conversion and notice to FILE as JSON "
        "lines, rotated by size (docs/observability.md); with --workers, one file per process",
    )
    p.add_argument(
        "--transport",
        choices=["lean", "aiohttp"],
        help="HTTP client for DSP calls (default from config: lean; https DSPs always use aiohttp)",
    )

    p = sub.add_parser(
        "dsp",
        help="serve one bidder as a DSP over OpenRTB, with optional fault injection",
        description="Serve a bidder at POST /openrtb2/bid with /win, /bill, /loss, /click notices; "
        "a campaign bidder (--config) also takes /pixel events and reports /stats.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, required=True, help="port to listen on")
    p.add_argument(
        "--name",
        help="this DSP's name (seat), for logs and metrics (default: the campaign file's "
        "dsp.name with --config, else dsp)",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="serve the campaigns of a campaign file (TOML, e.g. configs/dsp/stride.toml) with "
        "the campaign bidder; excludes --strategy and --param",
    )
    p.add_argument(
        "--strategy",
        help="registry id (campaign, constant, random) or package.module:Class (default constant)",
    )
    p.add_argument(
        "--param",
        action="append",
        type=_name_value,
        default=[],
        metavar="KEY=VALUE",
        help="a keyword parameter of the bidder; repeatable (values are read as numbers, "
        "booleans or strings)",
    )
    p.add_argument("--seed", type=int, help="seed of the bidder and of the fault draws")
    p.add_argument("--latency-ms", type=float, default=0.0, help="added latency per request (ms)")
    p.add_argument(
        "--latency-jitter-ms", type=float, default=0.0, help="spread of the added latency (ms)"
    )
    p.add_argument(
        "--latency-dist",
        default="fixed",
        choices=["fixed", "uniform", "exponential", "lognormal"],
        help="distribution of the added latency (default fixed)",
    )
    p.add_argument("--hang-rate", type=_rate, default=0.0, help="share of requests that hang (0-1)")
    p.add_argument(
        "--error-rate", type=_rate, default=0.0, help="share of requests answered HTTP 500 (0-1)"
    )
    p.add_argument(
        "--garbage-rate", type=_rate, default=0.0, help="share answered with malformed JSON (0-1)"
    )
    p.add_argument(
        "--hang-s", type=float, default=30.0, help="how long a hang lasts (s) before a 204"
    )

    p = sub.add_parser(
        "run",
        help="run the demo world: an SSP, several DSPs and a traffic driver, with live status",
        description="Start the SSP and the DSP servers of a scenario as separate processes, drive "
        "the simulated world's /ad traffic at them (as gavel traffic does), print a status line "
        "each second and a summary at the end. Ctrl-C stops everything.",
    )
    p.add_argument("--config", metavar="FILE", help="scenario file (default: configs/default.toml)")
    p.add_argument("--duration", type=float, help="seconds of traffic (default from config: 30)")
    p.add_argument("--qps", type=float, help="ad requests per second (default from config: 50)")
    p.add_argument(
        "--port", type=int, help="the SSP's port (default from config; 0 = any free port)"
    )
    p.add_argument("--quiet", action="store_true", help="no status line, only the summary")
    p.add_argument(
        "--no-browser",
        action="store_true",
        help="do not open the dashboard in a web browser (never opened without a display, "
        "when CI is set, or when the output is not a terminal)",
    )
    p.add_argument("--event-log", metavar="FILE", help="the SSP's event log (see gavel ssp)")

    p = sub.add_parser(
        "report",
        help="tables of the market and of each DSP from an event log",
        description="Read an event log (gavel ssp --event-log; each file after its rotated "
        "backups FILE.N ... FILE.1) and print the market's figures and one row per DSP.",
    )
    p.add_argument("events", nargs="+", metavar="EVENTS.jsonl", help="event log file(s)")
    p.add_argument(
        "--no-backups", action="store_true", help="read only the files given, not FILE.1..."
    )
    p.add_argument(
        "--html",
        metavar="DIR",
        help="also write the simulator's report to DIR: CSV, JSON, PNG plots and report.html",
    )

    p = sub.add_parser(
        "traffic",
        help="drive the simulated world's traffic at a running SSP (users, clicks, conversions)",
        description=TRAFFIC_HELP,
        epilog=TRAFFIC_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--ssp", required=True, metavar="URL", help="the SSP's base URL")
    p.add_argument("--config", metavar="FILE", help="scenario file (default: configs/default.toml)")
    p.add_argument(
        "--qps",
        type=_positive,
        metavar="N",
        help="ad requests per second, mean over a simulated day (default 50)",
    )
    p.add_argument(
        "--duration",
        type=_non_negative,
        metavar="S",
        help="seconds of traffic, real time (default 30)",
    )
    p.add_argument(
        "--seed",
        type=int,
        metavar="K",
        help="seed of the users and the traffic: same seed, same requests",
    )
    p.add_argument(
        "--users", type=_count, metavar="N", help="number of simulated users (default 100000)"
    )
    p.add_argument(
        "--day-minutes",
        type=_positive,
        metavar="M",
        help="real minutes per simulated day (default 10; 1440 = real time)",
    )
    p.add_argument(
        "--dsp",
        action="append",
        type=_name_value,
        default=[],
        metavar="NAME=URL",
        help="a DSP's base URL (http://host:port) for its pixels and conversions; repeatable",
    )
    p.add_argument(
        "--burst",
        action="append",
        type=_burst,
        default=[],
        metavar="AT:SECONDS:FACTOR",
        help="FACTOR times the traffic for SECONDS from AT seconds; repeatable "
        "(and kill -USR1 <pid> bursts 4x for 5 s on demand)",
    )
    p.add_argument(
        "--max-error-rate",
        type=_rate,
        default=0.01,
        metavar="R",
        help="exit 1 when more than this share of /ad requests fail (default 0.01)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress line, only the summary")

    from gavel.sim.command import add_parsers as add_sim_parsers

    add_sim_parsers(sub, _name_value)

    p = sub.add_parser(
        "bench",
        help="benchmarks (from a source checkout): `gavel bench load` is the Locust load test",
        description="Benchmarks, from a source checkout (bench/ is not installed). "
        "`gavel bench load --help` explains the load test: it starts a world, runs Locust "
        "headless against it and exits 1 when a latency, error or timeout threshold is missed.",
    )
    bench = p.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    # Its options belong to bench/load.py, which parses them (main passes them through).
    bench.add_parser(
        "load", add_help=False, help="the Locust load test with thresholds (bench/load.py)"
    )
    return parser


#: The subcommands served by another module: (module, function taking the parsed arguments).
HANDLERS: dict[str, tuple[str, str]] = {
    "replay": ("gavel.sim.command", "replay_command"),
    "report": ("gavel.report", "report_command"),
    "run": ("gavel.run", "run_world"),
    "simulate": ("gavel.sim.command", "simulate_command"),
    "traffic": ("gavel.traffic", "traffic_command"),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "bench":  # `gavel bench load` passes its options on
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "ssp":
            return _ssp(args)
        if args.command == "dsp":
            return _dsp(args)
        if args.command == "bench":
            return _bench(rest)
        module, name = HANDLERS[args.command]  # imported only when used: `gavel --help` stays fast
        handler: Callable[[argparse.Namespace], int] = getattr(
            importlib.import_module(module), name
        )
        return handler(args)
    except (ConfigError, ValueError) as exc:
        print(f"gavel {args.command}: {exc}", file=sys.stderr)
        return 2


def _bench(argv: Sequence[str]) -> int:
    """``gavel bench load ARGS``: bench/load.py's ``main(ARGS)``. bench/ is not part of the
    installed package; it sits next to gavel/ in a source checkout (an editable install)."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    if not (root / "bench" / "load.py").is_file():
        print("gavel bench: needs a source checkout (bench/ next to gavel/)", file=sys.stderr)
        return 2
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from bench.load import main as load_main

    return load_main(list(argv))


def _ssp(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gavel.config import DEFAULT_CONFIG, DspSpec, load_world
    from gavel.serve import run
    from ssp.server import make_app

    world = load_world(args.config)
    if args.host:
        world = override(world, "ssp.host", args.host)
    if args.port is not None:
        world = override(world, "ssp.port", args.port)
    if args.workers < 1:
        raise ValueError("--workers must be >= 1")
    if args.tmax_ms is not None:
        world = override(world, "exchange.tmax_ms", args.tmax_ms)
    if args.seed is not None:
        world = override(world, "exchange.seed", args.seed)
    if args.transport is not None:
        world = override(world, "exchange.transport", args.transport)
    if args.event_log is not None:
        world = override(world, "ssp.event_log", args.event_log)
    log_path = Path(world.ssp.event_log)
    if args.workers > 1 and world.ssp.event_log and "{pid}" not in log_path.name:
        per_worker = log_path.with_name(f"{log_path.stem}.{{pid}}{log_path.suffix}")
        world = override(world, "ssp.event_log", str(per_worker))  # events.1234.jsonl
    if args.dsp:
        dsps = {d.name: d for d in world.dsp}
        for name, url in args.dsp:
            dsps[name] = DspSpec(name=name, url=url)
        world = override(world, "dsp", tuple(dsps.values()))
    sites = world.sites
    if not sites and args.config is None:
        sites = load_world(DEFAULT_CONFIG).sites
    if not world.dsp:
        logging.getLogger("gavel").warning("no DSPs configured: every auction will go unfilled")
    app = make_app(settings=world.exchange, ssp=world.ssp, dsps=world.endpoints(), sites=sites)
    return run(app, host=world.ssp.host, port=world.ssp.port, name="SSP", workers=args.workers)


def _dsp(args: argparse.Namespace) -> int:
    from dsp.faults import Faults
    from dsp.registry import make_bidder, parse_value
    from dsp.server import make_app
    from gavel.serve import run

    if os.getcwd() not in sys.path:  # "mybidders:MyBidder" from the current folder, as uvicorn does
        sys.path.insert(0, os.getcwd())
    params: dict[str, object] = {k: parse_value(v) for k, v in args.param}
    name = args.name
    if args.config:
        if args.strategy or params:
            raise ValueError("--config serves a campaign file: leave out --strategy and --param")
        params = {"config": args.config}
    if args.seed is not None:
        params.setdefault("seed", args.seed)
    bidder = make_bidder("campaign" if args.config else args.strategy or "constant", params)
    if name is None:
        settings = getattr(bidder, "settings_", None)
        name = settings.name if args.config and settings is not None else "dsp"
    faults = Faults(
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms,
        latency_dist=args.latency_dist,
        hang_rate=args.hang_rate,
        error_rate=args.error_rate,
        garbage_rate=args.garbage_rate,
        hang_s=args.hang_s,
    )
    app = make_app(bidder=bidder, name=name, faults=faults, seed=args.seed)
    run(app, host=args.host, port=args.port, name=f"DSP {name}")
    return 0
