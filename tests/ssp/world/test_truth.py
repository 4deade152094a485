"""The ground truth: P(click) rises with the match and the intent, falls with fatigue, stays in a
realistic range; the batch path and the oracle agree with it."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from exchange.openrtb import parse_bid_request
from gavel.config import World
from ssp.adrequest import parse_ad_request, to_openrtb
from ssp.world import taxonomy
from ssp.world.intent import DORMANT, PURCHASED, RESEARCHING, SATIATED
from ssp.world.oracle import Oracle
from ssp.world.truth import size_lift
from ssp.world.world import SimWorld
from tests.ssp.world.conftest import START, generator, hold, make_world

MRECT = {"w": 300, "h": 250, "pos": 1, "t": START}


def test_click_probability_rises_with_the_match(world: SimWorld) -> None:
    user = 7
    world.population.seg_w[user] = [0.7, 0.2, 0.06, 0.04]
    for slot in range(world.population.k):
        hold(world, user, slot, DORMANT)
    cats = world.population.seg_cat[user].tolist()
    outside = next(i for i in range(len(taxonomy.IDS)) if i not in cats)
    p = [world.truth.p_click(user=user, ad_cat=c, **MRECT) for c in [*cats, outside]]
    assert p == sorted(p, reverse=True) and len(set(p)) == len(p)
    assert p[0] / p[-1] == pytest.approx((0.5 + 5.0 * 0.7) / 0.5, rel=1e-5)


def test_click_probability_follows_the_intent(world: SimWorld) -> None:
    user, slot = 11, 0
    cat = int(world.population.seg_cat[user, slot])
    p = {}
    for state in (DORMANT, RESEARCHING, PURCHASED, SATIATED):
        hold(world, user, slot, state)
        p[state] = world.truth.p_click(user=user, ad_cat=cat, **MRECT)
    assert p[RESEARCHING] > p[PURCHASED] > p[DORMANT] > p[SATIATED]
    assert p[RESEARCHING] / p[DORMANT] == pytest.approx(world.truth.settings.lift_researching)


def test_slot_size_position_context_and_viewability(world: SimWorld) -> None:
    truth, cat = world.truth, int(world.population.seg_cat[3, 0])

    def p(**kw: object) -> float:
        base = {"user": 3, "ad_cat": cat, **MRECT}
        return truth.p_click(**{**base, **kw})  # type: ignore[arg-type]

    assert p(w=300, h=600) > p(w=300, h=250) > p(w=728, h=90) > p(w=320, h=50)
    assert p(pos=1) > p(pos=0) > p(pos=3)
    assert p(site_cat=cat) == pytest.approx(p() * truth.settings.context_lift)
    assert size_lift(300, 250) == 1.0 and 0.5 <= size_lift(123, 45) <= 1.5
    assert truth.viewability(1) > truth.viewability(0) > truth.viewability(3)


def test_fatigue_lowers_clicks_and_wears_off(world: SimWorld) -> None:
    truth, cat = world.truth, int(world.population.seg_cat[5, 0])
    ad = {"user": 5, "ad_cat": cat, "w": 300, "h": 250, "pos": 1, "campaign": "shoes|c1"}
    fresh = truth.p_click(**ad, t=START)
    for i in range(3):
        truth.exposures.record(5, "shoes|c1", START + i)
    tired = truth.p_click(**ad, t=START + 10)
    assert tired == pytest.approx(fresh / (1 + truth.settings.fatigue * 3), rel=1e-3)
    a_day_later = truth.p_click(**ad, t=START + 10 + 24 * 3600)
    assert tired < a_day_later < fresh
    assert truth.exposures.count(5, "shoes|c1", START + 2 + 24 * 3600) == pytest.approx(
        1.5, rel=1e-4
    )
    assert truth.p_click(**{**ad, "campaign": "other|c2"}, t=START + 10) == fresh


def test_average_ctr_is_realistic_and_targeting_pays(default_world: World) -> None:
    """Over the default world's traffic, ads of the default advertisers click 0.05%-1% on
    average; an ad in the user's strongest interest while researching clicks several times more."""
    world = make_world(default_world, users=20_000)
    batch = generator(world, qps=20_000).next_batch(1.0)
    users, slots = batch.user, batch.slot
    cat = world.catalog
    ads = np.array([taxonomy.index_of(a.cat) for a in default_world.advertisers[:4]])
    ad_cat = ads[np.random.default_rng(0).integers(0, ads.size, users.size)]
    p = world.truth.p_click_batch(
        users=users,
        w=cat.slot_w[slots],
        h=cat.slot_h[slots],
        pos=cat.slot_pos[slots],
        ad_cat=ad_cat,
        site_cat=cat.site_cat[cat.slot_site[slots]],
    )
    assert 0.0005 <= p.mean() <= 0.01, p.mean()
    top = world.population.seg_cat[users, 0].astype(np.int64)
    researching = world.intent.state[users, 0] == RESEARCHING
    targeted = world.truth.p_click_batch(
        users=users[researching],
        w=cat.slot_w[slots][researching],
        h=cat.slot_h[slots][researching],
        pos=cat.slot_pos[slots][researching],
        ad_cat=top[researching],
    )
    assert targeted.mean() > 5 * p.mean()
    assert targeted.mean() <= world.truth.settings.max_ctr


