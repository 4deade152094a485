"""Each built-in pricing strategy's formula, its parameters and its learning."""

from __future__ import annotations

import itertools
import math

import pytest

from dsp.registry import (
    STRATEGIES,
    available_strategies,
    make_strategy,
    resolve_strategy,
)
from dsp.state import BudgetView, Reservation, budget_units
from dsp.strategy import BidContext, PricingStrategy
from exchange.feedback import AuctionEvent, listens


def made(spec: str, **params: object) -> PricingStrategy:
    s = make_strategy(spec, params)
    s.reset(0)
    assert isinstance(s, PricingStrategy)
    return s


def placed(note: object = None, bid: float = 1.0) -> Reservation:
    return Reservation(
        key=("a", "b"), campaign="c", bid_micros=round(bid * 1e6), ts=0, day=0, note=note
    )


def ev(kind: str, **fields: object) -> AuctionEvent:
    return AuctionEvent(kind=kind, auction_id="a", imp_id="1", bid_id="b", **fields)  # type: ignore[arg-type]


def test_registry_is_alphabetised_complete_and_round_trips() -> None:
    assert list(STRATEGIES) == sorted(STRATEGIES)
    assert set(STRATEGIES) == {
        "constant", "lin", "mcpc", "ortb1", "ortb2", "pid", "random", "shading", "truthful",
    }  # fmt: skip
    assert set(STRATEGIES) <= set(available_strategies())
    for sid in STRATEGIES:
        cls = resolve_strategy(sid)
        s = cls()
        assert cls(**s.get_params()).get_params() == s.get_params()
        assert cls.__doc__ and cls.__module__.startswith("dsp.strategies.")
    assert resolve_strategy("dsp.strategies.lin:Linear") is resolve_strategy("lin")
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
        resolve_strategy("nope")
    with pytest.raises(ValueError, match="has no parameter 'base'"):
        make_strategy("lin", {"base": 1.0})


def test_constant_and_random() -> None:
    assert made("constant", cpm=1.7).price(BidContext()) == 1.7
    a, b = made("random", low=1.0, high=2.0), made("random", low=1.0, high=2.0)
    draws = [a.price(BidContext()) for _ in range(50)]
    assert draws == [b.price(BidContext()) for _ in range(50)]  # the same seed
    assert all(1.0 <= d <= 2.0 for d in draws if d is not None)
    assert len(set(draws)) == 50


def test_truthful_is_value_times_pctr() -> None:
    ctx = BidContext(pctr=0.003, value_per_click=0.5)
    assert made("truthful").price(ctx) == pytest.approx(1000 * 0.5 * 0.003)
    assert made("truthful", value=2.0).price(ctx) == pytest.approx(6.0)
    assert made("truthful").price(BidContext(pctr=0.003)) is None  # no value known


def test_mcpc_is_ecpc_goal_times_pctr() -> None:
    ctx = BidContext(pctr=0.002, cpc_goal=0.8)
    assert made("mcpc").price(ctx) == pytest.approx(1.6)
    assert made("mcpc", ecpc=0.25).price(ctx) == pytest.approx(0.5)
    assert made("mcpc").price(BidContext(pctr=0.002)) is None


def test_lin_is_base_bid_times_relative_ctr() -> None:
    lin = made("lin", base_bid=1.5, avg_ctr=0.002)
    assert lin.price(BidContext(pctr=0.002)) == pytest.approx(1.5)  # an average opportunity
    assert lin.price(BidContext(pctr=0.005)) == pytest.approx(3.75)
    assert made("lin", avg_ctr=0.0).price(BidContext(pctr=0.1)) is None


@pytest.mark.parametrize("theta", [0.0, 0.0005, 0.002, 0.01, 0.2])
@pytest.mark.parametrize(("c", "lam"), [(2.0, 1e-4), (50.0, 5.2e-7), (0.5, 1e-3)])
def test_ortb1_formula(theta: float, c: float, lam: float) -> None:
    got = made("ortb1", c=c, lam=lam).price(BidContext(pctr=theta))
    assert got == pytest.approx(math.sqrt(c / lam * theta + c * c) - c)
    assert got is not None and got >= 0


