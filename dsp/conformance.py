"""``check_bidder``: does a bidder keep the Bidder contract? (scikit-learn's ``check_estimator``.)

Use it from your own tests::

    from dsp.conformance import check_bidder

    def test_my_bidder_conforms():
        check_bidder(MyBidder(margin=0.1))          # an instance (rebuilt from its parameters)
        check_bidder(lambda: MyBidder(margin=0.1))  # or a factory

It raises AssertionError with a message saying what broke:

- **deterministic**: the same ``reset(seed)`` gives the same answers to the same requests (and the
  same feedback), on the same object and on a fresh one;
- **the request is not mutated**: ``request.raw`` is deep-compared before and after ``bid``;
- **valid bids**: every bid survives the exchange's checks (:func:`exchange.bids.parse_bid_response`:
  id, impid of the request, price > 0, accepted currency, markup, seat and advertiser and category
  blocks), reaches its imp's floor (its deal's floor for a deal bid), and bids in a private
  auction carry a deal of the imp;
- **parameters round-trip**: ``type(b)(**b.get_params()).get_params() == b.get_params()``;
- **hooks do not fail**: every other answer's first bid gets win, billing and click notices, every
  other bid a loss notice.

``requests`` (BidRequest objects or raw dicts) default to :data:`DEFAULT_REQUESTS`: one per slot of
the default world with users, segments, devices and places, plus a multi-imp request, blocked
categories and advertisers, a foreign currency, a private auction and a request without user or
site. They carry an event time (``ext.gavel.ts``), so bidders on a simulated clock are repeatable.
"""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from exchange.bids import parse_bid_response
from exchange.errors import InvalidResponse
from exchange.feedback import BILLING, CLICK, LOSS, WIN, AuctionEvent, deliver
from exchange.openrtb import BidRequest, parse_bid_request

log = logging.getLogger(__name__)

#: Wednesday 2025-06-04 17:30 UTC.
TS = 1_749_058_200.0


def _request(
    rid: str,
    *,
    site: tuple[str, str] | None,
    imps: list[tuple[int, int, float]],
    user: str | None = "u1",
    segments: Sequence[str] = (),
    device: dict[str, Any] | None = None,
    geo: dict[str, Any] | None = None,
    ts: float = TS,
    **top: Any,
) -> dict[str, Any]:
    req: dict[str, Any] = {
        "id": rid,
        "imp": [
            {
                "id": str(i + 1),
                "banner": {"w": w, "h": h, "format": [{"w": w, "h": h}], "pos": 1},
                "bidfloor": floor,
                "bidfloorcur": "USD",
            }
            for i, (w, h, floor) in enumerate(imps)
        ],
        "at": 2,
        "tmax": 80,
        "cur": ["USD"],
        "ext": {"gavel": {"ts": ts}},
    }
    if site is not None:
        req["site"] = {"id": site[0], "domain": f"{site[0]}.example", "cat": [site[1]]}
    dev = dict(device or {"devicetype": 4, "os": "iOS", "ua": "Mozilla/5.0", "ip": "192.0.2.1"})
    if geo is not None:
        dev["geo"] = {**geo, "type": 2}
    req["device"] = dev
    if user is not None:
        req["user"] = {"id": user}
        if segments:
            req["user"]["data"] = [{"id": "gavel", "segment": [{"id": s} for s in segments]}]
    req.update(top)
    return req


_PARIS = {"lat": 48.8566, "lon": 2.3522, "country": "FRA", "city": "Paris", "utcoffset": 120}
_NYC = {"lat": 40.7128, "lon": -74.006, "country": "USA", "city": "New York", "utcoffset": -240}
_LONDON = {"lat": 51.5074, "lon": -0.1278, "country": "GBR", "city": "London", "utcoffset": 60}
_DESKTOP = {"devicetype": 2, "os": "Windows", "ua": "Mozilla/5.0", "ip": "192.0.2.2"}
_ANDROID = {"devicetype": 4, "os": "Android", "ua": "Mozilla/5.0", "ip": "192.0.2.3"}

