"""The campaign bidder: its own auction, frequency caps, budgets under concurrency, config errors."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from dsp.bidders.campaign import CampaignBidder
from dsp.config import load_dsp_config
from dsp.memory_state import MemoryState
from dsp.registry import make_bidder
from dsp.server import BID_PATH, make_app
from exchange.config import ConfigError
from exchange.feedback import listens
from exchange.settings import ExchangeSettings
from ssp.config import Site, Slot
from tests.conftest import StartDsp, StartSsp, eventually, get

from .helpers import (
    WED_1730_UTC,
    bidder,
    bids,
    campaign,
    config,
    event,
    price,
    raw_request,
    request,
    win_and_bill,
)

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "dsp").glob("*.toml"))
Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


def test_it_listens_to_every_notice() -> None:
    assert listens(bidder()) == {"win", "loss", "billing", "click", "conversion"}


def test_the_best_priced_campaign_wins_its_own_auction() -> None:
    b = bidder(
        campaign("cheap", params={"cpm": 1.0}),
        campaign("dear", params={"cpm": 3.0}),
        campaign("capped", params={"cpm": 9.0}, max_bid=2.5),
        campaign("tie", params={"cpm": 3.0}),
    )
    got = bids(b.bid(request()))
    assert [(x["crid"], x["price"]) for x in got] == [("dear-300x250", 3.0)]  # ties: file order
    assert got[0]["adomain"] == ["dear.example"] and got[0]["cat"] == ["IAB22"]
    assert (got[0]["w"], got[0]["h"]) == (300, 250) and "<div" in got[0]["adm"]


def test_a_campaign_whose_budget_is_full_gives_way_to_the_next() -> None:
    b = bidder(
        campaign("first", params={"cpm": 3.0}, budget_total=0.003),
        campaign("second", params={"cpm": 2.0}),
    )
    assert price(b, request("a")) == 3.0
    assert price(b, request("b")) == 2.0  # 0.003 is held by the first bid in flight
    b.on_loss(event("loss", "a", price=4.0, loss=102))
    assert price(b, request("c")) == 3.0


def test_multi_imp_requests_get_a_bid_per_imp() -> None:
    b = bidder(
        campaign(
            "c1",
            creatives=[{"id": "k1", "w": 300, "h": 250}, {"id": "k2", "w": 728, "h": 90}],
        )
    )
    raw = raw_request("multi")
    raw["imp"] = [
        {"id": "a", "banner": {"w": 300, "h": 250}, "bidfloor": 0.1},
        {"id": "b", "banner": {"w": 728, "h": 90}, "bidfloor": 0.1},
        {"id": "c", "banner": {"w": 160, "h": 600}, "bidfloor": 0.1},
        {"id": "d", "video": {"w": 640, "h": 480}},
    ]
    from exchange.openrtb import parse_bid_request

    got = bids(b.bid(parse_bid_request(raw)))
    assert [(x["impid"], x["crid"], x["id"]) for x in got] == [
        ("a", "k1", "multi-a"),
        ("b", "k2", "multi-b"),
    ]


def test_frequency_cap_counts_impressions_not_bids() -> None:
    b = bidder(campaign(frequency={"per_hour": 2, "per_day": 3}))
    for i in range(5):  # bids that do not win do not count
        assert price(b, request(f"lost{i}")) == 2.0
        b.on_loss(event("loss", f"lost{i}", price=3.0, loss=102))
    for i in range(2):
        assert price(b, request(f"w{i}", ts=WED_1730_UTC + i)) == 2.0
        win_and_bill(b, f"w{i}", 1.0)
    assert price(b, request("capped-hour", ts=WED_1730_UTC + 60)) is None
    assert price(b, request("next-hour", ts=WED_1730_UTC + 3600)) == 2.0
    win_and_bill(b, "next-hour", 1.0)
    assert price(b, request("capped-day", ts=WED_1730_UTC + 2 * 3600)) is None
    assert price(b, request("next-day", ts=WED_1730_UTC + 86_400)) == 2.0
    assert price(b, request("no-user", user=None)) is None  # a cap needs a user to count


def test_reservations_expire_without_notices() -> None:
    b = bidder(campaign(budget_total=0.002), dsp={"bid_ttl_s": 10.0})
    assert price(b, request("a")) == 2.0
    assert price(b, request("b", ts=WED_1730_UTC + 9)) is None  # still held
    assert price(b, request("c", ts=WED_1730_UTC + 10)) == 2.0  # released at the TTL
    assert b.stats()["campaigns"]["c1"]["in_flight"] == 0.002


def test_reset_starts_a_new_run_and_seeds_determinism() -> None:
    b = bidder(campaign(strategy="random", params={"low": 1.0, "high": 2.0}, budget_total=0.01))
    first = [price(b, request(f"r{i}")) for i in range(5)]
    win_and_bill(b, "r0", 1.0)
    b.reset(1)
    assert [price(b, request(f"r{i}")) for i in range(5)] == first
    assert b.stats()["campaigns"]["c1"]["spend"] == 0.0
    shared = MemoryState()
    one = bidder(campaign(budget_total=0.002), state=shared)
    assert price(one, request("x")) == 2.0
    two = bidder(campaign(budget_total=0.002), state=shared)  # another worker, the same budget
    assert price(two, request("y")) is None
    one.reset(2)
    assert price(one, request("z")) is None  # an injected state outlives reset


def test_shipped_campaign_files_load_and_bid() -> None:
    assert len(CONFIGS) >= 4
    for path in CONFIGS:
        b = make_bidder("campaign", {"config": str(path), "seed": 1})
        assert b.campaigns_, path
        sizes = {size for c in b.campaigns_ for size in c.creatives}
        assert sizes <= {(728, 90), (300, 250), (970, 250), (320, 50), (300, 600), (160, 600)}


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"campaigns": [{**campaign(), "budget": 5}]}, "'budget'"),
        ({"campaigns": [{**campaign(), "targeting": {"segment": {}}}]}, "targeting.'segment'"),
        ({"campaigns": [{**campaign(), "frequency": {"per_week": 1}}]}, "per_week"),
        (
            {"campaigns": [{**campaign(), "creatives": [{"id": "k", "w": 1, "h": 1, "size": 2}]}]},
            "size",
        ),
        ({"dsp": {"nmae": "x"}}, "nmae"),
        ({"campaigns": [{**campaign(), "pacing": "even"}]}, "pacing"),
        ({"campaigns": [{**campaign(), "pacing": "throttle"}]}, "budget_daily"),
        ({"campaigns": [{**campaign(), "strategy": "lin", "params": {"bse": 1}}]}, "'bse'"),
        ({"campaigns": [{**campaign(), "strategy": "magic"}]}, "unknown strategy 'magic'"),
        ({"campaigns": [{**campaign(), "strategy": "pid", "params": {"metric": "cpa"}}]}, "metric"),
        (
            {"campaigns": [{**campaign(), "targeting": {"dayparts": [{"days": ["someday"]}]}}]},
            "someday",
        ),
        ({"campaigns": [{**campaign(), "targeting": {"dayparts": [{"start": "25:00"}]}}]}, "25:00"),
        (
            {
                "campaigns": [
                    {
                        **campaign(),
                        "targeting": {"geofences": [{"lat": 91, "lon": 0, "radius_m": 5}]},
                    }
                ]
            },
            "Earth",
        ),
        ({"campaigns": [{**campaign(), "targeting": {"devicetype": [9]}}]}, "devicetype 9"),
        ({"campaigns": [campaign(), campaign()]}, "unique"),
        ({"campaigns": [{**campaign(), "creatives": []}]}, "creatives"),
        ({"campaigns": [{**campaign(), "end": "yesterday"}]}, "ISO 8601"),
        ({"campaigns": [{**campaign(), "budget_daily": -1.0}]}, "budget_daily"),
    ],
)
def test_config_errors_name_the_key_and_the_file(
    tmp_path: Path, changes: dict[str, Any], named: str
) -> None:
    import tomllib  # noqa: F401 - the file below is TOML; it is written as JSON-compatible TOML

    data = {**config(), **changes}
    path = tmp_path / "dsp.toml"
    path.write_text(_toml(data))
    with pytest.raises(ConfigError) as info:
        make_bidder("campaign", {"config": str(path)})
    assert named in str(info.value)
    assert str(path) in str(info.value)


def test_a_missing_or_broken_file() -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_dsp_config("/nonexistent/dsp.toml")
    with pytest.raises(ConfigError, match="needs a config"):
        make_bidder("campaign", {})


def _toml(data: Any, prefix: str = "") -> str:
    """A small TOML writer for the tests' tables (inline tables and arrays of tables)."""

    def value(v: Any) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return orjson.dumps(v).decode()

    lines = []
    for key, v in data.items():
        if key == "campaigns":
            for c in v:
                lines.append("[[campaigns]]")
                lines += [f"{k} = {value(x)}" for k, x in c.items()]
        else:
            lines.append(f"{key} = {value(v)}")
    return "\n".join(lines) + "\n"


