"""Auction theory through the simulator's batch auction (exchange.auction_batch), fixed seeds."""

from __future__ import annotations

import pytest

from gavel.sim.theory import simulate_revenue

N = 200_000


@pytest.mark.parametrize("n", [2, 3, 5])
def test_second_price_revenue_is_n_minus_1_over_n_plus_1(n: int) -> None:
    est = simulate_revenue(n, samples=N, seed=n)
    assert est.covers((n - 1) / (n + 1)), est
    assert est.half_width < 0.005


def test_reserve_half_with_two_bidders() -> None:
    est = simulate_revenue(2, samples=N, seed=11, reserve=0.5)
    assert est.covers(5 / 12), est
    # unsold with probability 1/4: binomial CI
    assert abs(est.unsold - 0.25) <= 3.29 * (0.25 * 0.75 / N) ** 0.5


@pytest.mark.parametrize("n", [2, 4])
def test_first_price_equilibrium_revenue_equivalence(n: int) -> None:
    first = simulate_revenue(n, samples=N, seed=100 + n, first_price=True)
    assert first.covers((n - 1) / (n + 1)), first
    second = simulate_revenue(n, samples=N, seed=200 + n)
    assert abs(first.mean - second.mean) <= first.half_width + second.half_width
