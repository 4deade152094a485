"""The adaptive deadline margin: the floor when the exchange is on time, the longest recent
overshoot when it is not."""

from __future__ import annotations

import pytest

from exchange.margin import AdaptiveMargin
from exchange.settings import ExchangeSettings


def test_a_punctual_exchange_keeps_the_floor() -> None:
    m = AdaptiveMargin(floor_s=0.005, cap_s=0.015)
    for i in range(100):
        m.observe(0.0003, 100.0 + i * 0.01)
    assert m.current == 0.005


def test_the_margin_rises_at_once_to_the_longest_overshoot_up_to_the_cap() -> None:
    m = AdaptiveMargin(floor_s=0.005, cap_s=0.015)
    for i in range(1000):
        m.observe(0.001, 100.0 + i * 0.001)
    assert m.current == 0.005
    m.observe(0.008, 101.0)  # one stall: the next auction's cutoff already allows for it
    assert m.current == pytest.approx(0.008)
    m.observe(0.004, 101.001)
    assert m.current == pytest.approx(0.008)  # the longest, not the latest
    m.observe(0.040, 101.002)  # a machine so busy that an auction is 40 ms late
    assert m.current == 0.015  # bidders keep at least tmax - cap


def test_an_overshoot_is_remembered_for_the_horizon_then_ages_out() -> None:
    m = AdaptiveMargin(floor_s=0.005, cap_s=0.015, horizon_s=10.0, slots=10)
    m.observe(0.012, 100.5)
    for t in range(101, 110):  # 9 more slots of punctual auctions: still within the horizon
        m.observe(0.001, t + 0.5)
    assert m.current == pytest.approx(0.012)
    m.observe(0.001, 110.5)  # the stall's slot leaves
    assert m.current == 0.005


def test_a_quiet_spell_empties_the_horizon_at_once() -> None:
    m = AdaptiveMargin(floor_s=0.005, cap_s=0.015, horizon_s=10.0, slots=10)
    m.observe(0.014, 100.0)
    m.observe(0.002, 500.0)  # the next auction minutes later
    assert m.current == 0.005


def test_a_busy_loop_keeps_a_longer_margin_before_any_stall() -> None:
    m = AdaptiveMargin(floor_s=0.005, cap_s=0.015, per_load_s=0.003)
    m.load(0.5)  # 3 ms: under the floor
    assert m.current == 0.005
    m.load(0.8)  # 3 ms * 0.8 / 0.2
    assert m.current == pytest.approx(0.012)
    assert m.for_load == pytest.approx(0.012)
    m.load(0.95)
    assert m.current == 0.015  # bidders keep at least tmax - cap
    m.load(1.0)  # a share of 1 (or more, from rounding) is not a division by zero
    assert m.current == 0.015
    m.load(0.0)
    assert m.current == 0.005


def test_the_margin_is_the_larger_of_the_load_and_the_overshoots() -> None:
    m = AdaptiveMargin(floor_s=0.005, cap_s=0.015, horizon_s=10.0, slots=10, per_load_s=0.003)
    m.load(0.75)  # 9 ms
    m.observe(0.007, 100.0)  # within the margin the load set: no change
    assert m.current == pytest.approx(0.009)
    m.observe(0.013, 100.1)
    assert m.current == pytest.approx(0.013)
    m.load(0.5)  # a quieter loop does not forget the overshoot
    assert m.current == pytest.approx(0.013)
    m.observe(0.001, 111.0)  # the overshoot ages out: the load's margin again
    assert m.current == 0.005
    m.load(0.8)
    m.observe(0.001, 200.0)  # a new slot keeps the load's margin
    assert m.current == pytest.approx(0.012)


def test_no_margin_per_load_ignores_the_load() -> None:
    m = AdaptiveMargin(floor_s=0.005, cap_s=0.015)
    m.load(0.9)
    assert m.current == 0.005


def test_bad_margins_are_refused() -> None:
    with pytest.raises(ValueError):
        AdaptiveMargin(floor_s=0.02, cap_s=0.01)
    with pytest.raises(ValueError, match="horizon"):
        AdaptiveMargin(floor_s=0.0, cap_s=0.01, horizon_s=0)
    with pytest.raises(ValueError, match="horizon"):
        AdaptiveMargin(floor_s=0.0, cap_s=0.01, slots=0)
    with pytest.raises(ValueError, match="margin per load"):
        AdaptiveMargin(floor_s=0.0, cap_s=0.01, per_load_s=-0.001)
    with pytest.raises(ValueError, match="margin_max_ms"):
        ExchangeSettings(tmax_ms=100, margin_max_ms=100)
    with pytest.raises(ValueError, match="margin_per_load_ms"):
        ExchangeSettings(margin_per_load_ms=-1)
