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
    for bid in bids:
        if bid.dealid is not None:
            deal = imp.deals[bid.dealid]
            if deal.wseat and bid.seat not in deal.wseat:
                losers.append((bid, loss.SEAT_BLOCKED))
            elif bid.price_micros < deal.floor_micros:
                losers.append((bid, loss.BELOW_DEAL_FLOOR))
            else:
                deal_pool.append(bid)
        elif imp.private:
            losers.append((bid, loss.NOT_ALLOWED_IN_PMP))
        elif bid.price_micros < imp.floor_micros:
            losers.append((bid, loss.BELOW_FLOOR))
        else:
            open_pool.append(bid)

    if deal_pool:
        pool = deal_pool
        losers.extend((b, loss.LOST_TO_DEAL) for b in open_pool)
    else:
        pool = open_pool
    if not pool:
        return ImpResult(imp, None, 0, tuple(losers), imp.floor_micros)

    winner, second = _top_two(pool, rng)
    floor = imp.deals[winner.dealid].floor_micros if winner.dealid else imp.floor_micros
    if at == 1:
        price = winner.price_micros
    else:
        base = floor if second is None else max(second.price_micros, floor)
        price = min(base + increment_micros, winner.price_micros)
    losers.extend((b, loss.LOST_TO_HIGHER_BID) for b in pool if b is not winner)
    return ImpResult(imp, winner, price, tuple(losers), winner.price_micros + increment_micros)


def _top_two(pool: Sequence[Bid], rng: random.Random) -> tuple[Bid, Bid | None]:
    """The winner (ties broken at random) and the runner-up (None for a lone bid)."""
    if len(pool) == 1:
        return pool[0], None
    ranked = sorted(pool, key=lambda b: b.price_micros, reverse=True)
    top = ranked[0].price_micros
    n_tied = 1
    while n_tied < len(ranked) and ranked[n_tied].price_micros == top:
        n_tied += 1
    if n_tied > 1:
        k = rng.randrange(n_tied)
        ranked[0], ranked[k] = ranked[k], ranked[0]
    return ranked[0], ranked[1]


def group_by_imp(bids: Sequence[Bid]) -> dict[str, list[Bid]]:
    """Bids keyed by the imp they are for, in arrival order."""
    out: dict[str, list[Bid]] = {}
    for bid in bids:
        out.setdefault(bid.impid, []).append(bid)
    return out