# -- budgets under concurrency --------------------------------------------------------------------


async def test_budget_never_overspent_with_concurrent_auctions_and_shuffled_notices(
    aiohttp_client: MakeClient,
) -> None:
    """200 bid requests at once to the DSP server, then win, billing and loss notices in a random
    order (billing before win, repeated, some never sent): spend never passes the budget, and
    spend is exactly the billed clearing prices."""
    budget = 0.05  # 25 impressions at a CPM of 2.00
    b = bidder(campaign(budget_total=budget))
    client = await aiohttp_client(make_app(bidder=b, name="t"))

    async def post(i: int) -> dict[str, Any] | None:
        body = orjson.dumps(raw_request(f"r{i}", ts=WED_1730_UTC + i / 100))
        resp = await client.post(BID_PATH, data=body)
        return await resp.json() if resp.status == 200 else None

    answers = await asyncio.gather(*(post(i) for i in range(200)))
    made = [a["seatbid"][0]["bid"][0] for a in answers if a is not None]
    assert len(made) == 25  # the budget held 25 bids in flight, not one more
    rng = random.Random(7)
    notices: list[str] = []
    billed = 0.0
    for bid in made:
        rid = bid["id"].rsplit("-", 1)[0]
        ids = {"auction": rid, "imp": "1", "bid": bid["id"]}
        fate = rng.random()
        if fate < 0.6:
            clearing = round(rng.uniform(0.5, 2.0), 2)
            billed += clearing / 1000
            q = urlencode({**ids, "price": clearing})
            notices += [f"/win?{q}", f"/bill?{q}", f"/bill?{q}"]  # billing repeated
        elif fate < 0.9:
            notices.append(f"/loss?{urlencode({**ids, 'price': 2.5, 'loss': 102})}")
        # else: no notice at all (the reservation expires)
    rng.shuffle(notices)
    statuses = await asyncio.gather(*(client.get(n) for n in notices))
    assert {r.status for r in statuses} == {204}
    stats = await (await client.get("/stats")).json()
    row = stats["campaigns"]["c1"]
    assert row["spend"] == pytest.approx(billed, abs=1e-9)
    assert row["spend"] <= budget
    assert row["spend"] + row["in_flight"] <= budget + 1e-12
    assert row["impressions"] == sum(1 for n in notices if n.startswith("/win"))
    # the freed budget lets it bid again, up to what is left
    more = await asyncio.gather(*(post(1000 + i) for i in range(100)))
    assert sum(1 for a in more if a) > 0
    row = (await (await client.get("/stats")).json())["campaigns"]["c1"]
    assert row["spend"] + row["in_flight"] <= budget + 1e-12


