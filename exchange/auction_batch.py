"""The per-imp auction of :mod:`exchange.auction`, vectorised with numpy for batch simulation.

One row is one auction, one column one bidder; money is integer micro-units of CPM. The rules are
those of :func:`exchange.auction.run_auction` for open bids (no deals, no private auctions):

- a bid is eligible when it is > 0 (0 or negative means "no bid") and >= the row's floor;
- the highest eligible bid wins; ties are broken uniformly at random with the caller's ``rng``;
- second price (the default) pays ``max(second-highest eligible bid, floor) + increment``, never
  more than the winner's bid: a lone bid pays the floor plus the increment (capped at its bid) and
  a tie pays the tied price;
- first price (``first_price=True``) pays the winner's bid;
- a row without an eligible bid is no sale: winner ``-1``, price ``0``.

Use it for batches only: for a single auction one numpy call costs more than plain Python.
"""

from __future__ import annotations

import numpy as np

INCREMENT_MICROS = 10_000  # 0.01 in the exchange currency, as in exchange.auction


def second_price_batch(
    bids: np.ndarray,
    floors: np.ndarray,
    *,
    rng: np.random.Generator,
    increment: int = INCREMENT_MICROS,
    first_price: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``n_auctions`` auctions at once.

    ``bids`` is ``(n_auctions, n_bidders)`` and ``floors`` ``(n_auctions,)``, both integers in
    micro-units; floors must be >= 0. Returns ``(winners, prices)``, both int64 of shape
    ``(n_auctions,)``: the winning column (``-1`` for no sale) and the clearing price (``0`` for
    no sale).
    """
    bids = np.asarray(bids)
    floors = np.asarray(floors)
    if bids.ndim != 2:
        raise ValueError(f"bids must be 2-D (n_auctions, n_bidders), got shape {bids.shape}")
    if floors.shape != (bids.shape[0],):
        raise ValueError(f"floors must have shape ({bids.shape[0]},), got {floors.shape}")
    for name, arr in (("bids", bids), ("floors", floors)):
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{name} must be integer micro-units, not {arr.dtype}")
    bids = bids.astype(np.int64, copy=False)
    floors = floors.astype(np.int64, copy=False)
    if (floors < 0).any():
        raise ValueError("floors must be >= 0")

    n_auctions, n_bidders = bids.shape
    winners = np.full(n_auctions, -1, dtype=np.int64)
    prices = np.zeros(n_auctions, dtype=np.int64)
    if n_auctions == 0 or n_bidders == 0:
        return winners, prices

    eligible = (bids > 0) & (bids >= floors[:, None])
    masked = np.where(eligible, bids, 0)  # 0 sorts below every eligible bid
    top = masked.max(axis=1)
    sold = top > 0
    rows = np.flatnonzero(sold)
    if rows.size == 0:
        return winners, prices

    masked, top, row_floors = masked[rows], top[rows], floors[rows]
    is_top = masked == top[:, None]  # the tied highest (top > 0, so never an ineligible 0)
    n_top = is_top.sum(axis=1)
    # Uniform tie-break: draw the k-th of the tied columns, k uniform in [0, n_top).
    k = rng.integers(0, n_top)
    pick = is_top & (np.cumsum(is_top, axis=1) == (k + 1)[:, None])
    win = pick.argmax(axis=1)

    if first_price:
        price = top
    else:
        runner_up = masked.copy()
        runner_up[np.arange(rows.size), win] = 0
        second = runner_up.max(axis=1)  # 0 when the winner bid alone
        price = np.minimum(np.maximum(second, row_floors) + increment, top)

    winners[rows] = win
    prices[rows] = price
    return winners, prices
