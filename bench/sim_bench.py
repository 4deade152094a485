"""Simulated auctions/s of ``gavel simulate`` (issue 5), one process, one core.

(a) batch path: 5 DSPs running built-in vectorisable strategies (lin, truthful, constant, random,
    ortb1), oracle pCTRs, world traffic generated and auctioned with numpy; target >= 100,000/s.
(b) object path: 5 arbitrary Python ``Bidder`` objects (the registry's ``constant`` and ``random``
    bidders), each request a real OpenRTB BidRequest, answers validated, ``run_auction``,
    feedback, rendering; target >= 20,000/s. Baselines in the same run: the same 5 bidders'
    ``bid()`` called directly on the same requests, highest price kept (no exchange), the
    requests built (1) through the ``/ad`` JSON path (``parse_ad_request`` + ``to_openrtb`` +
    ``parse_bid_request``, what (b) did before) and (2) directly from the traffic arrays
    (``gavel.sim.requests``, what (b) does now).

    .venv/bin/python -m bench.sim_bench [--days 1] [--users 20000]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from dsp.registry import make_bidder
from exchange.openrtb import parse_bid_request
from gavel.sim.experiment import DspEntry, Experiment, RunSpec
from gavel.sim.runner import Progress, run_one
from ssp.adrequest import parse_ad_request, to_openrtb

ROOT = Path(__file__).resolve().parent.parent


def _rate(exp: Experiment) -> tuple[float, int]:
    spec = RunSpec(
        label="bench", variant="bench", fraction=None, dsps=exp.dsp, at=2, floor_scale=1.0
    )
    t0 = time.perf_counter()
    r = run_one(exp, spec, exp.seed, base=ROOT, progress=Progress(total=1, quiet=True))
    wall = time.perf_counter() - t0  # includes building the world and the traffic
    return r.market.auctions / wall, r.market.auctions


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=float, default=1.0)
    ap.add_argument("--users", type=int, default=20_000)
    args = ap.parse_args()
    strat = (
        DspEntry(name="lin", strategy="lin", params={"base_bid": 1.5}, cat="IAB17"),
        DspEntry(name="truthful", strategy="truthful", cat="IAB20"),
        DspEntry(name="constant", strategy="constant", params={"cpm": 1.0}, cat="IAB8"),
        DspEntry(name="random", strategy="random", cat="IAB19"),
        DspEntry(name="ortb1", strategy="ortb1", cat="IAB2"),
    )
    batch = Experiment(users=args.users, days=args.days, qps=5.0, dsp=strat, path="batch")
    objs = tuple(
        DspEntry(name=f"b{i}", bidder=kind, params=params)
        for i, (kind, params) in enumerate(
            [("constant", {"price": 1.0}), ("random", {}), ("constant", {"price": 1.5}),
             ("random", {"low": 0.5, "high": 3.0}), ("constant", {"price": 0.8})]
        )
    )  # fmt: skip
    obj = Experiment(users=args.users, days=args.days / 10, qps=5.0, dsp=objs, path="object")
    print(f"machine: nproc {os.cpu_count()}, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, load average {os.getloadavg()}")  # fmt: skip
    rate_a, n_a = _rate(batch)
    print(f"(a) batch path, 5 strategy DSPs:      {rate_a:>10,.0f} auctions/s ({n_a:,} auctions)")
    rate_b, n_b = _rate(obj)
    print(f"(b) object path, 5 Bidder objects:    {rate_b:>10,.0f} auctions/s ({n_b:,} auctions)")
    # baseline: the same bidders called directly on parsed requests
    from gavel.sim.requests import RequestBuilder, SimTraffic
    from gavel.sim.runner import scenario
    from gavel.traffic import build_sim_world
    from ssp.world.clock import SimClock
    from ssp.world.traffic import TrafficGenerator

    world = scenario(obj, ROOT, 1)
    sim = build_sim_world(world)
    gen = TrafficGenerator(
        world=sim, qps=5.0, clock=SimClock(start_ts=world.traffic.start_ts, speed=1.0), seed=1
    )
    bodies = gen.next_batch(obj.days * 86_400).bodies
    sites = {s.id: s for s in sim.catalog.sites}
    bidders = [make_bidder(d.bidder, {**d.params, "seed": 1}) for d in objs]
    t0 = time.perf_counter()
    for k, body in enumerate(bodies):
        req = parse_bid_request(
            to_openrtb(
                parse_ad_request(body, sites), request_id=f"r{k}", tmax_ms=95, currency="USD"
            )
        )
        best = 0.0
        for b in bidders:
            resp = b.bid(req)
            if resp:
                best = max(best, max(x["price"] for sb in resp["seatbid"] for x in sb["bid"]))
    base = len(bodies) / (time.perf_counter() - t0)
    print(
        f"    baseline: parse + 5 bid() calls:   {base:>10,.0f} requests/s (no validation, auction, feedback)"
    )
    gen = SimTraffic(
        world=sim, qps=5.0, clock=SimClock(start_ts=world.traffic.start_ts, speed=1.0), seed=1
    )
    batch = gen.next_batch(obj.days * 86_400)
    cat = sim.catalog
    builder = RequestBuilder(sites=list(cat.sites), slots=list(cat.slots),
                             slot_site=cat.slot_site.tolist(), currency="USD", tmax_ms=95, at=2,
                             floor_scale=1.0)  # fmt: skip
    bidders = [make_bidder(d.bidder, {**d.params, "seed": 1}) for d in objs]
    t0 = time.perf_counter()
    for k, (view, slot) in enumerate(zip(batch.bodies, batch.slot.tolist(), strict=True)):
        req = builder.build(f"r{k}", view, slot)
        best = 0.0
        for b in bidders:
            resp = b.bid(req)
            if resp:
                best = max(best, max(x["price"] for sb in resp["seatbid"] for x in sb["bid"]))
    base = len(batch) / (time.perf_counter() - t0)
    print(f"    baseline: build + 5 bid() calls:   {base:>10,.0f} requests/s (the same, requests built directly)")  # fmt: skip


if __name__ == "__main__":
    main()
