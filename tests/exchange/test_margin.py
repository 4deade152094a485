"""The adaptive deadline margin: the floor when the exchange is on time, more when it is not."""

from __future__ import annotations

import pytest

from exchange.margin import AdaptiveMargin
from exchange.settings import ExchangeSettings


def test_a_punctual_exchange_keeps_the_floor() -> None:
    m = AdaptiveMargin(floor_s=0.005, cap_s=0.015, every=10)
    for _ in range(100):
        m.observe(0.0003)
    assert m.current == 0.005


def test_the_margin_follows_a_high_quantile_of_overshoots_up_to_the_cap() -> None:
    m = AdaptiveMargin(floor_s=0.005, cap_s=0.015, window=1000, every=100)
    for i in range(1000):
        m.observe(0.008 if i % 50 == 0 else 0.001)  # 2% of auctions finish 8 ms late
    assert m.current == pytest.approx(0.008)
    for _ in range(1000):
        m.observe(0.040)  # a machine so busy that everything is 40 ms late
    assert m.current == 0.015  # bidders keep at least tmax - cap


def test_old_overshoots_leave_the_window() -> None:
    m = AdaptiveMargin(floor_s=0.005, cap_s=0.015, window=100, every=10)
    for _ in range(100):
        m.observe(0.012)
    assert m.current == pytest.approx(0.012)
    for _ in range(100):
        m.observe(0.0)
    assert m.current == 0.005


def test_the_margin_updates_only_every_n_observations() -> None:
    m = AdaptiveMargin(floor_s=0.005, cap_s=0.015, every=4)
    for _ in range(3):
        m.observe(0.010)
    assert m.current == 0.005
    m.observe(0.010)
    assert m.current == pytest.approx(0.010)


def test_bad_margins_are_refused() -> None:
    with pytest.raises(ValueError):
        AdaptiveMargin(floor_s=0.02, cap_s=0.01)
    with pytest.raises(ValueError):
        AdaptiveMargin(floor_s=0.0, cap_s=0.01, quantile=0)
    with pytest.raises(ValueError, match="margin_max_ms"):
        ExchangeSettings(tmax_ms=100, margin_max_ms=100)
