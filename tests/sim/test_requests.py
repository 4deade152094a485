"""The per-request path's direct request builder equals the ``/ad`` JSON path, request by request
and run by run."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import orjson
import pytest

from exchange.openrtb import parse_bid_request
from gavel.sim import runner
from gavel.sim.experiment import DspEntry, Experiment, RunSpec
from gavel.sim.requests import RequestBuilder, SimTraffic
from gavel.sim.runner import Progress, run_one, scenario
from gavel.traffic import build_sim_world
from ssp.adrequest import parse_ad_request, to_openrtb
from ssp.world.clock import SimClock
from ssp.world.traffic import TrafficGenerator

from .conftest import ROOT


@pytest.mark.parametrize(("at", "floor_scale"), [(2, 1.0), (1, 1.7)])
def test_built_requests_equal_the_ad_path(at: int, floor_scale: float) -> None:
    world = scenario(Experiment(users=3000, dsp=(DspEntry(name="x", bidder="constant"),)), ROOT, 3)
    sim = build_sim_world(world)
    batches = []
    for cls in (TrafficGenerator, SimTraffic):
        gen = cls(world=sim, qps=5.0, clock=SimClock(start_ts=world.traffic.start_ts, speed=1.0),
                  seed=3, diurnal=world.traffic.diurnal)  # fmt: skip
        batches.append(gen.next_batch(1800.0))
    slow, fast = batches
    assert len(slow) == len(fast) > 500
    for name in ("due", "ts", "user", "site", "slot"):
        assert np.array_equal(getattr(slow, name), getattr(fast, name)), name
    cat = sim.catalog
    sites = {s.id: s for s in cat.sites}
    cur, tmax = world.exchange.currency, 83
    builder = RequestBuilder(sites=list(cat.sites), slots=list(cat.slots),
                             slot_site=cat.slot_site.tolist(), currency=cur, tmax_ms=tmax, at=at,
                             floor_scale=floor_scale)  # fmt: skip
    pairs = zip(slow.bodies, fast.bodies, fast.slot.tolist(), strict=True)
    for i, (body, view, slot) in enumerate(pairs):
        raw = to_openrtb(parse_ad_request(body, sites), request_id=f"a{i:x}", tmax_ms=tmax,
                         currency=cur)  # fmt: skip
        raw["at"] = at
        if floor_scale != 1.0:
            raw["imp"][0]["bidfloor"] = round(raw["imp"][0]["bidfloor"] * floor_scale, 6)
        want = parse_bid_request(raw, currency=cur)
        got = builder.build(f"a{i:x}", view, slot)
        assert orjson.dumps(got.raw) == orjson.dumps(want.raw)  # same keys, order and values
        assert got == want  # every typed field, raw and imp_by_id included
        assert got.imp[0].raw is got.raw["imp"][0] and got.site is got.raw["site"]


def test_built_requests_share_no_mutable_state() -> None:
    world = scenario(Experiment(users=3000, dsp=(DspEntry(name="x", bidder="constant"),)), ROOT, 3)
    sim = build_sim_world(world)
    gen = SimTraffic(world=sim, qps=5.0, clock=SimClock(start_ts=world.traffic.start_ts,
                     speed=1.0), seed=3)  # fmt: skip
    batch = gen.next_batch(600.0)
    cat = sim.catalog
    builder = RequestBuilder(sites=list(cat.sites), slots=list(cat.slots),
                             slot_site=cat.slot_site.tolist(), currency="USD", tmax_ms=95, at=2,
                             floor_scale=1.0)  # fmt: skip
    view, slot = batch.bodies[0], int(batch.slot[0])
    a, b = builder.build("a", view, slot), builder.build("b", view, slot)

    def containers(obj: Any) -> list[Any]:
        if isinstance(obj, dict):
            return [obj, *(c for v in obj.values() for c in containers(v))]
        if isinstance(obj, list):
            return [obj, *(c for v in obj for c in containers(v))]
        return []

    ids_a = {id(c) for c in containers(a.raw)} | {id(a.imp_by_id), id(a.imp[0].deals)}
    ids_b = {id(c) for c in containers(b.raw)} | {id(b.imp_by_id), id(b.imp[0].deals)}
    assert not ids_a & ids_b
    a.raw["site"]["cat"].append("IAB25")  # a bidder breaking the contract changes only its request
    a.raw["device"]["geo"]["lat"] = 0.0
    assert builder.build("c", view, slot).raw == {**b.raw, "id": "c"}
    assert b.raw["site"]["cat"] == list(cat.sites[view.site].cat)


def _tallies(r: runner.RunResult) -> Any:
    def plain(x: Any) -> Any:
        if isinstance(x, np.ndarray):
            return x.tolist()
        if dataclasses.is_dataclass(x):
            return {f.name: plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        return x

    return plain(r.market)


def test_a_run_gives_the_same_results_on_both_request_paths(monkeypatch) -> None:
    dsps = (
        DspEntry(name="lin", strategy="lin", params={"base_bid": 1.5}, cat="IAB17"),
        DspEntry(name="stride", config="configs/dsp/stride.toml"),
        DspEntry(name="random", bidder="random", params={"low": 0.2, "high": 2.5}),
        DspEntry(name="const", bidder="constant", params={"price": 0.9}),
    )
    exp = Experiment(users=3000, days=0.05, qps=3.0, dsp=dsps, path="object")
    spec = RunSpec(label="x", variant="x", fraction=None, dsps=dsps, at=2, floor_scale=1.3)
    fast = run_one(exp, spec, 5, base=ROOT, progress=Progress(total=1, quiet=True))
    monkeypatch.setattr(runner, "SimTraffic", TrafficGenerator)  # the /ad JSON bodies
    slow = run_one(exp, spec, 5, base=ROOT, progress=Progress(total=1, quiet=True))
    assert fast.market.auctions > 500 and fast.market.filled > 0
    assert sum(d.clicks for d in fast.market.dsps.values()) > 0
    assert _tallies(fast) == _tallies(slow)