@pytest.mark.parametrize("theta", [0.0, 0.0005, 0.002, 0.01, 0.2])
@pytest.mark.parametrize(("c", "lam"), [(2.0, 1e-4), (50.0, 5.2e-7), (0.5, 1e-3)])
def test_ortb2_formula(theta: float, c: float, lam: float) -> None:
    got = made("ortb2", c=c, lam=lam).price(BidContext(pctr=theta))
    root = theta + math.sqrt(c * c * lam * lam + theta * theta)
    expected = c * ((root / (c * lam)) ** (1 / 3) - ((c * lam) / root) ** (1 / 3))
    assert got == pytest.approx(expected)
    assert got == pytest.approx(0.0, abs=1e-9) if theta == 0 else got > 0


def test_ortb_bids_are_concave_and_increasing_in_pctr() -> None:
    for sid in ("ortb1", "ortb2"):
        s = made(sid, c=2.0, lam=1e-4)
        bids = [s.price(BidContext(pctr=t / 1000)) or 0.0 for t in range(0, 20)]
        steps = [b - a for a, b in itertools.pairwise(bids)]
        assert all(x > 0 for x in steps), sid
        assert all(b <= a + 1e-12 for a, b in itertools.pairwise(steps)), sid
    # a tighter budget (larger lambda) bids lower
    low = made("ortb1", c=2.0, lam=1e-3).price(BidContext(pctr=0.002))
    high = made("ortb1", c=2.0, lam=1e-4).price(BidContext(pctr=0.002))
    assert low is not None and high is not None and low < high


def budget(daily: float, spent: float) -> BudgetView:
    return BudgetView(0, budget_units(daily), budget_units(spent), budget_units(spent), 0)


def test_pid_bids_the_target_then_corrects() -> None:
    pid = made("pid", target=2.0, kp=1.0, ki=0.1, interval_s=300.0)
    ctx = BidContext(now=0.0, day_elapsed=0.5, budget=budget(10.0, 1.0))
    assert pid.price(ctx) == 2.0  # the reference bid, phi = 0
    # five minutes later: far behind the even line (1 of 5 planned): bid up
    ctx.now = 301.0
    up = pid.price(ctx)
    assert up is not None and up > 2.0
    assert pid.phi_ == pytest.approx(1.0 * 0.8 + 0.1 * 0.8)
    # ahead of schedule: bid down
    pid2 = made("pid", target=2.0, kp=1.0, ki=0.0)
    ahead = BidContext(now=0.0, day_elapsed=0.5, budget=budget(10.0, 7.5))
    pid2.price(ahead)
    ahead.now = 301.0
    down = pid2.price(ahead)
    assert down is not None and down < 2.0 and pid2.phi_ == pytest.approx(-0.5)


def test_pid_holds_the_target_when_paying_too_much() -> None:
    pid = made("pid", target=0.5, metric="ecpc", kp=1.0, ki=0.0)
    ctx = BidContext(now=0.0, pctr=0.002, day_elapsed=0.5, budget=budget(10.0, 1.0))
    assert pid.price(ctx) == pytest.approx(1000 * 0.5 * 0.002)
    for _ in range(10):  # ten impressions at a CPM of 2.0 and one click: eCPC 0.002 x 10 = 0.02
        pid.on_billing(ev("billing", price=2.0), placed())
    pid.on_click(ev("click"), placed())
    ctx.now = 301.0
    # behind schedule says "up", but eCPC 0.02 is far under 0.5: the smaller error (pacing) wins
    assert pid.price(ctx) > 1.0
    for _ in range(10):
        pid.on_billing(ev("billing", price=200.0), placed())  # now eCPC = 2.0 > 0.5
    pid.on_click(ev("click"), placed())
    ctx.now = 602.0
    assert pid.price(ctx) < 1.0  # paying over the target: down, whatever the pacing says
    with pytest.raises(ValueError, match="metric"):
        make_strategy("pid", {"metric": "cpa"}).reset(0)