SHOP = Site(
    id="shop",
    domain="bazaar.example",
    cat=("IAB22",),
    slots=(Slot(id="side", w=300, h=250, floor=0.5, pos=1),),
)


async def test_budget_through_the_exchange(start_dsp: StartDsp, start_ssp: StartSsp) -> None:
    """The campaign DSP behind the SSP: ad requests at once, impression beacons in random order,
    notices through the SSP's queue: the DSP's spend is the SSP's, and within the budget."""
    budget = 0.02  # 10 bids of 2.00 in flight
    b = bidder(campaign(budget_total=budget))
    dsp = await start_dsp("camp", bidder=b)
    # a generous deadline: this is about money, not time (the machine may be busy)
    ssp = await start_ssp(dsps=[dsp], sites=[SHOP], settings=ExchangeSettings(seed=1, tmax_ms=1000))

    async def ad(i: int) -> dict[str, Any] | None:
        body = {"site": "shop", "slot": "side", "user": f"u{i}", "ts": WED_1730_UTC + i / 100}
        resp = await ssp.post("/ad", json=body)
        return await resp.json() if resp.status == 200 else None

    served = [a for a in await asyncio.gather(*(ad(i) for i in range(60))) if a]
    # 10 bids of 2.00 fit at once; each win notice lowers a hold to its clearing price (0.51)
    assert 10 <= len(served) <= int(budget / 0.00051)
    rng = random.Random(3)
    rng.shuffle(served)
    shown = served[: max(1, len(served) * 2 // 3)]
    await asyncio.gather(*(get(ssp, a["impression_url"]) for a in shown))

    async def settled() -> bool:
        row = b.stats()["campaigns"]["c1"]
        return bool(row["impressions"] == len(shown))

    await eventually(settled, what="the billing notices to reach the DSP")
    ssp_stats = await (await ssp.get("/stats")).json()
    row = b.stats()["campaigns"]["c1"]
    assert row["spend"] == pytest.approx(ssp_stats["bidders"]["camp"]["spend"], abs=1e-9)
    assert row["spend"] + row["in_flight"] <= budget + 1e-12
    assert isinstance(dsp.bidder, CampaignBidder)


def test_clicks_and_conversions_count_for_shown_bids_whatever_the_notice_order() -> None:
    b = bidder()
    assert price(b, request("early")) == 2.0
    b.on_click(event("click", "early"))  # the click notice overtook win and billing
    assert price(b, request("lost")) == 2.0
    b.on_loss(event("loss", "lost", price=3.0, loss=102))
    b.on_click(event("click", "lost"))  # a lost bid was never shown: ignored
    b.on_conversion(event("conversion", "lost"))
    b.on_click(event("click", "never-bid"))
    row = b.stats()["campaigns"]["c1"]
    assert (row["clicks"], row["conversions"], row["losses"]) == (1, 0, 1)