def test_batch_and_scalar_agree(world: SimWorld) -> None:
    rng = np.random.default_rng(1)
    n = 300
    users = rng.integers(0, world.population.n, n)
    ad_cat = rng.integers(-1, len(taxonomy.IDS), n)
    ad_cat[::3] = world.population.seg_cat[users[::3], 1]  # some matches
    slots = rng.integers(0, len(world.catalog.slots), n)
    cat = world.catalog
    w, h, pos = cat.slot_w[slots], cat.slot_h[slots], cat.slot_pos[slots]
    site_cat = cat.site_cat[cat.slot_site[slots]]
    batch = world.truth.p_click_batch(
        users=users, w=w, h=h, pos=pos, ad_cat=ad_cat, site_cat=site_cat
    )
    t = world.epoch + world.intent.now
    for i in range(n):
        one = world.truth.p_click(
            user=int(users[i]),
            w=int(w[i]),
            h=int(h[i]),
            pos=int(pos[i]),
            ad_cat=int(ad_cat[i]),
            site_cat=int(site_cat[i]),
            t=t,
        )
        assert batch[i] == pytest.approx(one, rel=1e-9), i


def test_the_oracle_reads_a_bid_request_as_the_truth_does(world: SimWorld) -> None:
    batch = generator(world, qps=500).next_batch(0.5)
    sites = {s.id: s for s in world.catalog.sites}
    oracle = Oracle(world=world)
    for i in range(20):
        ad = parse_ad_request(batch.bodies[i], sites)
        request = parse_bid_request(to_openrtb(ad, request_id=f"r{i}", tmax_ms=100, currency="USD"))
        (imp,) = request.imp
        user = int(batch.user[i])
        slot = world.catalog.slots[int(batch.slot[i])]
        site_cat = taxonomy.first_index(ad.site.cat)
        for cat in ("IAB17", "IAB20", world.population.segments(user)[0]):
            expected = world.truth.p_click(
                user=user,
                w=slot.w,
                h=slot.h,
                pos=slot.pos,
                ad_cat=taxonomy.index_of(cat),
                t=float(batch.ts[i]),
                site_cat=site_cat,
            )
            assert oracle(request, imp, cat) == pytest.approx(expected)
        # a known advertiser's category wins over what the bid declares
        bid = {"adomain": ["runfast.example"], "cat": ["IAB18"], "crid": "c1"}
        assert oracle(request, imp, bid) == pytest.approx(oracle(request, imp, "IAB17"))
        # ... and a creative object (the campaign bidder's dsp.campaign.Creative) reads the same
        creative = SimpleNamespace(id="c1", adomain=("runfast.example",), cat=("IAB18",))
        assert oracle(request, imp, creative) == pytest.approx(oracle(request, imp, bid))
        assert oracle.conversion(request, imp, "IAB17") == world.truth.p_convert(
            user=user, ad_cat=taxonomy.INDEX["IAB17"], t=float(batch.ts[i])
        )


def test_the_oracle_judges_strangers_on_their_segments(world: SimWorld) -> None:
    raw = {
        "id": "r1",
        "imp": [{"id": "1", "banner": {"w": 300, "h": 250, "pos": 1}}],
        "user": {"id": "cookie-xyz", "data": [{"segment": [{"id": "IAB17"}, {"id": "IAB20"}]}]},
        "site": {"cat": ["IAB12"]},
    }
    request = parse_bid_request(raw)
    oracle = Oracle(world=world)
    p_match = oracle(request, request.imp[0], "IAB17")
    p_other = oracle(request, request.imp[0], "IAB2")
    s = world.truth.settings
    assert p_match == pytest.approx(s.base_ctr * (s.match_floor + s.match_gain * 0.5))
    assert p_other == pytest.approx(s.base_ctr * s.match_floor)
    assert oracle.conversion(request, request.imp[0], "IAB17") == 0.0