def test_pid_anti_windup() -> None:
    pid = made("pid", kp=0.0, ki=1.0, max_phi=1.0)
    for _ in range(20):
        pid.step(1.0)
    assert pid.phi_ == 1.0 and pid.integral_ <= 1.0  # the integral stopped at the limit
    pid.step(-1.0)
    assert pid.phi_ < 1.0  # and so it comes back at once


def test_shading_second_price_bids_the_value_first_price_shades() -> None:
    s = made("shading", base_cpm=2.0, explore=0.0)
    assert s.price(BidContext(at=2)) == 2.0
    ctx = BidContext(at=1)
    assert s.price(ctx) == pytest.approx(1.0)  # prior W(s) = s: (1 - s) s is best at s = 0.5
    assert ctx.note == [4, 2.0]
    assert s.price(BidContext(at=1, floor=1.5)) == 1.5  # the floor, since the value covers it
    assert s.price(BidContext(at=1, floor=2.5)) is None
    value = made("shading", value=1.0, explore=0.0)
    assert value.price(BidContext(at=2, pctr=0.003)) == pytest.approx(3.0)


def test_shading_learns_the_market_from_min_to_win() -> None:
    s = made("shading", base_cpm=2.0, explore=0.0, prior_weight=1.0)
    # the market clears around 1.7-1.8: shading to 0.5 (1.00) always loses
    for _ in range(30):
        ctx = BidContext(at=1)
        s.price(ctx)
        s.on_loss(ev("loss", loss=102, min_to_win=1.75), placed(ctx.note))
    ctx = BidContext(at=1)
    b = s.price(ctx)
    assert b is not None and b >= 1.75  # it learnt to bid what wins
    s.on_win(ev("win", price=b), placed(ctx.note))
    rates = s.win_rates()
    assert rates == sorted(rates)  # monotone in the factor
    low = s.factors_.index(min(f for f in s.factors_ if f * 2.0 >= 1.75))
    assert rates[low] > 0.9 and rates[0] < 0.1


def test_shading_explores_with_its_seeded_rng() -> None:
    a, b = made("shading", base_cpm=2.0, explore=0.5), made("shading", base_cpm=2.0, explore=0.5)
    pa = [a.price(BidContext(at=1)) for _ in range(40)]
    assert pa == [b.price(BidContext(at=1)) for _ in range(40)]
    assert len(set(pa)) > 1


def test_hooks_are_optional_and_only_real_ones_are_listened_to() -> None:
    assert listens(made("lin")) == frozenset()
    assert listens(made("pid")) == {"billing", "click"}
    assert listens(made("shading")) == {"win", "loss"}
    base = PricingStrategy()
    base.reset(1)
    with pytest.raises(NotImplementedError):
        base.price(BidContext())
    base.on_win(ev("win", price=1.0), placed())  # no-ops


def test_context_budget_and_pctr_are_lazy() -> None:
    calls = []

    def pctr() -> float:
        calls.append("pctr")
        return 0.01

    ctx = BidContext(pctr=pctr, budget=lambda: budget(10.0, 4.0), day_elapsed=0.25)
    assert calls == []
    assert ctx.pctr == 0.01 and ctx.pctr == 0.01 and calls == ["pctr"]
    assert ctx.daily_budget == 10.0 and ctx.spent_today == 4.0 and ctx.remaining_today == 6.0
    assert ctx.remaining_total is None and ctx.floor_micros == 0 and not ctx.first_price


def test_strategies_from_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    from dsp import registry

    fake = EntryPoint(name="mylin", value="dsp.strategies.lin:Linear", group="gavel.strategies")

    def entry_points(*, group: str, name: str | None = None) -> list[EntryPoint]:
        found = [fake] if group == registry.STRATEGY_ENTRY_POINT_GROUP else []
        return [ep for ep in found if name is None or ep.name == name]

    monkeypatch.setattr(registry, "entry_points", entry_points)
    assert registry.available_strategies()["mylin"] == "dsp.strategies.lin:Linear"
    assert resolve_strategy("mylin") is resolve_strategy("lin")
    assert "mylin" not in registry.available()  # the bidders' group is another one
