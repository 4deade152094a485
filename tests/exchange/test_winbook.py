"""The win book stays bounded in size and age, keeps no markup, and gives the GC nothing to walk."""

from __future__ import annotations

import dataclasses
import gc
import time

from exchange.bids import parse_bid_response
from exchange.openrtb import parse_bid_request
from exchange.winbook import EXPIRE_PER_ADD, SEGMENT, WinBook

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


def add(book: WinBook, token: str, created: float) -> None:
    book.add(token, "r", BIDS[0], 1_400_000, created)


def test_a_win_keeps_what_beacons_need_and_drops_the_markup() -> None:
    book = WinBook()
    add(book, "t", time.monotonic())
    win = book.get("t")
    assert win is not None
    assert (win.token, win.auction_id, win.price_micros, win.billed, win.clicks) == (
        "t",
        "r",
        1_400_000,
        False,
        0,
    )
    # every field of the bid survives but the markup and the raw dict
    assert win.bid == dataclasses.replace(BIDS[0], adm=None, raw={})
    assert BIDS[0].adm == "<div>ad</div>"  # the original is untouched


def test_bill_once_and_count_clicks() -> None:
    book = WinBook()
    add(book, "t", time.monotonic())
    billed = book.bill("t")
    assert billed is not None and billed.billed
    assert book.bill("t") is None  # billed already
    assert book.get("t").billed  # type: ignore[union-attr]
    assert [book.click("t").clicks for _ in range(3)] == [1, 2, 3]  # type: ignore[union-attr]
    assert book.bill("nope") is None and book.click("nope") is None
    copy = book.get("t")
    assert copy is not None
    copy.clicks = 99  # a copy: the book changes only through bill() and click()
    assert book.get("t").clicks == 3  # type: ignore[union-attr]


def test_wins_in_the_book_are_not_tracked_by_the_garbage_collector() -> None:
    """A full book must not lengthen collections: its wins are untracked after one."""
    book = WinBook(capacity=20_000)
    now = time.monotonic()
    gc.collect()
    before = len(gc.get_objects())
    for i in range(10_000):
        add(book, f"t{i}", now)
    gc.collect()
    assert len(book) == 10_000
    assert len(gc.get_objects()) - before < 100  # not ~10,000 (or 4 per win, as it was)
    assert book.bill("t5") is not None and book.click("t6") is not None
    gc.collect()
    assert len(gc.get_objects()) - before < 100


def test_adomain_and_cat_come_back_as_they_went_in() -> None:
    book = WinBook()
    now = time.monotonic()
    cases = [
        ((), ()),
        (("shoes.example",), ("IAB17",)),
        (("a.example", "b.example", ""), ("IAB1", "IAB1-2")),
        (("odd\x1fdomain",), ("IAB1", "with\x1fseparator")),  # kept as tuples
    ]
    for i, (adomain, cat) in enumerate(cases):
        bid = dataclasses.replace(BIDS[0], adomain=adomain, cat=cat)
        book.add(f"t{i}", "r", bid, 1_000_000, now)
        win = book.get(f"t{i}")
        assert win is not None and (win.bid.adomain, win.bid.cat) == (adomain, cat)


def test_a_win_is_untracked_by_the_first_young_collection() -> None:
    """One young collection is enough: a nested tuple (adomain) would keep the win tracked into
    the middle generation, whose collections would then walk every win of the last second."""
    book = WinBook()
    now = time.monotonic()
    bid = BIDS[0]
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(1_000):  # each bid with tuples of its own, as parsed from its response
            fresh = dataclasses.replace(bid, adomain=(f"a{i}.example", "b.example"), cat=(f"{i}",))
            book.add(f"t{i}", "r", fresh, 1_000_000, now)
        gc.collect(0)
        tracked = sum(gc.is_tracked(p) for seg in book._segments for p in seg.values())
    finally:
        if was_enabled:
            gc.enable()
    assert tracked == 0


def test_capacity_drops_the_oldest() -> None:
    book = WinBook(capacity=3, ttl_s=60)
    now = time.monotonic()
    for i in range(5):
        add(book, f"t{i}", now)
    assert len(book) == 3 and book.evicted == 2
    assert book.get("t0") is None and book.get("t1") is None
    assert book.get("t4") is not None


def test_expired_wins_go_on_insert_and_are_not_found() -> None:
    book = WinBook(capacity=100, ttl_s=10)
    now = time.monotonic()
    add(book, "old", now - 30)
    add(book, "older-but-after", now - 5)
    assert book.get("older-but-after") is not None
    add(book, "new", now)
    assert book.get("old") is None
    assert len(book) == 2 and book.evicted == 1
    stale = WinBook(capacity=100, ttl_s=10)
    add(stale, "x", now - 11)  # expired as soon as it is looked up
    assert stale.get("x") is None


def test_no_dict_of_the_book_grows_past_a_segment() -> None:
    """A big dict rebuilds its whole table now and then as wins come and go (10-25 ms for
    100,000): the book keeps its wins in dicts of at most SEGMENT, and drops the emptied ones."""
    capacity = 3 * SEGMENT + 100
    book = WinBook(capacity=capacity, ttl_s=60)
    now = time.monotonic()
    total = 4 * capacity
    for i in range(total):
        add(book, f"t{i}", now)
        assert max(len(segment) for segment in book._segments) <= SEGMENT
    assert len(book) == capacity and book.evicted == total - capacity
    assert len(book._segments) <= capacity // SEGMENT + 2
    assert sum(len(segment) for segment in book._segments) == capacity
    oldest_kept = total - capacity
    assert book.get(f"t{oldest_kept - 1}") is None and book.get(f"t{oldest_kept}") is not None
    # beacons reach wins in any segment, and change only that win
    old, new = f"t{oldest_kept}", f"t{total - 1}"
    assert book.bill(old) is not None and book.click(old).clicks == 1  # type: ignore[union-attr]
    assert book.get(old).billed and not book.get(new).billed  # type: ignore[union-attr]
    assert sum(len(segment) for segment in book._segments) == capacity


def test_a_quiet_spell_past_the_ttl_does_not_free_the_book_in_one_add() -> None:
    book = WinBook(capacity=1_000, ttl_s=10)
    now = time.monotonic()
    for i in range(50):
        add(book, f"old{i}", now - 100)
    add(book, "new", now)
    assert book.evicted == EXPIRE_PER_ADD and len(book) == 51 - EXPIRE_PER_ADD
    assert book.get("old49") is None  # expired: never found, though not yet dropped
    for i in range(50):
        add(book, f"more{i}", now)
    assert book.evicted == 50 and len(book) == 51
    assert book.get("new") is not None


def test_a_token_added_again_replaces_its_win() -> None:
    book = WinBook(capacity=10, ttl_s=60)
    now = time.monotonic()
    add(book, "t", now)
    book.add("t", "r2", BIDS[0], 2_000_000, now)
    assert len(book) == 1 and book.get("t").price_micros == 2_000_000  # type: ignore[union-attr]
    for i in range(20):
        add(book, f"x{i}", now)
    assert len(book) == 10 and book.get("t") is None
