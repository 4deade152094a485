"""Targeting rules one by one, through the campaign bidder (one campaign each), and their parts."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp import clock
from dsp.config import DaypartConfig
from dsp.geo import Fence, haversine_m
from dsp.index import CampaignIndex, rules
from dsp.targeting import Dayparts, domain_suffixes, read_request, with_parents

from .helpers import WED_1730_UTC, bidder, campaign, price, request

# -- the parts -----------------------------------------------------------------------------------


def test_haversine_known_distances() -> None:
    assert haversine_m(0, 0, 0, 0) == 0
    # Paris (Notre-Dame) to London (Charing Cross): 343.5 km on the mean sphere
    assert haversine_m(48.8530, 2.3499, 51.5073, -0.1276) == pytest.approx(343_500, rel=0.003)
    # one degree of latitude is ~111.2 km anywhere
    assert haversine_m(10, 20, 11, 20) == pytest.approx(111_195, rel=1e-3)
    # across the antimeridian
    assert haversine_m(0, 179.9, 0, -179.9) == pytest.approx(22_239, rel=1e-3)


def test_fence_boundary_and_latitude_precheck() -> None:
    fence = Fence(lat=48.8443, lon=2.3730, radius_m=500)
    north = 500 / 111_195  # degrees of latitude in 500 m
    assert fence.contains(48.8443, 2.3730)
    assert fence.contains(48.8443 + north * 0.99, 2.3730)
    assert not fence.contains(48.8443 + north * 1.01, 2.3730)
    assert not fence.contains(-48.8443, 2.3730)  # the pre-check rejects it
    # east-west: a degree of longitude is shorter at 48.8 deg north
    east = 500 / (111_195 * math.cos(math.radians(48.8443)))
    assert fence.contains(48.8443, 2.3730 + east * 0.99)
    assert not fence.contains(48.8443, 2.3730 + east * 1.01)


@settings(max_examples=300, deadline=None)
@given(
    lat=st.floats(-89, 89),
    lon=st.floats(-180, 180),
    radius=st.sampled_from([50.0, 500.0, 5_000.0, 20_000.0, 200_000.0]),
    bearing=st.floats(0, 2 * math.pi),
    ratio=st.floats(0, 2),
)
def test_fence_agrees_with_haversine(
    lat: float, lon: float, radius: float, bearing: float, ratio: float
) -> None:
    """The flat-Earth shortcut never changes the haversine answer."""
    d = radius * ratio / 111_195
    plat = max(-90.0, min(90.0, lat + d * math.cos(bearing)))
    plon = lon + d * math.sin(bearing) / max(0.05, math.cos(math.radians(lat)))
    plon = (plon + 180) % 360 - 180
    fence = Fence(lat=lat, lon=lon, radius_m=radius)
    assert fence.contains(plat, plon) == (haversine_m(lat, lon, plat, plon) <= radius)


def test_clock_local_time_and_days() -> None:
    assert clock.minute_of_week(WED_1730_UTC, 0) == 2 * 1440 + 17 * 60 + 30  # Wednesday 17:30
    assert clock.minute_of_week(WED_1730_UTC, 120) == 2 * 1440 + 19 * 60 + 30
    assert clock.minute_of_week(WED_1730_UTC, -18 * 60) == 1 * 1440 + 23 * 60 + 30  # Tuesday
    assert clock.local_hour(WED_1730_UTC, 60) == 18
    assert clock.day_index(WED_1730_UTC, 0) + 1 == clock.day_index(WED_1730_UTC, 7 * 60)
    assert clock.day_share(WED_1730_UTC, 0) == pytest.approx((17.5 * 3600) / 86400)


def test_dayparts_windows_and_midnight() -> None:
    d = Dayparts(parts=[DaypartConfig(days=("wed",), start="17:00", end="19:00")])
    wed = 2 * 1440
    assert d.contains(wed + 17 * 60) and d.contains(wed + 18 * 60 + 59)
    assert not d.contains(wed + 19 * 60) and not d.contains(wed + 16 * 60 + 59)
    night = Dayparts(parts=[DaypartConfig(days=("sun",), start="22:00", end="02:00")])
    assert night.contains(6 * 1440 + 23 * 60)
    assert night.contains(0 * 1440 + 60)  # Monday 01:00 belongs to Sunday's night
    assert not night.contains(6 * 1440 + 60)  # Sunday 01:00 does not
    everything = Dayparts(parts=[DaypartConfig(days=("weekdays", "weekend"))])
    assert all(everything.contains(m) for m in range(0, 7 * 1440, 97))


def test_normalisation_of_request_facts() -> None:
    assert with_parents(["IAB17-44", "IAB12"]) == {"IAB17-44", "IAB17", "IAB12"}
    assert domain_suffixes("M.News.Example.") == ("m.news.example", "news.example", "example")
    facts = read_request(
        request(
            segments=["IAB17-44"],
            device={"devicetype": 4, "os": "iOS", "geo": {"country": "fra", "city": "PARIS"}},
        )
    )
    assert facts.segments == {"IAB17-44", "IAB17"}
    assert (facts.os, facts.country, facts.city) == ("ios", "FRA", "paris")
    assert facts.user == "u1" and facts.domains[0] == "news.example"
    # user.buyeruid, then device.ifa, stand in for a missing user.id; user.geo for device.geo
    raw_facts = read_request(request(user=None, device={"ifa": "ifa-1"}))
    assert raw_facts.user == "ifa-1"


def test_index_include_exclude_and_free_campaigns() -> None:
    index = CampaignIndex(
        rules=[
            rules(site_cat=(["IAB17"], [])),  # 0: sports only
            rules(site_cat=([], ["IAB17"])),  # 1: anything but sports
            rules(),  # 2: anything
            rules(countries=["USA"], fenced=True),  # 3: the USA or its fence
        ]
    )
    sports = read_request(request(site=("s.example", ["IAB17-1"])))
    news = read_request(request(site=("n.example", ["IAB12"])))
    assert index.match(sports)[0] == 0b0101
    assert index.match(news)[0] == 0b0110
    usa = read_request(request(device={"geo": {"country": "USA"}}))
    assert index.match(usa) == (0b1110, 0)
    near = read_request(request(device={"geo": {"country": "FRA", "lat": 1.0, "lon": 2.0}}))
    eligible, needs_fence = index.match(near)
    assert eligible == 0b1110 and needs_fence == 0b1000
    assert index.match(news, badv=["x.example"])[0] == 0b0110


# -- each rule through the bidder ----------------------------------------------------------------


def only(**targeting: object) -> object:
    return bidder(campaign(targeting=targeting))


def test_segments_include_and_exclude_with_parents() -> None:
    b = only(segments={"include": ["IAB17"], "exclude": ["IAB7-3"]})
    assert price(b, request("a", segments=["IAB17-44"])) == 2.0
    assert price(b, request("b", segments=["IAB12"])) is None
    assert price(b, request("c", segments=["IAB17", "IAB7-3"])) is None
    assert price(b, request("d")) is None  # no segments, an include list: no


def test_device_type_and_os() -> None:
    b = only(devicetype=[4, 5], os=["Android"])
    assert price(b, request("a", device={"devicetype": 4, "os": "android"})) == 2.0
    assert price(b, request("b", device={"devicetype": 2, "os": "Android"})) is None
    assert price(b, request("c", device={"devicetype": 5, "os": "iOS"})) is None
    assert price(b, request("d", device={})) is None


def test_site_category_and_domain() -> None:
    b = only(site_cat={"include": ["IAB17", "IAB22"]}, site_domain={"exclude": ["spam.example"]})
    assert price(b, request("a", site=("scores.example", ["IAB17-44"]))) == 2.0
    assert price(b, request("b", site=("news.example", ["IAB12"]))) is None
    assert price(b, request("c", site=("www.spam.example", ["IAB22"]))) is None
    only_one = only(site_domain={"include": ["shop.example"]})
    assert price(only_one, request("d", site=("m.shop.example", []))) == 2.0
    assert price(only_one, request("e", site=("shop.example.evil", []))) is None
    # an app's bundle and categories count as the site's
    app = request("f", site=None, app={"bundle": "shop.example", "cat": ["IAB22"]})
    assert price(only_one, app) == 2.0


def test_country_city_or_fence() -> None:
    b = only(countries=["FRA"], cities=["London"])
    assert price(b, request("a", geo={"country": "FRA"})) == 2.0
    assert price(b, request("b", geo={"country": "GBR", "city": "london"})) == 2.0
    assert price(b, request("c", geo={"country": "GBR", "city": "Leeds"})) is None
    assert price(b, request("d")) is None


STATION = {"lat": 48.8443, "lon": 2.3730, "radius_m": 500}
METRES_PER_DEGREE = 111_195


def at_station(metres_north: float, *, utcoffset: int | None = 120) -> dict[str, object]:
    geo: dict[str, object] = {"lat": 48.8443 + metres_north / METRES_PER_DEGREE, "lon": 2.3730}
    if utcoffset is not None:
        geo["utcoffset"] = utcoffset
    return geo


def test_wednesday_evening_near_the_station_is_one_rule() -> None:
    b = only(geofences=[STATION], dayparts=[{"days": ["wed"], "start": "17:00", "end": "19:00"}])
    wed_1730_local = WED_1730_UTC - 2 * 3600  # 17:30 in UTC+2
    assert price(b, request("in", ts=wed_1730_local, geo=at_station(300))) == 2.0
    assert price(b, request("late", ts=wed_1730_local + 2 * 3600, geo=at_station(300))) is None
    assert price(b, request("far", ts=wed_1730_local, geo=at_station(600))) is None
    assert price(b, request("thu", ts=wed_1730_local + 86400, geo=at_station(300))) is None
    assert price(b, request("nowhere", ts=wed_1730_local)) is None


def test_daypart_uses_the_users_offset_else_the_campaigns() -> None:
    b = bidder(
        campaign(
            utcoffset=60,
            targeting={"dayparts": [{"days": ["wed"], "start": "18:00", "end": "19:00"}]},
        )
    )
    # 17:30 UTC: 18:30 in the campaign's UTC+1, 19:30 in the user's UTC+2
    assert price(b, request("own", geo={"utcoffset": 120})) is None
    assert price(b, request("campaign's")) == 2.0
    assert price(b, request("utc", geo={"utcoffset": 0})) is None


def test_retargeting_needs_a_recent_visit_and_no_purchase_since() -> None:
    from dsp.pixel import PixelEvent

    b = bidder(campaign(targeting={"retargeting": {"days": 7, "categories": ["IAB22-4"]}}))
    assert price(b, request("a")) is None
    b.pixel(PixelEvent("visit", "u1", "c1.example", category="IAB22-2", ts=WED_1730_UTC - 60))
    assert price(b, request("b")) is None  # another category
    b.pixel(PixelEvent("visit", "u1", "c1.example", category="IAB22-4", ts=WED_1730_UTC - 60))
    assert price(b, request("c")) == 2.0
    assert price(b, request("other-user", user="u2")) is None
    assert price(b, request("anonymous", user=None)) is None
    b.pixel(PixelEvent("purchase", "u1", "c1.example", ts=WED_1730_UTC - 30))
    assert price(b, request("d")) is None
    # an older visit reported late does not undo the purchase
    b.pixel(PixelEvent("visit", "u1", "c1.example", category="IAB22-4", ts=WED_1730_UTC - 90))
    assert price(b, request("e")) is None
    b.pixel(PixelEvent("visit", "u1", "c1.example", category="IAB22-4", ts=WED_1730_UTC - 10))
    assert price(b, request("f")) == 2.0
    assert price(b, request("g", ts=WED_1730_UTC + 7 * 86400)) is None  # the visit is too old


def test_flight_dates() -> None:
    b = bidder(campaign(start="2025-06-04T17:00:00Z", end="2025-06-04T18:00:00+00:00"))
    assert price(b, request("in")) == 2.0
    assert price(b, request("before", ts=WED_1730_UTC - 3600)) is None
    assert price(b, request("after", ts=WED_1730_UTC + 1800)) is None


def test_size_and_blocked_categories_and_advertisers() -> None:
    b = bidder(
        campaign(
            creatives=[
                {"id": "k1", "w": 300, "h": 250, "cat": ["IAB22-4"]},
                {"id": "k2", "w": 300, "h": 250, "cat": ["IAB8"], "adomain": "other.example"},
            ]
        )
    )
    assert price(b, request("size", w=728, h=90)) is None
    got = b.bid(request("bcat", bcat=["IAB22"]))
    assert got is not None and got["seatbid"][0]["bid"][0]["crid"] == "k2"
    got = b.bid(request("plain"))
    assert got is not None and got["seatbid"][0]["bid"][0]["crid"] == "k1"
    assert b.bid(request("badv", badv=["c1.example"])) is None  # the campaign's advertiser
    assert (
        b.bid(request("both", bcat=["IAB8"], badv=["other.example"]))["seatbid"][0]["bid"][0][
            "crid"
        ]
        == "k1"
    )
    formats = request("fmt", w=728, h=90)
    formats.imp[0].raw["banner"]["format"] = [{"w": 728, "h": 90}, {"w": 300, "h": 250}]
    assert price(b, formats) == 2.0


def test_request_level_no_bids() -> None:
    b = bidder()
    assert price(b, request("eur", cur=["EUR"])) is None
    assert price(b, request("bseat", bseat=["t"])) is None
    assert price(b, request("wseat", wseat=["someone-else"])) is None
    assert price(b, request("ok", wseat=["t"])) == 2.0
    private = request("private")
    private.imp[0].private = True
    assert price(b, private) is None
