"""The traffic generator: the same seed gives the same requests; arrivals, sites, visitors and
layouts follow the settings (distribution checks with tolerances)."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from gavel.config import World
from ssp.adrequest import parse_ad_request
from ssp.config import Site, Slot
from ssp.world import taxonomy
from ssp.world.catalog import SiteCatalog
from ssp.world.cities import CITIES
from ssp.world.intent import DAY_S, RESEARCHING
from ssp.world.population import DEVICES
from ssp.world.settings import Burst, TrafficSettings
from ssp.world.traffic import PURCHASE, VISIT
from ssp.world.world import SimWorld
from tests.ssp.world.conftest import START, generator, make_world


def test_same_seed_same_requests(default_world: World) -> None:
    def bodies(seed: int) -> list[bytes]:
        gen = generator(make_world(default_world, users=5000), qps=3000, seed=seed)
        return [b for t in (0.3, 0.6, 1.0) for b in gen.next_batch(t).bodies]

    first, again, other = bodies(4), bodies(4), bodies(5)
    assert len(first) > 1000
    assert first == again
    assert first != other


def test_every_request_is_a_valid_ad_request_of_its_user(world: SimWorld) -> None:
    gen = generator(world, qps=2000)
    batch = gen.next_batch(1.0)
    sites = {s.id: s for s in world.catalog.sites}
    assert len(batch) > 1000
    assert np.all(np.diff(batch.due) >= 0)
    for i in range(0, len(batch), 7):
        ad = parse_ad_request(batch.bodies[i], sites)  # raises if the SSP would reject it
        body = orjson.loads(batch.bodies[i])
        user = int(batch.user[i])
        assert body["user"] == f"u{user}"
        assert body["segments"] == world.population.segments(user)
        assert ad.slot is world.catalog.slots[int(batch.slot[i])]
        assert ad.site is world.catalog.sites[int(batch.site[i])]
        city = CITIES[int(world.population.city[user])]
        assert ad.geo["city"] == city.name and ad.geo["utcoffset"] == city.utcoffset
        assert math.dist((ad.geo["lat"], ad.geo["lon"]), (city.lat, city.lon)) < 1.5
        device, _ = DEVICES[int(world.population.device[user])]
        assert ad.device["devicetype"] == device.devicetype and ad.device["os"] == device.os
        assert ad.ts == pytest.approx(gen.clock.sim(float(batch.due[i])), abs=0.001)
        assert ad.page and ad.page.startswith(f"https://{ad.site.domain}/")
        assert "{" not in ad.page


def test_phones_get_the_mobile_layout(world: SimWorld) -> None:
    batch = generator(world, qps=5000).next_batch(1.0)
    mobile = np.array([d.mobile for d, _ in DEVICES])[world.population.device[batch.user]]
    shown = np.array([s.device for s in world.catalog.slots])[batch.slot]
    assert set(shown[mobile]) == {"any", "mobile"}
    assert set(shown[~mobile]) == {"any", "desktop"}


def test_the_rate_is_qps_on_average(world: SimWorld) -> None:
    gen = generator(world, qps=1500, diurnal=False)
    n = sum(len(gen.next_batch(t)) for t in np.arange(0.5, 10.01, 0.5))
    assert n / 10 == pytest.approx(1500, rel=0.05)


def test_sites_get_their_share_and_their_audience(world: SimWorld) -> None:
    gen = generator(world, qps=20_000, diurnal=False)
    batch = gen.next_batch(2.0)
    # page views per site follow the shares (one row per page view: the first ad call)
    first = np.r_[True, np.diff(batch.due) > 0]
    views = np.bincount(batch.site[first], minlength=len(world.catalog))
    np.testing.assert_allclose(views / views.sum(), world.catalog.share, atol=0.01)
    # the sports site's visitors are sports fans far more often than the population is
    sports = world.catalog.site_index("sports")
    fan = (world.population.seg_cat == taxonomy.INDEX["IAB17"]).any(axis=1)
    visitors = batch.user[first & (batch.site == sports)]
    assert fan[visitors].mean() > 1.7 * fan.mean()
    news = batch.user[first & (batch.site == world.catalog.site_index("news"))]
    assert fan[news].mean() == pytest.approx(fan.mean(), abs=0.04)


def test_the_diurnal_curve_over_a_simulated_day(world: SimWorld) -> None:
    """A simulated day in one real minute: requests per simulated hour follow the world's curve
    (its cities' local times), and each city's users come in their own evening."""
    gen = generator(world, qps=1500, day_minutes=1.0)
    batches = [gen.next_batch(t) for t in np.arange(1.0, 60.01, 1.0)]
    ts = np.concatenate([b.ts for b in batches])
    users = np.concatenate([b.user for b in batches])
    hour = ((ts - START) // 3600).astype(int)
    counts = np.bincount(hour, minlength=24)[:24]
    mids = START + (np.arange(24) + 0.5) * 3600
    expected = world.diurnal_curve(mids) / world.diurnal_curve(mids).sum() * counts.sum()
    np.testing.assert_allclose(counts, expected, rtol=0.12)
    assert counts.max() / counts.min() > 1.5
    tokyo = world.population.city[users] == [c.name for c in CITIES].index("Tokyo")
    utc_hour = (hour + 16) % 24  # START is 16:00 UTC
    evening = tokyo[(utc_hour >= 11) & (utc_hour < 13)].mean()  # 20:00-22:00 in Tokyo
    night = tokyo[(utc_hour >= 18) & (utc_hour < 20)].mean()  # 03:00-05:00 in Tokyo
    assert evening > 3 * night


def test_bursts_multiply_the_rate(world: SimWorld) -> None:
    gen = generator(world, qps=2000, diurnal=False, bursts=[Burst(at_s=1.0, seconds=1.0, factor=4)])
    before, during, after = (len(gen.next_batch(t)) for t in (1.0, 2.0, 3.0))
    assert during / before == pytest.approx(4, rel=0.15)
    assert after / before == pytest.approx(1, rel=0.15)
    gen.burst(factor=3, seconds=1.0)  # on demand: from the next window
    assert len(gen.next_batch(4.0)) / before == pytest.approx(3, rel=0.15)


def test_researching_users_visit_advertisers_and_some_buy(default_world: World) -> None:
    world = make_world(default_world, users=5000)
    gen = generator(world, qps=3000, day_minutes=0.5)
    events = [gen.next_batch(t).pixels for t in np.arange(1.0, 30.01, 1.0)]
    kinds = np.concatenate([e.kind for e in events])
    assert (kinds == VISIT).sum() > 50
    assert (kinds == PURCHASE).sum() > 0
    ads = world.advertisers.advertisers
    for e in events:
        assert np.all(np.diff(e.due) >= 0)
        for j in range(len(e)):
            advertiser = ads[int(e.advertiser[j])]
            cat = taxonomy.index_of(advertiser.cat)
            assert cat in world.population.seg_cat[int(e.user[j])].tolist()
            if e.kind[j] == PURCHASE:
                assert e.value[j] > 0
    assert 0 < gen.sample_fraction <= 1


def test_visits_come_from_researching_users(default_world: World) -> None:
    world = make_world(default_world, users=3000)
    gen = generator(world, qps=3000, day_minutes=0.5)
    for t in np.arange(0.5, 5.01, 0.5):
        px = gen.next_batch(t).pixels
        for j in np.flatnonzero(px.kind == VISIT).tolist():
            user = int(px.user[j])
            cat = taxonomy.index_of(world.advertisers.advertisers[int(px.advertiser[j])].cat)
            slot = world.population.seg_cat[user].tolist().index(cat)
            assert world.intent.state[user, slot] == RESEARCHING


def test_sim_time_runs_at_day_minutes(world: SimWorld) -> None:
    gen = generator(world, qps=500, day_minutes=2.0)
    batch = gen.next_batch(6.0)
    assert gen.clock.sim(6.0) - START == pytest.approx(6 * 720)
    assert batch.ts.max() <= START + 6 * 720
    assert world.intent.now == pytest.approx(6 * 720)
    assert TrafficSettings(day_minutes=2.0).speed == 720.0
    assert TrafficSettings().start_ts == START
    assert TrafficSettings(start="2025-06-04T16:00:00").start_ts == START  # UTC by default
    assert DAY_S / TrafficSettings(day_minutes=1440).speed == DAY_S


@pytest.mark.parametrize(
    ("site", "named"),
    [
        (
            Site(id="s", domain="s.example", slots=(Slot("a", 1, 1),), pages=("https://s/{slug}",)),
            "{slug}",
        ),
        (
            Site(id="s", domain="s.example", slots=(Slot("a", 1, 1),), audience={"IAB77": 2.0}),
            "IAB77",
        ),
        (Site(id="s", domain="s.example"), "at least one site"),
    ],
)
def test_bad_catalogs_are_named(site: Site, named: str) -> None:
    with pytest.raises(ValueError, match=named.replace("{", r"\{").replace("}", r"\}")):
        SiteCatalog(sites=[site])


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"qps": 0}, "traffic.qps"),
        ({"day_minutes": -1}, "traffic.day_minutes"),
        ({"start": "yesterday"}, "traffic.start"),
        ({"click_rate": 2.0}, "traffic.click_rate"),
        ({"max_inflight": 0}, "traffic.max_inflight"),
    ],
)
def test_bad_traffic_settings_name_the_key(kwargs: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        TrafficSettings(**kwargs)  # type: ignore[arg-type]


def test_ready_made_bodies_for_load_tests(default_world: World) -> None:
    from ssp.world.requests import ad_requests

    first = ad_requests(default_world.sites, n=300, seed=2, users=2000)
    assert len(first) == 300
    assert first == ad_requests(default_world.sites, n=300, seed=2, users=2000)
    sites = {s.id: s for s in default_world.sites}
    for body in first[::10]:
        parse_ad_request(body, sites)