#: The requests :func:`check_bidder` uses by default (raw OpenRTB 2.6 dicts; see the module doc).
DEFAULT_REQUESTS: tuple[dict[str, Any], ...] = (
    _request("c-news", site=("news", "IAB12"), imps=[(728, 90, 0.5)], geo=_PARIS,
             segments=["IAB12", "IAB17-44"]),
    _request("c-sports", site=("sports", "IAB17"), imps=[(970, 250, 0.8)], user="u2",
             device=_DESKTOP, geo=_NYC, segments=["IAB17", "IAB22"]),
    _request("c-shop", site=("shop", "IAB22"), imps=[(300, 600, 1.0)], user="u3",
             device=_ANDROID, geo=_LONDON, segments=["IAB22", "IAB17-44"]),
    _request("c-travel", site=("travel", "IAB20"), imps=[(300, 250, 0.4)], user="u4",
             geo=_PARIS, segments=["IAB20"]),
    _request("c-games", site=("games", "IAB9-30"), imps=[(160, 600, 0.25)], user="u5",
             device=_DESKTOP, geo=_NYC),
    _request("c-mobile", site=("sports", "IAB17"), imps=[(320, 50, 0.2)], user="u6",
             device=_ANDROID, geo=_NYC, segments=["IAB17"]),
    _request("c-multi", site=("travel", "IAB20"), imps=[(300, 250, 0.1), (728, 90, 0.2)],
             geo=_LONDON, segments=["IAB20", "IAB22"]),
    _request("c-blocked", site=("shop", "IAB22"), imps=[(300, 250, 0.1)], geo=_NYC,
             bcat=["IAB22", "IAB18", "IAB19", "IAB20"], badv=["runfast.example"]),
    _request("c-eur", site=("news", "IAB12"), imps=[(300, 250, 0.1)], cur=["EUR"], geo=_PARIS),
    _request("c-high-floor", site=("news", "IAB12"), imps=[(300, 250, 500.0)], geo=_PARIS),
    _request("c-anonymous", site=None, imps=[(300, 250, 0.1)], user=None,
             app={"id": "a1", "bundle": "com.example.game", "cat": ["IAB9"]}),
    _request("c-late-night", site=("news", "IAB12"), imps=[(300, 250, 0.1)], geo=_NYC,
             ts=TS + 9 * 3600, segments=["IAB12"]),
)  # fmt: skip

_PRIVATE = _request("c-private", site=("news", "IAB12"), imps=[(300, 250, 0.1)], geo=_PARIS)
_PRIVATE["imp"][0]["pmp"] = {"private_auction": 1, "deals": [{"id": "d1", "bidfloor": 2.0}]}
DEFAULT_REQUESTS = (*DEFAULT_REQUESTS, _PRIVATE)


def check_bidder(
    bidder_or_factory: Any,
    requests: Sequence[BidRequest | dict[str, Any]] | None = None,
    *,
    seed: int = 7,
) -> None:
    """Check the Bidder contract (see the module docstring); AssertionError says what broke."""
    factory = _factory(bidder_or_factory)
    chosen = DEFAULT_REQUESTS if requests is None else requests
    raws = [r.raw if isinstance(r, BidRequest) else r for r in chosen]
    if not raws:
        raise AssertionError("check_bidder needs at least one request")
    bidder = factory()
    name = type(bidder).__name__
    assert callable(getattr(bidder, "bid", None)), f"{name} has no bid(request) method"
    _check_params(bidder)
    first = _run(bidder, raws, seed)
    again = _run(bidder, raws, seed)
    _same(first, again, f"{name}: reset({seed}) twice gave different answers")
    fresh = _run(factory(), raws, seed)
    _same(first, fresh, f"{name}: a new instance with reset({seed}) gave different answers")


def _factory(obj: Any) -> Callable[[], Any]:
    if callable(getattr(obj, "bid", None)) and not inspect.isclass(obj):
        params = getattr(obj, "get_params", None)
        if not callable(params):
            return lambda: obj  # nothing to rebuild it from: reuse it, reset between runs
        cls, kwargs = type(obj), params()
        return lambda: cls(**kwargs)
    if callable(obj):
        return obj
    raise AssertionError(f"expected a bidder or a factory of bidders, got {type(obj).__name__}")


