"""The load test's request mix: every /ad body is one the SSP accepts for the world's sites, every
generated OpenRTB request meets OpenRTB, and the corpus' invalid requests are told apart."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from bench.traffic_mix import (
    CORPUS,
    ad_bodies,
    corpus_bodies,
    generated_ad_requests,
    meets_openrtb,
    openrtb_bodies,
)
from exchange.openrtb import parse_bid_request
from gavel.config import DEFAULT_CONFIG, load_world
from ssp.adrequest import parse_ad_request

SITES = load_world(DEFAULT_CONFIG).sites


def test_ad_bodies_are_accepted_for_every_site_by_share() -> None:
    bodies, source = ad_bodies(SITES, n=2000, seed=3)
    assert source in ("ssp.world", "config sites")
    by_id = {s.id: s for s in SITES}
    seen = Counter()
    for body in bodies:
        ad = parse_ad_request(body, by_id)  # raises on anything the SSP would reject
        seen[(ad.site.id, ad.slot.id)] += 1
    assert {site for site, _ in seen} == set(by_id)  # every site visited
    assert len(seen) == sum(len(s.slots) for s in SITES)  # every slot shown


def test_the_mix_is_the_same_for_the_same_seed() -> None:
    assert generated_ad_requests(SITES, n=50, seed=9) == generated_ad_requests(SITES, n=50, seed=9)
    assert generated_ad_requests(SITES, n=50, seed=9) != generated_ad_requests(SITES, n=50, seed=8)


def test_users_keep_their_device_and_segments() -> None:
    by_user: dict[str, set[bytes]] = {}
    for ad in generated_ad_requests(SITES, n=3000, users=50, seed=1):
        key = orjson.dumps([ad["device"], ad["segments"], ad["geo"]["city"]])
        by_user.setdefault(ad["user"], set()).add(key)
    assert all(len(v) == 1 for v in by_user.values())


def test_generated_openrtb_requests_meet_openrtb_and_parse() -> None:
    mix = openrtb_bodies(SITES, corpus_share=0.0, n=300, seed=4)
    assert all(b.origin == "generated" and b.valid for b in mix)
    imps = Counter()
    for b in mix:
        req = orjson.loads(b.body)
        assert meets_openrtb(req)
        parse_bid_request(b.body, currency="USD")
        imps[len(req["imp"])] += 1
    assert imps[1] and len(imps) > 1  # single- and multi-imp requests


def test_meets_openrtb_is_what_the_ssp_accepts() -> None:
    ok = {"id": "r", "imp": [{"id": "1", "banner": {"w": 1, "h": 1}}]}
    assert meets_openrtb(ok)
    assert not meets_openrtb({**ok, "id": ""})
    assert not meets_openrtb({**ok, "imp": []})
    assert not meets_openrtb({**ok, "imp": [{"id": "1"}]})
    assert not meets_openrtb({**ok, "imp": [ok["imp"][0], ok["imp"][0]]})
    assert not meets_openrtb({**ok, "tmax": -1})
    assert not meets_openrtb([ok])
    # lenient where OpenRTB only recommends: a numeric string is read (the SSP answers it, no 400)
    assert meets_openrtb({**ok, "tmax": "100"})


@pytest.mark.skipif(not CORPUS.exists(), reason=f"no conformance corpus at {CORPUS}")
def test_the_corpus_is_mixed_in_with_its_invalid_requests_marked() -> None:
    corpus = corpus_bodies()
    invalid = sum(not b.valid for b in corpus)
    assert len(corpus) > 1000
    assert 0 < invalid < len(corpus) * 0.2  # "about 95% are valid"
    mix = openrtb_bodies(SITES, corpus_share=0.5, n=1000, seed=2)
    origins = Counter(b.origin for b in mix)
    assert origins == {"corpus": 500, "generated": 500}
    assert any(not b.valid for b in mix)
