"""The auction of one imp: a pure function of the bids, the imp's floors and the rules.

Second price (OpenRTB ``at=2``, the default): the highest eligible bid wins and pays
``max(second-highest eligible bid, floor) + increment``, never more than its own bid; a lone bid
pays the floor plus the increment (capped at its bid); a tie pays the tied price. First price
(``at=1``): the winner pays its bid. Ties are broken with the caller's seeded RNG.

Eligibility: the bid's price reaches the floor (a deal bid: its deal's floor, which replaces the
imp's), its seat is allowed by
the deal's ``wseat``, and in a private auction only deal bids compete. Deals have priority: when any
eligible deal bid exists, the deal bids are the auction and every open bid loses with code 103.
Money is in integer micro-units of CPM, so every sum balances exactly.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from exchange import loss
from exchange.bids import Bid
from exchange.openrtb import Imp

INCREMENT_MICROS = 10_000  # 0.01 in the exchange currency


@dataclass(slots=True, frozen=True)
class ImpResult:
    """What one imp's auction decided."""

    imp: Imp
    winner: Bid | None
    price_micros: int  # clearing price (CPM, micro-units); 0 when there is no winner
    losers: tuple[tuple[Bid, int], ...]  # each losing bid with its loss reason code
    min_to_win_micros: int  # the lowest bid that would have won: for ${AUCTION_MIN_TO_WIN}


def run_auction(
    imp: Imp,
    bids: Sequence[Bid],
    *,
    at: int = 2,
    rng: random.Random,
    increment_micros: int = INCREMENT_MICROS,
) -> ImpResult:
    """Auction ``imp`` among ``bids`` (already validated and all for this imp)."""
    losers: list[tuple[Bid, int]] = []
    deal_pool: list[Bid] = []
    open_pool: list[Bid] = []
    floor = imp.floor_micros
    private = imp.private
    for bid in bids:
        if bid.dealid is not None:
            deal = imp.deals[bid.dealid]
            if deal.wseat and bid.seat not in deal.wseat:
                losers.append((bid, loss.SEAT_BLOCKED))
            elif bid.price_micros < deal.floor_micros:
                losers.append((bid, loss.BELOW_DEAL_FLOOR))
            else:
                deal_pool.append(bid)
        elif private:
            losers.append((bid, loss.NOT_ALLOWED_IN_PMP))
        elif bid.price_micros < floor:
            losers.append((bid, loss.BELOW_FLOOR))
        else:
            open_pool.append(bid)

    if deal_pool:
        pool = deal_pool
        losers.extend((b, loss.LOST_TO_DEAL) for b in open_pool)
    else:
        pool = open_pool
    if not pool:
        return ImpResult(imp, None, 0, tuple(losers), floor)

    winner, second = _top_two(pool, rng)
    if winner.dealid:
        floor = imp.deals[winner.dealid].floor_micros
    if at == 1:
        price = winner.price_micros
    else:
        base = floor if second is None else max(second, floor)
        price = min(base + increment_micros, winner.price_micros)
    lost = loss.LOST_TO_HIGHER_BID
    losers += [(b, lost) for b in pool if b is not winner]
    return ImpResult(imp, winner, price, tuple(losers), winner.price_micros + increment_micros)


def _top_two(pool: Sequence[Bid], rng: random.Random) -> tuple[Bid, int | None]:
    """The winner and the runner-up's price (None for a lone bid). Tied top bids: the winner is
    the ``rng.randrange(n_tied)``-th of them in arrival order (the RNG is drawn only for a tie)."""
    if len(pool) == 1:
        return pool[0], None
    prices = [b.price_micros for b in pool]
    ranked = sorted(prices, reverse=True)
    top, second = ranked[0], ranked[1]
    if second != top:
        return pool[prices.index(top)], second
    n_tied = 2
    while n_tied < len(ranked) and ranked[n_tied] == top:
        n_tied += 1
    k = rng.randrange(n_tied)
    return [b for b in pool if b.price_micros == top][k], second


def group_by_imp(bids: Sequence[Bid]) -> dict[str, list[Bid]]:
    """Bids keyed by the imp they are for, in arrival order."""
    out: dict[str, list[Bid]] = {}
    for bid in bids:
        out.setdefault(bid.impid, []).append(bid)
    return out
