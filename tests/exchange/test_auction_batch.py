"""The vectorised auction agrees with the per-imp auction, bid for bid."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from exchange.auction import run_auction
from exchange.auction_batch import second_price_batch
from exchange.bids import Bid
from exchange.openrtb import Imp, parse_bid_request
from tests.exchange.test_auction import make_bid as bid

M = 1_000_000
INC = 10_000


def make_imp(floor_micros: int) -> Imp:
    obj = {"id": "1", "banner": {}, "bidfloor": floor_micros / M}
    imp = parse_bid_request({"id": "r", "imp": [obj]}).imp[0]
    assert imp.floor_micros == floor_micros
    return imp


def make_bid(column: int, price_micros: int) -> Bid:
    """Column ``column``'s bid: its own bidder and seat, so ties are between different buyers."""
    name = f"dsp{column}"
    return bid(price_micros, str(column), seat=name, bidder=name)


def reference(
    row: np.ndarray, floor: int, *, first_price: bool, increment: int = INC
) -> tuple[int, int]:
    """(winning column or -1, price) from exchange.auction.run_auction."""
    bids = [make_bid(j, int(p)) for j, p in enumerate(row) if p > 0]
    result = run_auction(
        make_imp(int(floor)),
        bids,
        at=1 if first_price else 2,
        rng=random.Random(0),
        increment_micros=increment,
    )
    if result.winner is None:
        return -1, 0
    return int(result.winner.id), result.price_micros


def random_cases(seed: int, n: int, bidders: int) -> tuple[np.ndarray, np.ndarray]:
    """Bids on a coarse grid (ties common), with no-bids as 0 or negative."""
    gen = np.random.default_rng(seed)
    bids = gen.integers(1, 12, size=(n, bidders)) * 250_000
    bids[gen.random((n, bidders)) < 0.3] = 0
    bids[gen.random((n, bidders)) < 0.05] = -1
    odd = gen.random((n, bidders)) < 0.2
    bids[odd] = gen.integers(1, 3 * M, size=int(odd.sum()))
    floors = gen.integers(0, 8, size=n) * 250_000
    floors[gen.random(n) < 0.3] = 0
    return bids.astype(np.int64), floors.astype(np.int64)


def check_against_reference(
    bids: np.ndarray,
    floors: np.ndarray,
    winners: np.ndarray,
    prices: np.ndarray,
    *,
    first_price: bool,
    increment: int = INC,
) -> int:
    """Assert agreement row by row; return how many rows had a tie at the top."""
    ties = 0
    for i in range(bids.shape[0]):
        row, floor = bids[i], int(floors[i])
        ref_winner, ref_price = reference(row, floor, first_price=first_price, increment=increment)
        assert prices[i] == ref_price, (row, floor)
        if ref_winner == -1:
            assert winners[i] == -1
            continue
        top = row[ref_winner]
        tied = {int(j) for j in np.flatnonzero(row == top)}
        if len(tied) > 1:
            ties += 1
            assert int(winners[i]) in tied
        else:
            assert winners[i] == ref_winner
    return ties


@pytest.mark.parametrize("first_price", [False, True])
@pytest.mark.parametrize(("seed", "bidders"), [(1, 1), (2, 2), (3, 3), (4, 5), (5, 8)])
def test_agrees_with_run_auction(seed: int, bidders: int, first_price: bool) -> None:
    bids, floors = random_cases(seed, 300, bidders)
    winners, prices = second_price_batch(
        bids, floors, rng=np.random.default_rng(seed), first_price=first_price
    )
    assert winners.dtype == np.int64 and prices.dtype == np.int64
    assert winners.shape == prices.shape == (300,)
    ties = check_against_reference(bids, floors, winners, prices, first_price=first_price)
    if bidders >= 3:
        assert ties > 0  # the cases do exercise the tie-break


def test_agrees_with_run_auction_for_another_increment() -> None:
    bids, floors = random_cases(9, 300, 4)
    winners, prices = second_price_batch(bids, floors, rng=np.random.default_rng(0), increment=0)
    check_against_reference(bids, floors, winners, prices, first_price=False, increment=0)


