"""Events of the running exchange: one record per auction, and impressions, clicks, conversions, notices.

The exchange hands each finished auction, billed impression and click to its *listeners*
(:class:`Listener`, ``Exchange(listeners=...)``). :class:`EventRecorder` is the listener that feeds
an event log: on the request path it only stamps the time and queues the objects as they are
(:meth:`EventSink.emit`, a bounded append); the JSON records are built later, off the request path,
by :func:`encode`. One JSON object per line, ``type`` first::

    auction     ts (arrival, unix s), id (the request id), token (the exchange's auction id),
                site, domain, publisher, user, sim_ts (the simulated time, when the request
                carries one), ms (duration), filled,
                bidders: [{name, result (bid|nobid|timeout|error|invalid), ms, reason?,
                           bids?: [{id, imp, price, seat, crid, deal?}],
                           dropped?: [{id, imp, code, reason}]}],
                imps: [{id, slot, floor, winner, seat?, bid?, price?,
                        losers: [{bidder, bid, price, code}]}]
    impression  ts, auction, token, imp, bidder, seat, bid, crid, price (CPM), spend, revenue
                (what this impression cost the bidder and earned the publisher, currency units)
    click       ts, auction, token, imp, bidder, n (clicks on this ad so far)
    conversion  ts, auction, token, imp, bidder, value
    notice      ts, kind (win|loss|billing|click), result (queued|blocked|dropped), url

Prices are CPM in the exchange currency, times are unix seconds, latencies milliseconds.
docs/observability.md shows an example of each line.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from exchange.openrtb import MICROS

if TYPE_CHECKING:
    from exchange.bids import Bid
    from exchange.engine import AuctionResult
    from exchange.winbook import Win

AUCTION, IMPRESSION, CLICK, CONVERSION, NOTICE = (
    "auction",
    "impression",
    "click",
    "conversion",
    "notice",
)
TYPES = (AUCTION, IMPRESSION, CLICK, CONVERSION, NOTICE)

#: What an event is while it waits in the queue: (type, unix time, the object, extra).
Pending = tuple[str, float, Any, Any]


class Listener(Protocol):
    """What the exchange tells a listener, right after the fact, on the request path: keep it cheap
    and never raise."""

    def on_auction(self, result: AuctionResult) -> None: ...

    def on_impression(self, win: Win) -> None: ...

    def on_click(self, win: Win) -> None: ...


class EventSink(Protocol):
    def emit(self, event: Pending) -> bool: ...


class EventRecorder:
    """The listener that queues every event for an :class:`~exchange.eventlog.EventLog`.

    Conversions and notices do not pass through the exchange: the SSP's conversion beacon and
    :class:`~exchange.eventlog.LoggedNoticeSender` call :meth:`on_conversion` / :meth:`on_notice`.
    """

    def __init__(self, sink: EventSink) -> None:
        self.sink = sink

    def on_auction(self, result: AuctionResult) -> None:
        self.sink.emit((AUCTION, time.time(), result, None))

    def on_impression(self, win: Win) -> None:
        self.sink.emit((IMPRESSION, time.time(), win, None))

    def on_click(self, win: Win) -> None:
        self.sink.emit((CLICK, time.time(), win, win.clicks))

    def on_conversion(self, win: Win, value: float | None) -> None:
        self.sink.emit((CONVERSION, time.time(), win, value))

    def on_notice(self, kind: str, url: str, result: str) -> None:
        self.sink.emit((NOTICE, time.time(), (kind, url), result))


# -- records -----------------------------------------------------------------------------------


def encode(event: Pending, *, fee_bps: int = 0) -> dict[str, Any]:
    """The JSON record of a queued event (called off the request path)."""
    kind, ts, obj, extra = event
    if kind == AUCTION:
        return auction_record(obj, ts)
    if kind == NOTICE:
        notice_kind, url = obj
        return {"type": NOTICE, "ts": ts, "kind": notice_kind, "result": extra, "url": url}
    win: Win = obj
    bid = win.bid
    out: dict[str, Any] = {
        "type": kind,
        "ts": ts,
        "auction": win.auction_id,
        "token": win.token,
        "imp": bid.impid,
        "bidder": bid.bidder,
    }
    if kind == IMPRESSION:
        price = win.price_micros
        fee = price * fee_bps // 10_000
        out.update(
            seat=bid.seat,
            bid=bid.id,
            crid=bid.crid,
            price=price / MICROS,
            spend=price / 1000 / MICROS,
            revenue=(price - fee) / 1000 / MICROS,
        )
    elif kind == CLICK:
        out["n"] = extra
    else:
        out["value"] = extra
    return out


def auction_record(result: AuctionResult, end_ts: float) -> dict[str, Any]:
    """One auction as a record: who was called, what each did, who won at what price.

    Written for speed (it runs for every auction, ~6 us): literal dicts, no helper calls.
    """
    request = result.request
    site = request.site or request.app or {}
    publisher = site.get("publisher")
    user = request.user
    bidders = []
    for o in result.outcomes:
        entry: dict[str, Any] = {
            "name": o.bidder,
            "result": o.result,
            "ms": round(o.latency * 1000, 3),
        }
        if o.reason:
            entry["reason"] = o.reason
        if o.bids:
            entry["bids"] = [_bid(b) for b in o.bids]
        if o.dropped:
            entry["dropped"] = [
                {"id": d.bid_id, "imp": d.impid, "code": d.code, "reason": d.reason}
                for d in o.dropped
            ]
        bidders.append(entry)
    imps = []
    filled = False
    for res in result.imps:
        imp = res.imp
        w = res.winner
        out: dict[str, Any]
        if w is None:
            out = {"id": imp.id, "slot": imp.tagid, "floor": imp.floor_micros / MICROS}
            out["winner"] = None
        else:
            filled = True
            out = {
                "id": imp.id,
                "slot": imp.tagid,
                "floor": imp.floor_micros / MICROS,
                "winner": w.bidder,
                "seat": w.seat,
                "bid": w.id,
                "price": res.price_micros / MICROS,
            }
        out["losers"] = [
            {"bidder": b.bidder, "bid": b.id, "price": b.price_micros / MICROS, "code": code}
            for b, code in res.losers
        ]
        imps.append(out)
    record: dict[str, Any] = {
        "type": AUCTION,
        "ts": round(end_ts - result.duration, 6),
        "id": request.id,
        "token": result.token,
        "site": site.get("id"),
        "domain": site.get("domain"),
        "publisher": publisher.get("id") if isinstance(publisher, dict) else None,
        "user": user.get("id") if user else None,
        "ms": round(result.duration * 1000, 3),
        "filled": filled,
        "bidders": bidders,
        "imps": imps,
    }
    if request.ts is not None:
        record["sim_ts"] = request.ts
    return record


def _bid(b: Bid) -> dict[str, Any]:
    out = {"id": b.id, "imp": b.impid, "price": b.price_micros / MICROS, "seat": b.seat}
    out["crid"] = b.crid
    if b.dealid:
        out["deal"] = b.dealid
    return out


# -- reading -----------------------------------------------------------------------------------


def with_backups(path: str | Path) -> list[Path]:
    """``path`` preceded by its rotated backups (``path.N`` ... ``path.1``), oldest first."""
    path = Path(path)
    backups: list[tuple[int, Path]] = []
    prefix = path.name + "."
    for p in path.parent.iterdir() if path.parent.is_dir() else ():
        suffix = p.name[len(prefix) :]
        if p.name.startswith(prefix) and suffix.isdigit():
            backups.append((int(suffix), p))
    return [p for _, p in sorted(backups, reverse=True)] + [path]


def read_events(paths: Iterable[str | Path]) -> Iterator[dict[str, Any]]:
    """The records of event log files, in order; a truncated last line (a crash) is skipped."""
    for path in paths:
        with Path(path).open("rb") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(record, dict):
                    yield record
