"""The campaign bidder's cost per bid request, next to a constant bidder measured in the same run.

A campaign bidder serving ``--campaigns`` campaigns (100 by default: a mix of targeting on site
categories and domains, segments, devices, OS, countries, cities, geofences, dayparts, frequency
caps and retargeting, with every built-in pricing strategy and pacing mode, over the six slot sizes
of the default world) answers the benchmark request of ``bench.request`` (what the SSP's ``/ad``
builds for the default world's news page: one 728x90 imp, a user with segments, an iPhone in
Paris), in-process: ``bidder.bid(request)``, each call timed on its own on a request parsed just
before it (untimed, as the DSP server parses it just before the call). The
baseline is the ``constant`` bidder on the same requests. Every bid is followed, outside the timed
call, by a loss notice (as most bids lose), so budgets, reservations and pacing stay in a steady
state. Reported: median, p90 and p99 per call, and the ratio of the medians.

    .venv/bin/python -m bench.campaign_bench                  # 100 campaigns, 20,000 calls a side
    .venv/bin/python -m bench.campaign_bench --campaigns 1000 --calls 5000

Exit code 1 when the campaign bidder's median is over ``--budget-us`` (50 us by default).
"""

from __future__ import annotations

import argparse
import copy
import gc
import logging
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from bench.report import machine
from bench.request import sample_request
from dsp.bidders.campaign_turn import Turn, imp_sizes
from dsp.registry import make_bidder
from dsp.targeting import read_request
from exchange.feedback import LOSS, AuctionEvent
from exchange.openrtb import parse_bid_request

log = logging.getLogger(__name__)

SIZES = [(728, 90), (300, 250), (970, 250), (320, 50), (300, 600), (160, 600)]
SITE_CATS = ["IAB12", "IAB17", "IAB22", "IAB20", "IAB9-30", "IAB19", "IAB8"]
SEGMENTS = ["IAB12", "IAB17", "IAB17-44", "IAB19", "IAB20", "IAB22", "IAB8", "IAB9"]
COUNTRIES = ["FRA", "GBR", "USA", "DEU", "JPN"]
CITIES = ["Paris", "London", "New York", "Tokyo", "Berlin"]
STRATEGIES: list[tuple[str, dict[str, Any]]] = [
    ("constant", {"cpm": 1.5}),
    ("random", {"low": 0.5, "high": 2.5}),
    ("truthful", {"value": 1.0}),
    ("mcpc", {"ecpc": 0.8}),
    ("lin", {"base_bid": 1.2, "avg_ctr": 0.001}),
    ("ortb1", {"c": 2.0, "lam": 1e-4}),
    ("ortb2", {"c": 2.0, "lam": 1e-4}),
    ("pid", {"target": 1.5}),
    ("shading", {"base_cpm": 2.0}),
]


def campaign_config(n: int, *, seed: int = 1) -> dict[str, Any]:
    """``n`` campaigns with varied, realistic targeting (see the module docstring)."""
    rng = random.Random(seed)
    campaigns = []
    for i in range(n):
        targeting: dict[str, Any] = {}
        roll = rng.random
        if roll() < 0.5:
            targeting["site_cat"] = {"include": rng.sample(SITE_CATS, rng.randint(1, 3))}
        elif roll() < 0.3:
            targeting["site_cat"] = {"exclude": rng.sample(SITE_CATS, 1)}
        if roll() < 0.1:
            targeting["site_domain"] = {"exclude": ["spammy.example", "mfa.example"]}
        if roll() < 0.4:
            targeting["segments"] = {"include": rng.sample(SEGMENTS, rng.randint(1, 3))}
        if roll() < 0.3:
            targeting["devicetype"] = rng.sample([1, 2, 4, 5], rng.randint(1, 2))
        if roll() < 0.2:
            targeting["os"] = rng.sample(["iOS", "Android", "Windows", "macOS"], 2)
        if roll() < 0.3:
            targeting["countries"] = rng.sample(COUNTRIES, rng.randint(1, 3))
        elif roll() < 0.2:
            targeting["cities"] = rng.sample(CITIES, 2)
        if roll() < 0.15:
            targeting["geofences"] = [
                {"lat": 48.85 + rng.uniform(-0.05, 0.05), "lon": 2.35 + rng.uniform(-0.05, 0.05),
                 "radius_m": rng.choice([500, 2000, 10_000])}
            ]  # fmt: skip
        if roll() < 0.25:
            start = rng.randrange(0, 20)
            targeting["dayparts"] = [
                {"days": ["weekdays"], "start": f"{start:02d}:00", "end": f"{start + 4:02d}:00"}
            ]
        if roll() < 0.1:
            targeting["retargeting"] = {"days": 14}
        strategy, params = STRATEGIES[i % len(STRATEGIES)]
        sizes = rng.sample(SIZES, rng.randint(1, 4))
        pacing = rng.choice(["asap", "throttle", "bid"])
        campaigns.append(
            {
                "id": f"c{i:03d}",
                "adomain": f"advertiser{i % 40}.example",
                "cat": [rng.choice(["IAB22", "IAB20", "IAB19", "IAB8", "IAB17"])],
                "budget_total": 1e6,
                "budget_daily": 1e5,
                "pacing": pacing,
                "strategy": strategy,
                "params": params,
                "targeting": targeting,
                "frequency": {"per_day": 50} if roll() < 0.3 else {},
                "creatives": [{"id": f"c{i:03d}-{w}x{h}", "w": w, "h": h} for w, h in sizes],
            }
        )
    return {
        "dsp": {"name": "bench", "ctr": {"model": "logistic", "ctr": 0.001}},
        "campaigns": campaigns,
    }