def test_worked_examples() -> None:
    bids = np.array(
        [
            [3 * M, 2 * M, 0],  # second price: 2.01
            [3 * M, 0, 0],  # lone bid: floor 1 + 0.01
            [1_005_000, 0, 0],  # lone bid capped at its bid
            [2 * M, 2 * M, M],  # tie pays the tied price
            [M // 2, -5, 0],  # below the floor: no sale
            [0, 0, 0],  # no bids
            [2_005_000, 2 * M, 0],  # capped at the winner's bid
            [M, 0, 3 * M],  # the winner may be any column
        ],
        dtype=np.int64,
    )
    floors = np.array([M, M, M, 0, M, 0, 0, 2 * M], dtype=np.int64)
    winners, prices = second_price_batch(bids, floors, rng=np.random.default_rng(0))
    assert prices.tolist() == [2 * M + INC, M + INC, 1_005_000, 2 * M, 0, 0, 2_005_000, 2 * M + INC]
    assert winners[[0, 1, 2, 4, 5, 6, 7]].tolist() == [0, 0, 0, -1, -1, 0, 2]
    assert winners[3] in (0, 1)

    winners, prices = second_price_batch(
        bids, floors, rng=np.random.default_rng(0), first_price=True
    )
    assert prices.tolist() == [3 * M, 3 * M, 1_005_000, 2 * M, 0, 0, 2_005_000, 3 * M]


def test_ties_are_uniform_and_reproducible() -> None:
    bids = np.full((3000, 3), M, dtype=np.int64)
    floors = np.zeros(3000, dtype=np.int64)
    winners, prices = second_price_batch(bids, floors, rng=np.random.default_rng(42))
    assert (prices == M).all()
    counts = np.bincount(winners, minlength=3)
    assert counts.sum() == 3000
    assert (counts > 850).all(), counts  # ~1000 each (sd ~26); a biased pick would fail
    again, _ = second_price_batch(bids, floors, rng=np.random.default_rng(42))
    assert (again == winners).all()
    other, _ = second_price_batch(bids, floors, rng=np.random.default_rng(43))
    assert (other != winners).any()


def test_tie_break_ignores_lower_and_ineligible_columns() -> None:
    bids = np.tile(np.array([M, 2 * M, 0, 2 * M, M // 2], dtype=np.int64), (500, 1))
    floors = np.full(500, M, dtype=np.int64)
    winners, prices = second_price_batch(bids, floors, rng=np.random.default_rng(1))
    assert set(winners.tolist()) == {1, 3}
    assert (prices == 2 * M).all()


def test_empty_batches() -> None:
    rng = np.random.default_rng(0)
    w, p = second_price_batch(np.zeros((0, 3), dtype=np.int64), np.zeros(0, np.int64), rng=rng)
    assert w.shape == p.shape == (0,)
    w, p = second_price_batch(np.zeros((4, 0), dtype=np.int64), np.zeros(4, np.int64), rng=rng)
    assert w.tolist() == [-1] * 4 and p.tolist() == [0] * 4


def test_inputs_are_not_modified() -> None:
    bids, floors = random_cases(3, 50, 4)
    before = bids.copy(), floors.copy()
    second_price_batch(bids, floors, rng=np.random.default_rng(0))
    assert (bids == before[0]).all() and (floors == before[1]).all()


@pytest.mark.parametrize(
    ("bids", "floors", "error"),
    [
        (np.zeros(3, dtype=np.int64), np.zeros(3, dtype=np.int64), ValueError),
        (np.zeros((2, 3), dtype=np.int64), np.zeros(3, dtype=np.int64), ValueError),
        (np.zeros((2, 3), dtype=np.int64), np.zeros((2, 1), dtype=np.int64), ValueError),
        (np.zeros((2, 3)), np.zeros(2, dtype=np.int64), TypeError),
        (np.zeros((2, 3), dtype=np.int64), np.array([0.5, 1.0]), TypeError),
        (np.zeros((2, 3), dtype=np.int64), np.array([0, -1]), ValueError),
    ],
)
def test_bad_inputs_are_rejected(bids: np.ndarray, floors: np.ndarray, error: type) -> None:
    with pytest.raises(error):
        second_price_batch(bids, floors, rng=np.random.default_rng(0))


BIDS = hnp.arrays(
    np.int64,
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6),
    elements=st.integers(-2, 12).map(lambda n: n * 100_000) | st.integers(-M, 2 * M),
)


@settings(max_examples=200, deadline=None)
@given(bids=BIDS, data=st.data(), first_price=st.booleans(), seed=st.integers(0, 2**32))
def test_property_batch_rules(
    bids: np.ndarray, data: st.DataObject, first_price: bool, seed: int
) -> None:
    n = bids.shape[0]
    floors = data.draw(
        hnp.arrays(np.int64, (n,), elements=st.integers(0, 12).map(lambda k: k * 100_000))
    )
    winners, prices = second_price_batch(
        bids, floors, rng=np.random.default_rng(seed), first_price=first_price
    )
    for i in range(n):
        eligible = sorted((int(b) for b in bids[i] if b > 0 and b >= floors[i]), reverse=True)
        if not eligible:
            assert winners[i] == -1 and prices[i] == 0
            continue
        win = int(winners[i])
        assert 0 <= win < bids.shape[1]
        assert bids[i, win] == eligible[0]  # the highest eligible bid wins
        assert floors[i] <= prices[i] <= bids[i, win]
        if first_price:
            assert prices[i] == bids[i, win]
        elif len(eligible) > 1:
            assert prices[i] >= eligible[1]
    check_against_reference(bids, floors, winners, prices, first_price=first_price)
