"""Run an experiment: per seed, an unconstrained pass when budgets are fractions, then every
variant; each run on a freshly built world (runs never share state), on the virtual clock."""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from dsp.registry import make_bidder
from exchange.config import override
from gavel.config import World, load_world
from gavel.sim.bidders import StrategyBidder
from gavel.sim.experiment import DspEntry, Experiment, RunSpec, expand
from gavel.sim.fast import BatchMarket, BatchTraffic, batchable
from gavel.sim.latency import LatencyModel
from gavel.sim.market import Market, SimDsp
from gavel.sim.metrics import DspTally, MarketTally
from gavel.sim.requests import SimTraffic
from gavel.traffic import build_sim_world
from ssp.world.clock import SimClock
from ssp.world.oracle import Oracle

log = logging.getLogger(__name__)
WINDOW_S = {"object": 600.0, "batch": 3600.0}


@dataclass
class RunResult:
    label: str
    variant: str
    fraction: float | None
    seed: int
    path: str
    budget: float | None
    market: MarketTally
    auctions_per_s: float = 0.0  # wall clock: run info only, never in the result files


@dataclass
class Progress:
    """A progress line on stderr: run k/n, simulated time, auctions/s (wall clock)."""

    total: int
    out: TextIO = field(default_factory=lambda: sys.stderr)
    done: int = 0
    quiet: bool = False
    _last: float = 0.0

    def update(
        self, label: str, sim_label: str, share: float, rate: float, *, force: bool = False
    ) -> None:
        now = time.perf_counter()
        if self.quiet or (not force and now - self._last < 0.25):
            return
        self._last = now
        width = 20
        fill = int(width * min(1.0, (self.done + share) / max(1, self.total)))
        line = (f"\r[{'#' * fill}{'.' * (width - fill)}] run {min(self.done + 1, self.total)}/{self.total} "
                f"{label[:28]:<28} sim {sim_label}  {rate:,.0f} auctions/s ")  # fmt: skip
        self.out.write(line)
        self.out.flush()

    def finish(self) -> None:
        if not self.quiet:
            self.out.write("\n")
            self.out.flush()


def scenario(exp: Experiment, base: Path, seed: int) -> World:
    path = Path(exp.world)
    if not path.is_absolute() and not path.exists():
        path = base / path
    world = load_world(path, environ={})
    for key, value in (("users.count", exp.users), ("users.seed", seed), ("traffic.seed", seed),
                       ("exchange.tmax_ms", exp.tmax_ms), ("exchange.seed", seed)):  # fmt: skip
        world = override(world, key, value)
    return world


def run_experiment(
    exp: Experiment, *, base: Path, progress: Progress | None = None
) -> list[RunResult]:
    specs = expand(exp)
    seeds = [exp.seed + k for k in range(exp.runs)]
    needs_pass = bool(exp.budget_fractions)
    total = len(seeds) * (len(specs) + needs_pass)
    progress = progress or Progress(total=total, quiet=True)
    progress.total = total
    results = []
    for seed in seeds:
        market_cost = None
        if needs_pass:
            free = RunSpec(label="unconstrained", variant="unconstrained", fraction=None,
                           dsps=tuple(dataclasses.replace(d, budget=0.0) if d.name == exp.focus_name
                                      else d for d in exp.dsp),
                           at=2 if exp.auction == "second" else 1, floor_scale=exp.floor_scale)  # fmt: skip
            r = run_one(exp, free, seed, base=base, progress=progress)
            market_cost = r.market.price_sum / 1000 / 1e6
            results.append(r)
        for spec in specs:
            budget = None
            if spec.fraction is not None and market_cost is not None:
                budget = round(spec.fraction * market_cost, 6)
            results.append(run_one(exp, spec, seed, base=base, progress=progress, budget=budget))
    progress.finish()
    return results


