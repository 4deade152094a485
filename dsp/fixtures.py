"""JSON fixtures for bidders and strategies, in the manner of Prebid Server's adapter tests.

A fixture is a file ``<folder>/<id>/exemplary/*.json`` (what the bidder is for; no surprises) or
``<folder>/<id>/supplemental/*.json`` (edge cases)::

    {
      "description": "what it shows",
      "bidder": "campaign",                 # a bidder spec (dsp.registry.make_bidder)
      "params": {"config": {...}},          # its parameters (a campaign file inline)
      "seed": 1,
      "steps": [
        {"request": {...OpenRTB...}, "expect": [{"impid": "1", "price": 1.5, "crid": "c1"}]},
        {"notice": {"kind": "loss", "auction": "r1", "imp": "1", "bid": "r1-1", "price": 2.0,
                    "loss": 102, "min_to_win": 2.01}},
        {"pixel": {"event": "visit", "user": "u1", "advertiser": "shop.example", "ts": "1749000000"}},
        {"request": {...}, "expect": null},
        {"stats": {"campaigns.c1.impressions": 1}}
      ]
    }

``expect`` is null for a no-bid, else the bids in response order, each compared on the keys it
gives (of ``impid``, ``price``, ``crid``, ``adomain``, ``cat``, ``w``, ``h``, ``seat``). Notices
``kind`` win, loss, billing or click reach the bidder's hooks; pixels its ``pixel()``; ``stats``
compares dotted paths of its ``stats()``.

:func:`run_inprocess` plays a fixture against the bidder object; ``tests/dsp/test_fixtures.py`` plays
it again against the same bidder behind the DSP server (notices and pixels as HTTP calls) and
asserts that both give the same answers. Pure: no I/O but reading the files.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from dsp.pixel import parse_pixel
from dsp.registry import make_bidder
from exchange.feedback import AuctionEvent, deliver
from exchange.openrtb import parse_bid_request

log = logging.getLogger(__name__)

ROOTS = (
    Path(__file__).resolve().parent / "strategies" / "fixtures",
    Path(__file__).resolve().parent / "bidders" / "fixtures",
)
BID_KEYS = ("impid", "price", "crid", "adomain", "cat", "w", "h", "seat")
KINDS = ("win", "loss", "billing", "click")


@dataclass(frozen=True, slots=True)
class Fixture:
    path: Path
    data: dict[str, Any]

    @property
    def name(self) -> str:
        """``<id>/<exemplary|supplemental>/<file>``."""
        return "/".join(self.path.parts[-3:])

    @property
    def group(self) -> str:
        """``"bidders"`` or ``"strategies"``: the registry whose entry it tests."""
        return self.path.parts[-5]

    @property
    def target(self) -> str:
        """The registry id it tests."""
        return self.path.parts[-3]

    @property
    def steps(self) -> list[dict[str, Any]]:
        return list(self.data["steps"])

    def bidder(self) -> Any:
        """A fresh bidder, reset with the fixture's seed."""
        params = {**copy.deepcopy(self.data.get("params", {})), "seed": self.data.get("seed", 1)}
        return make_bidder(self.data["bidder"], params)


def find_fixtures(roots: tuple[Path, ...] = ROOTS) -> Iterator[Fixture]:
    """Every fixture file under ``roots``, sorted by path."""
    for root in roots:
        for path in sorted(root.glob("*/*/*.json")):
            if path.parent.name not in ("exemplary", "supplemental"):
                raise ValueError(f"{path}: fixtures go in exemplary/ or supplemental/")
            data = orjson.loads(path.read_bytes())
            if not isinstance(data.get("steps"), list) or "bidder" not in data:
                raise ValueError(f"{path}: a fixture needs 'bidder' and 'steps'")
            yield Fixture(path, data)


def project(response: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    """The comparable part of a response: its bids' :data:`BID_KEYS` (None for a no-bid)."""
    if not response or not response.get("seatbid"):
        return None
    out = []
    for sb in response["seatbid"]:
        for bid in sb.get("bid", []):
            row = {k: bid.get(k) for k in BID_KEYS if k != "seat"}
            row["seat"] = sb.get("seat")
            out.append(row)
    return out or None


def event_of(notice: dict[str, Any]) -> AuctionEvent:
    """The AuctionEvent of a fixture's ``notice`` step."""
    kind = notice["kind"]
    if kind not in KINDS:
        raise ValueError(f"notice kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return AuctionEvent(
        kind=kind,
        auction_id=notice["auction"],
        imp_id=notice["imp"],
        bid_id=notice["bid"],
        price=notice.get("price"),
        currency="USD",
        loss=notice.get("loss"),
        min_to_win=notice.get("min_to_win"),
    )


def dig(obj: Any, dotted: str) -> Any:
    """``dig(stats, "campaigns.c1.bids")``."""
    for part in dotted.split("."):
        obj = obj[part]
    return obj


def run_inprocess(fixture: Fixture, bidder: Any = None) -> list[Any]:
    """Play the fixture against the bidder object; one answer per step (a projection for a
    request, the stats values for a stats step, None otherwise)."""
    bidder = bidder if bidder is not None else fixture.bidder()
    answers: list[Any] = []
    for step in fixture.steps:
        if "request" in step:
            request = parse_bid_request(copy.deepcopy(step["request"]), strict=False)
            answers.append(project(bidder.bid(request)))
        elif "notice" in step:
            deliver(bidder, event_of(step["notice"]))
            answers.append(None)
        elif "pixel" in step:
            bidder.pixel(parse_pixel({k: str(v) for k, v in step["pixel"].items()}))
            answers.append(None)
        elif "stats" in step:
            stats = bidder.stats()
            answers.append({k: dig(stats, k) for k in step["stats"]})
        else:
            raise ValueError(f"{fixture.name}: unknown step {sorted(step)}")
    return answers


def check(fixture: Fixture, answers: list[Any], *, how: str) -> None:
    """Compare answers with the fixture's expectations; AssertionError naming the step."""
    for i, (step, answer) in enumerate(zip(fixture.steps, answers, strict=True)):
        where = f"{fixture.name} step {i} ({how})"
        if "request" in step:
            _check_bids(step.get("expect"), answer, where)
        elif "stats" in step:
            assert answer == step["stats"], f"{where}: stats {answer} != {step['stats']}"


def _check_bids(expect: Any, answer: Any, where: str) -> None:
    if expect is None:
        assert answer is None, f"{where}: expected no bid, got {answer}"
        return
    assert answer is not None, f"{where}: expected {expect}, got no bid"
    assert len(answer) == len(expect), f"{where}: expected {len(expect)} bids, got {answer}"
    for want, got in zip(expect, answer, strict=True):
        unknown = set(want) - set(BID_KEYS)
        assert not unknown, f"{where}: expected bids compare only {BID_KEYS}, not {unknown}"
        seen = {k: got.get(k) for k in want}
        assert seen == want, f"{where}: expected {want}, got {seen}"
