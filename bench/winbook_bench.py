"""The win book's pauses: every add timed, the book (exchange.winbook) against one OrderedDict.

The SSP keeps each win in its win book until the beacons come (up to ``ssp.max_wins``, 100,000,
for ``ssp.win_ttl_s``). The book used to be one ``OrderedDict``: at a steady 100,000 wins, its
table is rebuilt every 74,762 adds, copying every entry while the event loop waits. The baseline
here is that book (the same packed wins in one ``OrderedDict``, the oldest dropped as each new one
comes); next to it, :class:`exchange.winbook.WinBook`, which keeps its wins in segments of
:data:`exchange.winbook.SEGMENT`. Both start full (not timed), then take ``--adds`` wins, each add
timed on its own; rounds alternate between the two, and the figures are the medians over rounds
(the machine is shared and noisy). Automatic garbage collection is off, as in the SSP.

Reported per book: the mean add (ns), its 99.99th percentile and maximum (us), how many adds took
over 1 ms, and the mean lookup (ns) of a win of the last 1,000 (as a beacon soon after its win
finds it), of any win in the book, and of an unknown token; a lookup returns a copy of the win.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import orjson

from bench.report import machine
from exchange.bids import Bid
from exchange.winbook import WinBook, _pack, _unpack  # the baseline stores the same tuples

BID = Bid(
    "dsp", "seat", "bid-1", "1", 1_500_000, None, "http://d/n", "http://d/b", None, "ad", "cr",
    None, ("shoes.example",), ("IAB17",), 300, 250, None, "USD", {},
)  # fmt: skip


class OrderedBook:
    """The baseline: the win book as one OrderedDict (its code before the segments)."""

    def __init__(self, *, capacity: int, ttl_s: float) -> None:
        self.capacity = capacity
        self.ttl_s = ttl_s
        self._wins: OrderedDict[str, tuple[Any, ...]] = OrderedDict()

    def add(self, token: str, auction_id: str, bid: Bid, price_micros: int, created: float) -> None:
        wins = self._wins
        wins[token] = _pack(auction_id, bid, price_micros, created)
        limit = created - self.ttl_s
        while len(wins) > self.capacity or next(iter(wins.values()))[0] < limit:
            wins.popitem(last=False)

    def get(self, token: str) -> tuple[Any, ...] | None:
        packed = self._wins.get(token)
        if packed is None or time.monotonic() - packed[0] > self.ttl_s:
            return None
        return _unpack(token, packed)


def run_round(book: Any, capacity: int, adds: int, lookups: int) -> dict[str, float]:
    """Fill ``book`` to ``capacity``, then time ``adds`` adds one by one and some lookups."""
    now = time.monotonic()
    add: Callable[..., None] = book.add
    for i in range(capacity):
        add(f"fill-{i:x}", "auction", BID, 1_400_000, now)
    took = np.empty(adds)
    clock = time.perf_counter
    for i in range(adds):
        token = f"tok-{i:x}"
        t0 = clock()
        add(token, "auction", BID, 1_400_000, now)
        took[i] = clock() - t0
    get = book.get
    kept = min(capacity, adds)
    rng = np.random.default_rng(1)
    figures = {}
    for kind, ages in (
        ("get_recent_ns", rng.integers(0, min(1000, kept), lookups)),  # a beacon soon after
        ("get_any_ns", rng.integers(0, kept, lookups)),  # any win in the book
    ):
        tokens = [f"tok-{adds - 1 - int(age):x}" for age in ages]
        t0 = clock()
        for token in tokens:
            get(token)
        figures[kind] = (clock() - t0) / lookups * 1e9
    t0 = clock()
    for _ in range(lookups):
        get("unknown")
    figures["get_unknown_ns"] = (clock() - t0) / lookups * 1e9
    return {
        "mean_add_ns": float(took.mean() * 1e9),
        "p9999_add_us": float(np.percentile(took, 99.99) * 1e6),
        "max_add_us": float(took.max() * 1e6),
        "adds_over_1ms": int((took > 0.001).sum()),
        **figures,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.winbook_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--capacity", type=int, default=100_000, help="wins kept (ssp.max_wins)")
    parser.add_argument(
        "--adds",
        type=int,
        default=300_000,
        help="timed adds per round (default 300,000: 4 rebuilds of the baseline's table)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each book (default 3)")
    parser.add_argument("--lookups", type=int, default=100_000, help="timed lookups per round")
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU (default: none)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    args = parser.parse_args(argv)
    if args.capacity < 1 or args.adds < 1 or args.rounds < 1 or args.lookups < 1:
        parser.error("--capacity, --adds, --rounds and --lookups must be >= 1")
    info = machine()  # before pinning, which would make it report one CPU
    if args.cpu is not None:
        try:
            os.sched_setaffinity(0, {args.cpu})
        except (AttributeError, OSError) as exc:
            parser.error(f"--cpu {args.cpu}: {exc}")
    books: dict[str, Callable[[], Any]] = {
        "baseline (one OrderedDict)": lambda: OrderedBook(capacity=args.capacity, ttl_s=3600),
        "WinBook (segments)": lambda: WinBook(capacity=args.capacity, ttl_s=3600),
    }
    results: dict[str, list[dict[str, float]]] = {name: [] for name in books}
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for r in range(args.rounds):
            for name, make in books.items():
                print(f"round {r + 1}/{args.rounds}: {name}", file=sys.stderr, flush=True)
                book = make()
                results[name].append(run_round(book, args.capacity, args.adds, args.lookups))
                del book
                gc.collect()
    finally:
        if was_enabled:
            gc.enable()
    medians = {
        name: {k: statistics.median(run[k] for run in runs) for k in runs[0]}
        for name, runs in results.items()
    }
    base, new = medians.values()
    print(
        f"win book: {args.capacity:,} wins, {args.adds:,} timed adds a round, "
        f"medians of {args.rounds} alternated rounds"
    )
    print(
        f"{'':28}{'add ns':>8}{'p99.99 us':>11}{'max us':>9}{'>1 ms':>7}"
        f"{'get recent':>12}{'get any':>9}{'unknown':>9}"
    )
    for name, m in medians.items():
        print(
            f"{name:28}{m['mean_add_ns']:8.0f}{m['p9999_add_us']:11.1f}{m['max_add_us']:9.0f}"
            f"{m['adds_over_1ms']:7.0f}{m['get_recent_ns']:12.0f}{m['get_any_ns']:9.0f}"
            f"{m['get_unknown_ns']:9.0f}"
        )
    print(
        f"ratios, WinBook / baseline: add {new['mean_add_ns'] / base['mean_add_ns']:.2f}, "
        f"max add {new['max_add_us'] / base['max_add_us']:.3f}"
    )
    if args.json:
        out = {"command": " ".join(sys.argv), "machine": info, "options": vars(args)}
        out |= {"medians": medians, "rounds": results}
        with open(args.json, "wb") as f:
            f.write(orjson.dumps(out, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
