"""The CTR estimators: the online logistic regression learns from clicks; the oracle and the
constant say what they are told."""

from __future__ import annotations

import random

import pytest

from dsp.campaign import Creative
from dsp.ctr import ConstantCTR, LogisticCTR, OracleCTR, make_ctr_model
from dsp.targeting import read_request, with_parents
from exchange.openrtb import BidRequest, Imp

from .helpers import bidder, campaign, event, price, request, win_and_bill


def creative(cat: str) -> Creative:
    return Creative(
        id=cat,
        w=300,
        h=250,
        cat=(cat,),
        adomain=("a.example",),
        adm="<div/>",
        cat_all=with_parents([cat]),
    )


SPORTS, NEWS = creative("IAB17"), creative("IAB12")


def predict(model: object, req: BidRequest, cr: Creative, hour: int = 12) -> float:
    base = model.base(req, req.imp[0], read_request(req), hour)  # type: ignore[attr-defined]
    return float(model.predict(base, req, req.imp[0], cr))  # type: ignore[attr-defined]


def test_untrained_logistic_predicts_its_prior() -> None:
    m = LogisticCTR(prior=0.004)
    m.reset(0)
    assert predict(m, request(), SPORTS) == pytest.approx(0.004, rel=1e-9)


def test_logistic_learns_which_sites_and_segments_click() -> None:
    """Sports fans click sports creatives 3% of the time, everyone else 0.3%: the model learns to
    tell them apart, and its calibrated predictions land near the true rates."""
    m = LogisticCTR(prior=0.005, learning_rate=0.05)
    m.reset(0)
    rng = random.Random(5)
    fans = request("fan", segments=["IAB17-44"], site=("scores.example", ["IAB17"]))
    others = request("other", segments=["IAB12"], site=("news.example", ["IAB12"]))
    for _ in range(30_000):
        fan = rng.random() < 0.5
        req = fans if fan else others
        base = m.base(req, req.imp[0], read_request(req), 12)
        features = m.features(base, SPORTS)
        m.learn(features, False)  # the impression: a (fake) negative at once
        if rng.random() < (0.03 if fan else 0.003):
            m.learn(features, True)  # its click, later
    p_fan, p_other = predict(m, fans, SPORTS), predict(m, others, SPORTS)
    assert p_fan == pytest.approx(0.03, rel=0.35)
    assert p_other == pytest.approx(0.003, rel=0.6)
    assert p_fan > 4 * p_other
    assert m.examples_ > 30_000 and m.clicks_ > 0
    m.reset(0)
    assert predict(m, fans, SPORTS) == pytest.approx(0.005)


def test_a_few_unclicked_impressions_do_not_collapse_the_prior() -> None:
    """40 impressions without a click at a true rate near the prior are no evidence against it:
    pCTR must stay near 0.2%. (With AdaGrad's accumulators starting at 0, each of the ~12 fresh
    features moved by the whole learning rate on its first update and pCTR fell to ~0.01% after
    ~30 impressions, for good: the retargeting experiment's campaign stopped winning.)"""
    m = LogisticCTR(prior=0.002)
    m.reset(0)
    req = request("fan", segments=["IAB17-44"], site=("scores.example", ["IAB17"]))
    for _ in range(40):
        m.learn(m.features(m.base(req, req.imp[0], read_request(req), 12), SPORTS), False)
    assert predict(m, req, SPORTS) > 0.001


def test_logistic_features_are_stable_across_processes() -> None:
    a, b = LogisticCTR(), LogisticCTR()
    a.reset(0)
    b.reset(1)
    req = request(segments=["IAB17"])
    fa = a.features(a.base(req, req.imp[0], read_request(req), 8), SPORTS)
    fb = b.features(b.base(req, req.imp[0], read_request(req), 8), SPORTS)
    assert fa == fb  # CRC-32, not Python's per-process salted hash
    assert len(fa) >= 8


def test_oracle_reads_the_injected_truth() -> None:
    seen: list[tuple[str, str, str]] = []

    def truth(req: BidRequest, imp: Imp, cr: Creative) -> float:
        seen.append((req.id, imp.id, cr.id))
        return 0.25 if cr.cat == ("IAB17",) else 7.0

    m = OracleCTR(truth=truth)
    m.reset(0)
    assert predict(m, request("x"), SPORTS) == 0.25
    assert predict(m, request("y"), NEWS) == 1.0  # clipped to a probability
    assert seen == [("x", "1", "IAB17"), ("y", "1", "IAB12")]
    assert not m.learns


def test_constant_and_factory() -> None:
    assert predict(ConstantCTR(ctr=0.02), request(), SPORTS) == 0.02
    assert isinstance(make_ctr_model("logistic"), LogisticCTR)
    with pytest.raises(ValueError, match="truth function"):
        make_ctr_model("oracle")
    with pytest.raises(ValueError, match="unknown CTR model"):
        make_ctr_model("neural")


def test_campaign_bidder_trains_its_model_from_billing_and_clicks() -> None:
    b = bidder(campaign(strategy="truthful", params={}, value_per_click=1.0), model="logistic")
    assert isinstance(b.ctr_, LogisticCTR)
    first = price(b, request("r0"))
    assert first == pytest.approx(2.0)  # 1000 x 1.0 x the prior 0.002
    for i in range(40):
        req_id = f"c{i}"
        assert b.bid(request(req_id)) is not None
        win_and_bill(b, req_id, 0.6)
        b.on_click(event("click", req_id))
        b.on_click(event("click", req_id))  # a double click trains once
    assert b.ctr_.clicks_ == 40 and b.ctr_.examples_ == 80
    after = price(b, request("r-after"))
    assert after is not None and after > first
    assert b.stats()["campaigns"]["c1"]["clicks"] == 80


def test_campaign_bidder_with_an_injected_oracle() -> None:
    def truth(req: BidRequest, imp: Imp, cr: Creative) -> float:
        return 0.004 if req.id == "good" else 0.001

    b = bidder(
        campaign(strategy="truthful", params={}, value_per_click=1.0), model="oracle", truth=truth
    )
    assert isinstance(b.ctr_, OracleCTR)
    assert price(b, request("good")) == pytest.approx(4.0)
    assert price(b, request("poor")) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="truth"):
        bidder(campaign(), model="oracle")


def test_oracle_truth_named_in_the_file() -> None:
    from dsp.registry import make_bidder

    from .helpers import config

    cfg = config(campaign(strategy="truthful", params={}, value_per_click=1.0), model="oracle")
    cfg["dsp"]["ctr"]["truth"] = f"{__name__}:half_percent"
    b = make_bidder("campaign", {"config": cfg, "seed": 1})
    assert price(b, request()) == pytest.approx(5.0)


def half_percent(req: BidRequest, imp: Imp, cr: Creative) -> float:
    return 0.005
