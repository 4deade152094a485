"""The win book stays bounded in size and age, and keeps no markup."""

from __future__ import annotations

import time

from exchange.bids import parse_bid_response
from exchange.openrtb import parse_bid_request
from exchange.winbook import Win, WinBook, slim

REQUEST = parse_bid_request({"id": "r", "imp": [{"id": "1", "banner": {"w": 1, "h": 1}}]})
BIDS, _ = parse_bid_response(
    {
        "seatbid": [
            {
                "bid": [
                    {
                        "id": "b",
                        "impid": "1",
                        "price": 1.5,
                        "adm": "<div>ad</div>",
                        "burl": "http://d/b",
                    }
                ]
            }
        ]
    },
    REQUEST,
    "dsp",
)


def _win(token: str, created: float) -> Win:
    return Win(token, "r", slim(BIDS[0]), 1_500_000, created)


def test_slim_bids_keep_what_beacons_need_and_drop_the_markup() -> None:
    bid = slim(BIDS[0])
    assert (bid.id, bid.impid, bid.burl, bid.price_micros, bid.bidder) == (
        "b",
        "1",
        "http://d/b",
        1_500_000,
        "dsp",
    )
    assert bid.adm is None and bid.raw == {}
    assert BIDS[0].adm == "<div>ad</div>"  # the original is untouched


def test_capacity_drops_the_oldest() -> None:
    book = WinBook(capacity=3, ttl_s=60)
    now = time.monotonic()
    for i in range(5):
        book.add(_win(f"t{i}", now))
    assert len(book) == 3 and book.evicted == 2
    assert book.get("t0") is None and book.get("t1") is None
    assert book.get("t4") is not None


def test_expired_wins_go_on_insert_and_are_not_found() -> None:
    book = WinBook(capacity=100, ttl_s=10)
    now = time.monotonic()
    book.add(_win("old", now - 30))
    book.add(_win("older-but-after", now - 5))
    assert book.get("older-but-after") is not None
    book.add(_win("new", now))
    assert book.get("old") is None
    assert len(book) == 2 and book.evicted == 1
    stale = WinBook(capacity=100, ttl_s=10)
    stale.add(_win("x", now - 11))  # expired as soon as it is looked up
    assert stale.get("x") is None
