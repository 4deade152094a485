"""The budget ledger, frequency counts and audiences of the in-memory campaign state."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.memory_state import MemoryState
from dsp.state import BILLED, EXPIRED, WON, Reservation, budget_units, money

TTL = 10.0


def res(
    key: str, bid: int, *, campaign: str = "c", ts: float = 0.0, day: int = 0, user: str = "u"
) -> Reservation:
    return Reservation(
        key=(key, key + "-1"), campaign=campaign, bid_micros=bid, ts=ts, day=day, user=user
    )


def k(key: str) -> tuple[str, str]:
    return (key, key + "-1")


def test_units() -> None:
    assert budget_units(1.0) == 1_000_000_000
    assert money(2_000_000) == 0.002  # one impression at a CPM of 2.00


def test_reserve_win_bill_lifecycle() -> None:
    s = MemoryState()
    s.open("c", total=5_000_000, daily=0)
    assert s.reserve(res("a", 2_000_000), now=0, ttl=TTL)
    assert s.reserve(res("b", 2_000_000), now=0, ttl=TTL)
    assert not s.reserve(res("c", 2_000_000), now=0, ttl=TTL)  # 6 > 5 with the bids in flight
    assert s.budget("c", 0).held == 4_000_000
    r = s.win(k("a"), 1_200_000, now=1, ttl=100)
    assert r is not None and r.status == WON and r.held == 1_200_000
    assert s.win(k("a"), 1_200_000, now=1, ttl=100) is None  # repeated
    assert s.budget("c", 0).held == 3_200_000
    r = s.bill(k("a"), 1_200_000)
    assert r is not None and r.status == BILLED
    assert s.bill(k("a"), 1_200_000) is None  # billed once
    view = s.budget("c", 0)
    assert (view.spent, view.held, view.remaining_total) == (1_200_000, 2_000_000, 1_800_000)
    assert s.release(k("b")) is not None and s.release(k("b")) is None
    assert s.budget("c", 0).held == 0
    assert s.shown(k("a")) is not None and s.shown(k("b")) is None  # billed; lost
    assert s.counters("c") == {"wins": 1, "impressions": 1}


def test_billing_before_win_and_late_notices() -> None:
    s = MemoryState()
    s.open("c", total=0, daily=0)
    s.reserve(res("a", 3_000_000), now=0, ttl=TTL)
    assert s.bill(k("a"), 1_000_000) is not None  # the billing notice overtook the win notice
    assert s.win(k("a"), 1_000_000, now=0, ttl=TTL) is None  # and the win changes nothing
    assert s.counters("c")["wins"] == 1
    s.reserve(res("b", 3_000_000), now=0, ttl=TTL)
    expired = s.sweep(TTL)
    assert [r.key for r in expired] == [k("b")] and expired[0].status == EXPIRED
    assert s.budget("c", 0).held == 0
    r = s.bill(k("b"), 2_000_000)  # the exchange billed it after all: it is still spent
    assert r is not None
    assert s.budget("c", 0).spent == 3_000_000
    assert s.counters("c") == {"wins": 2, "impressions": 2, "late": 1}


def test_daily_budget_rolls_over() -> None:
    s = MemoryState()
    s.open("c", total=0, daily=3_000_000)
    s.reserve(res("a", 2_000_000, day=10), now=0, ttl=TTL)
    s.bill(k("a"), 2_000_000)
    assert not s.reserve(res("b", 2_000_000, day=10), now=0, ttl=TTL)
    assert s.reserve(res("c", 2_000_000, day=11), now=0, ttl=TTL)
    view = s.budget("c", 11)
    assert (view.spent, view.spent_today, view.held) == (2_000_000, 0, 2_000_000)
    # yesterday's impression billed today counts in the total only
    s.reserve(res("d", 1, day=10), now=0, ttl=TTL)
    s.bill(k("d"), 1)
    assert s.budget("c", 11).spent_today == 0


def test_frequency_counts_impressions_per_hour_and_day() -> None:
    s = MemoryState()
    s.open("c", total=0, daily=0)
    for i, ts in enumerate((0.0, 100.0, 3700.0)):
        s.reserve(res(f"r{i}", 1, ts=ts, day=0), now=ts, ttl=TTL)
        s.bill(k(f"r{i}"), 1)
        if i == 1:
            assert s.frequency("c", "u", 0, 0) == (2, 2)
    assert s.frequency("c", "u", 1, 0) == (1, 3)  # a new hour, the same day
    assert s.frequency("c", "u", 2, 1) == (0, 0)
    assert s.frequency("c", "other", 0, 0) == (0, 0)
    assert s.last_touch("c", "u") == (3700.0, k("r2"))
    s.reserve(res("lost", 1, ts=3800.0), now=3800, ttl=TTL)
    s.release(k("lost"))
    assert s.frequency("c", "u", 1, 0) == (1, 3)  # a bid is not an impression


def test_audiences() -> None:
    s = MemoryState()
    s.visit("shop", "u", 100.0, "IAB22-4")
    assert s.in_audience("shop", "u", 50.0, frozenset())
    assert not s.in_audience("shop", "u", 150.0, frozenset())
    assert s.in_audience("shop", "u", 50.0, frozenset({"IAB22-4"}))
    assert not s.in_audience("shop", "u", 50.0, frozenset({"IAB20"}))
    s.purchase("shop", "u", 120.0)
    assert not s.in_audience("shop", "u", 0.0, frozenset())
    s.visit("shop", "u", 130.0, None)
    assert s.in_audience("shop", "u", 0.0, frozenset())
    assert not s.in_audience("shop", "u", 0.0, frozenset({"IAB22-4"}))  # that visit was before
    assert not s.in_audience("other", "u", 0.0, frozenset())


def test_memory_is_bounded() -> None:
    s = MemoryState(capacity=10, people=20)
    s.open("c", total=0, daily=0)
    for i in range(50):
        s.reserve(res(f"r{i}", 1, user=f"u{i}"), now=0, ttl=TTL)
        s.bill(k(f"r{i}"), 1)
        s.visit("shop", f"u{i}", 1.0, None)
    assert len(s._done) == 10 and len(s._freq) == 20 and len(s._audience) == 20


# -- never overspent, whatever the order of notices -----------------------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["reserve", "win", "bill", "loss", "sweep", "late_bill"]),
        st.integers(0, 40),  # which bid
        st.integers(1, 3_000_000),  # a bid's price
        st.floats(0.0, 1.0),  # the clearing price as a share of the bid
        st.integers(0, 3),  # seconds that pass
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(ops=OPS, total=st.integers(1, 20_000_000), daily=st.integers(0, 10_000_000))
def test_budget_never_overspent_under_any_interleaving(
    ops: list[tuple[str, int, int, float, int]], total: int, daily: int
) -> None:
    """Bids, wins, bills, losses and expiries in any order, repeated, late or missing: spend never
    exceeds the budget except by bills that came after their bid had expired (which the ledger
    counts, because the exchange charged them), and the hold is exactly what is in flight."""
    s = MemoryState()
    s.open("c", total=total, daily=daily)
    now = 0.0
    bid_of: dict[int, int] = {}
    late = 0
    for op, n, bid, share, dt in ops:
        now += dt
        key = k(f"r{n}")
        if op == "reserve":
            if s.reserve(res(f"r{n}", bid, ts=now), now=now, ttl=TTL):
                bid_of[n] = bid
        elif op == "win" and n in bid_of:
            s.win(key, int(bid_of[n] * share), now=now, ttl=3 * TTL)
        elif op in ("bill", "late_bill") and n in bid_of:
            before = [r for r in s._done.values() if r.key == key and r.status != BILLED]
            r = s.bill(key, int(bid_of[n] * share))
            if r is not None and before:
                late += r.price_micros or 0
        elif op == "loss":
            s.release(key)
        elif op == "sweep":
            s.sweep(now)
        view = s.budget("c", 0)
        in_flight = sum(r.held for r in (*s._pending.values(), *s._won.values()))
        assert view.held == in_flight >= 0
        assert view.spent <= total + late
        if daily:
            assert view.spent_today <= daily + late
        assert view.spent + view.held <= total + late