def make_dsp(
    entry: DspEntry, *, index: int, seed: int, oracle: Oracle, budget: float | None, base: Path
) -> SimDsp:
    bseed = seed * 1000 + index
    if entry.strategy:
        bidder: Any = StrategyBidder(
            strategy=entry.strategy, params=dict(entry.params), seat=entry.name,
            adomain=entry.adomain or f"{entry.name}.example", cat=entry.cat,
            value_per_click=entry.value_per_click,
            budget=entry.budget if budget is None else budget, max_bid=entry.max_bid,
            pctr=entry.pctr, ctr=entry.ctr, truth=oracle,
        )  # fmt: skip
        bidder.reset(bseed)
    elif entry.config:
        cfg = Path(entry.config)
        if not cfg.is_absolute() and not cfg.exists():
            cfg = base / cfg
        bidder = make_bidder("campaign", {"config": str(cfg), "truth": oracle, "seed": bseed})
    else:
        bidder = make_bidder(entry.bidder, {**entry.params, "seed": bseed})
    return SimDsp(
        name=entry.name,
        bidder=bidder,
        latency=LatencyModel(entry.latency),
        tally=DspTally(
            name=entry.name,
            value_per_click=entry.value_per_click,
            exp_clicks=0.0,  # the simulator knows the ground truth
            exp_conversions=0.0,
            exp_value=0.0,
        ),
        rng=np.random.default_rng([seed, index, 0x1A7]),
    )


def run_one(
    exp: Experiment,
    spec: RunSpec,
    seed: int,
    *,
    base: Path,
    progress: Progress,
    budget: float | None = None,
    on_market: Callable[[Market], None] | None = None,
) -> RunResult:
    world = scenario(exp, base, seed)
    sim = build_sim_world(world)
    oracle = Oracle(world=sim)
    focus = exp.focus_name
    dsps = [
        make_dsp(
            e,
            index=i,
            seed=seed,
            oracle=oracle,
            base=base,
            budget=budget if e.name == focus else None,
        )
        for i, e in enumerate(spec.dsps)
    ]
    path = exp.path
    if path == "auto":
        path = "batch" if batchable(dsps) else "object"
    elif path == "batch" and not batchable(dsps):
        raise ValueError("path = 'batch' needs strategy DSPs with vectorised strategies only")
    start = world.traffic.start_ts
    tally = MarketTally(dsps={d.name: d.tally for d in dsps}, fee_bps=world.exchange.fee_bps,
                        start_ts=start)  # fmt: skip
    kwargs = dict(world=sim, dsps=dsps, settings=world.exchange, tally=tally, at=spec.at,
                  floor_scale=spec.floor_scale, seed=seed)  # fmt: skip
    market = BatchMarket(**kwargs) if path == "batch" else Market(**kwargs)  # type: ignore[arg-type]
    if on_market is not None:
        on_market(market)
    gen_cls = BatchTraffic if path == "batch" else SimTraffic
    traffic = gen_cls(world=sim, qps=exp.qps, clock=SimClock(start_ts=start, speed=1.0), seed=seed,
                      diurnal=world.traffic.diurnal)  # fmt: skip
    duration = exp.days * 86_400.0
    window = WINDOW_S[path]
    t0 = time.perf_counter()
    t = 0.0
    while t < duration:
        t = min(duration, t + window)
        market.run_batch(traffic.next_batch(t))
        rate = tally.auctions / max(1e-9, time.perf_counter() - t0)
        progress.update(
            spec.label, time.strftime("%a %H:%M", time.gmtime(start + t)), t / duration, rate
        )
    market.deliver_conversions(start + duration)
    rate = tally.auctions / max(1e-9, time.perf_counter() - t0)
    progress.done += 1
    progress.update(
        spec.label, time.strftime("%a %H:%M", time.gmtime(start + duration)), 0.0, rate, force=True
    )
    log.info(
        "%s seed %d: %d auctions, %s path, %.0f auctions/s",
        spec.label,
        seed,
        tally.auctions,
        path,
        rate,
    )
    return RunResult(label=spec.label, variant=spec.variant, fraction=spec.fraction, seed=seed,
                     path=path, budget=budget, market=tally, auctions_per_s=rate)  # fmt: skip