def _check_params(bidder: Any) -> None:
    get_params = getattr(bidder, "get_params", None)
    if not callable(get_params):
        return
    name = type(bidder).__name__
    params = get_params()
    try:
        rebuilt = type(bidder)(**params)
    except TypeError as exc:
        raise AssertionError(f"{name}(**get_params()) failed: {exc}") from None
    assert rebuilt.get_params() == params, (
        f"{name}: parameters do not round-trip: get_params() gave {params!r}, "
        f"the rebuilt bidder has {rebuilt.get_params()!r} (does __init__ change what it stores?)"
    )


def _run(bidder: Any, raws: Sequence[dict[str, Any]], seed: int) -> list[Any]:
    reset = getattr(bidder, "reset", None)
    if callable(reset):
        reset(seed)
    name = type(bidder).__name__
    answers = []
    for n, raw in enumerate(raws):
        request = parse_bid_request(copy.deepcopy(raw), strict=False)
        before = copy.deepcopy(request.raw)
        response = _call(bidder.bid, request)
        assert request.raw == before, f"{name} modified the request {request.id!r} it was given"
        assert response is None or isinstance(response, dict), (
            f"{name}.bid returned {type(response).__name__}, not a dict or None"
        )
        bids = _validate(name, request, response)
        for i, bid in enumerate(bids):  # every other answer wins its first imp; the rest lose
            _feedback(bidder, request, bid, won=i == 0 and n % 2 == 0)
        answers.append(copy.deepcopy(response))
    return answers


def _validate(name: str, request: BidRequest, response: dict[str, Any] | None) -> list[Any]:
    try:
        bids, dropped = parse_bid_response(response, request, name)
    except InvalidResponse as exc:
        raise AssertionError(f"{name}: response to {request.id!r} is not valid: {exc}") from None
    assert not dropped, f"{name}: the exchange would drop bids for {request.id!r}: " + "; ".join(
        f"{d.bid_id}: {d.reason} (code {d.code})" for d in dropped
    )
    for bid in bids:
        imp = request.imp_by_id[bid.impid]
        floor = imp.deals[bid.dealid].floor_micros if bid.dealid else imp.floor_micros
        assert bid.price_micros >= floor, (
            f"{name}: bid {bid.id!r} on imp {bid.impid!r} of {request.id!r} pays "
            f"{bid.price} under the floor {floor / 1e6}"
        )
        assert not imp.private or bid.dealid, (
            f"{name}: bid {bid.id!r} is an open bid in the private auction of imp {bid.impid!r}"
        )
    return bids


def _feedback(bidder: Any, request: BidRequest, bid: Any, *, won: bool) -> None:
    def event(kind: str, **extra: Any) -> AuctionEvent:
        return AuctionEvent(
            kind=kind,
            auction_id=request.id,
            imp_id=bid.impid,
            bid_id=bid.id,
            seat=bid.seat,
            ad_id=bid.adid,
            currency="USD",
            **extra,
        )

    price = max(bid.price_micros // 2, request.imp_by_id[bid.impid].floor_micros) / 1e6
    kinds = [event(WIN, price=price), event(BILLING, price=price), event(CLICK)] if won else []
    kinds = kinds or [event(LOSS, price=bid.price + 0.5, loss=102, min_to_win=bid.price + 0.51)]
    for e in kinds:
        try:
            _call(lambda ev=e: deliver(bidder, ev), None)
        except Exception as exc:
            raise AssertionError(
                f"{type(bidder).__name__}'s {e.kind} hook raised {type(exc).__name__}: {exc}"
            ) from exc


def _call(fn: Callable[..., Any], arg: Any) -> Any:
    result = fn(arg) if arg is not None else fn()
    if inspect.isawaitable(result):
        import asyncio  # only for async bidders: the rest of the check needs no event loop

        with ThreadPoolExecutor(1) as pool:  # works whether or not the caller runs a loop
            return pool.submit(asyncio.run, _await(result)).result()
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _same(a: list[Any], b: list[Any], message: str) -> None:
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        assert x == y, f"{message}: request {i} got {x!r} then {y!r}"