def bodies(n: int) -> list[bytes]:
    """``n`` copies of the benchmark request as JSON, each with its own id."""
    base = sample_request()
    out = []
    for i in range(n):
        raw = copy.deepcopy(base)
        raw["id"] = f"bench-{i}"
        out.append(orjson.dumps(raw))
    return out


def time_calls(bidder: Any, payloads: Sequence[bytes]) -> tuple[list[float], int]:
    """Seconds per ``bid()`` call, and how many answered a bid. Each request is parsed just
    before its call, untimed (as the DSP server does: the request is fresh in the CPU's caches),
    and each bid gets a loss notice after it, untimed."""
    clock = time.perf_counter
    out = []
    answered = 0
    for body in payloads:
        request = parse_bid_request(body, strict=False)
        t0 = clock()
        response = bidder.bid(request)
        out.append(clock() - t0)
        if response is not None:
            answered += 1
            for seatbid in response["seatbid"]:
                for bid in seatbid["bid"]:
                    bidder.on_loss(
                        AuctionEvent(
                            kind=LOSS,
                            auction_id=request.id,
                            imp_id=bid["impid"],
                            bid_id=bid["id"],
                            price=bid["price"] + 0.1,
                            loss=102,
                            min_to_win=bid["price"] + 0.11,
                        )
                    )
    return out, answered


def targeted(campaigns: int) -> tuple[int, int]:
    """How many campaigns the benchmark request passes the index for, and then every targeting
    rule (flight, geofences, dayparts, frequency, retargeting): the ones priced per call."""
    bidder = make_bidder("campaign", {"config": campaign_config(campaigns), "seed": 1})
    request = parse_bid_request(bodies(1)[0])
    facts = read_request(request)
    eligible, needs_fence = bidder.index_.match(facts, request.badv)
    eligible &= bidder.index_.size_mask(imp_sizes(request.imp[0]))
    turn = Turn(time.time())
    priced = sum(
        1
        for c in bidder.campaigns_
        if c.bit & eligible and (not c.special or bidder._special(c, needs_fence, facts, turn))
    )
    return bin(eligible).count("1"), priced


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def summary(samples: Sequence[float]) -> dict[str, float]:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": statistics.median(samples) * 1e6, "p90": q[89] * 1e6, "p99": q[98] * 1e6}


def run(campaigns: int, calls: int, rounds: int) -> dict[str, Any]:
    reqs = bodies(calls)
    bidders: dict[str, Callable[[], Any]] = {
        "constant": lambda: make_bidder("constant", {"price": 1.5, "seed": 1}),
        "campaign": lambda: make_bidder(
            "campaign", {"config": campaign_config(campaigns), "seed": 1}
        ),
    }
    samples: dict[str, list[float]] = {name: [] for name in bidders}
    answered: dict[str, int] = {name: 0 for name in bidders}
    gc.collect()
    for _ in range(rounds):  # alternate, so both sides see the same machine
        for name, build in bidders.items():
            bidder = build()
            time_calls(bidder, reqs[: min(200, calls)])  # warm up (caches, first-time paths)
            bidder.reset(1)
            found, n = time_calls(bidder, reqs)
            samples[name].extend(found)
            answered[name] += n
    return {
        name: {**summary(s), "calls": len(s), "bid_share": answered[name] / len(s)}
        for name, s in samples.items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.campaign_bench",
        description="Time a campaign bidder's bid() in-process, next to a constant bidder.",
    )
    parser.add_argument("--campaigns", type=int, default=100, help="campaigns (default 100)")
    parser.add_argument(
        "--calls", type=int, default=20_000, help="calls per round (default 20,000)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds per side, alternating (default 3)"
    )
    parser.add_argument(
        "--budget-us", type=float, default=50.0, help="the median to stay under, us (default 50)"
    )
    args = parser.parse_args(argv)
    m = machine()
    started = time.strftime("%Y-%m-%d %H:%M:%S %z")
    results = run(args.campaigns, args.calls, args.rounds)
    c, k = results["campaign"], results["constant"]
    indexed, priced = targeted(args.campaigns)
    load_end = [round(x, 2) for x in os.getloadavg()]
    lines = [
        f"Gavel campaign bidder benchmark, {started}, commit {commit()}",
        f"machine: {m['cpu_model']}, {m['nproc']} CPUs, {m['python']}, "
        f"load average at start {m['loadavg_at_start']}, at end {load_end}",
        f"{args.campaigns} campaigns ({indexed} pass the index and the slot size for the request, "
        f"{priced} every targeting rule: those are priced); {args.calls:,} calls x {args.rounds} "
        "rounds per side, in-process bid() on the bench.request request; per call",
        "",
        f"{'bidder':<28} {'p50 us':>8} {'p90 us':>8} {'p99 us':>8} {'bids':>6}",
        f"{'constant (baseline)':<28} {k['p50']:>8.1f} {k['p90']:>8.1f} {k['p99']:>8.1f} "
        f"{k['bid_share']:>6.0%}",
        f"{f'campaign, {args.campaigns} campaigns':<28} {c['p50']:>8.1f} {c['p90']:>8.1f} "
        f"{c['p99']:>8.1f} {c['bid_share']:>6.0%}",
        "",
        f"campaign / constant (medians): {c['p50'] / k['p50']:.1f}x; "
        f"budget {args.budget_us:g} us: {'met' if c['p50'] <= args.budget_us else 'MISSED'}",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0 if c["p50"] <= args.budget_us else 1


if __name__ == "__main__":
    sys.exit(main())
