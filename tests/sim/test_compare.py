"""The ground truth's expectations (exp_* figures), variants compared paired by seed, and the
per-request loop's handling of answers that are not BidResponses."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from gavel.sim.experiment import load_experiment
from gavel.sim.report import comparisons, verdict
from gavel.sim.runner import run_experiment

from .conftest import ROOT


def _rows(values: dict[str, list[float]]) -> list[dict[str, Any]]:
    return [{"variant": v, "seed": s, "dsp": "me", "x": x}
            for v, xs in values.items() for s, x in enumerate(xs)]  # fmt: skip


def test_paired_difference_separates_where_the_variants_intervals_overlap() -> None:
    # each seed's world moves both variants alike; b is 10% below a in every one
    a = [10.0, 20.0, 30.0, 15.0, 25.0]
    rows = _rows({"a": a, "b": [x * 0.9 for x in a]})
    (c,) = comparisons(rows, focus="me", fields=["x"])
    assert (c["variant"], c["baseline"], c["runs"]) == ("b", "a", 5)
    assert c["diff"] == pytest.approx(-2.0) and c["change"] == pytest.approx(-0.1)
    assert c["change_ci"] == pytest.approx(0.0, abs=1e-12)
    assert c["separate"] is True and c["overlap"] is True
    text = verdict(c)
    assert "excludes 0" in text and "-10%" in text and "worlds" in text


def test_no_clear_difference_is_said_plainly() -> None:
    rows = _rows({"a": [1.0, 2.0, 3.0], "b": [1.5, 1.5, 3.2], "c": [9.0, 9.0, 9.0]})
    cs = comparisons(rows, focus="me", fields=["x"])
    assert [(c["variant"], c["baseline"]) for c in cs] == [("b", "a"), ("c", "a"), ("c", "b")]
    assert cs[0]["separate"] is False
    assert "does NOT tell the variants apart" in verdict(cs[0])
    one = comparisons(_rows({"a": [1.0], "b": [2.0]}), focus="me", fields=["x"])
    assert one[0]["separate"] is None and "too few seeds" in verdict(one[0])


def test_compare_names_known_figures() -> None:
    exp = load_experiment(ROOT / "configs/experiments/retargeting.toml")
    assert exp.compare[0] == "exp_cpa"
    with pytest.raises(ValueError, match="not one of"):
        dataclasses.replace(exp, compare=("cpaa",))


@pytest.mark.parametrize("path", ["batch", "object"])
def test_expected_figures_follow_the_ground_truth(small, path: str) -> None:
    exp = load_experiment(small(path=path, days=0.2))
    (r,) = run_experiment(exp, base=ROOT)
    for d in r.market.dsps.values():
        f = d.figures()
        assert d.impressions > 0 and 0 < f["exp_clicks"] < d.impressions
        assert 0 <= f["exp_conversions"] < f["exp_clicks"]
        assert f["exp_cpc"] == pytest.approx(f["spend"] / f["exp_clicks"])
        assert math.isfinite(f["exp_roi"])
    clicks = sum(d.clicks for d in r.market.dsps.values())
    expected = sum(d.exp_clicks or 0.0 for d in r.market.dsps.values())
    assert abs(clicks - expected) < 5 * math.sqrt(expected) + 3  # realised ~ Poisson(expected)


class _Odd:
    """Answers that the live fan-out counts as invalid: not a BidResponse for this request."""

    def __init__(self, *, kind: str = "id") -> None:
        self.kind = kind

    def reset(self, seed: int | None = None) -> None:
        pass

    def bid(self, request: Any) -> Any:
        if self.kind == "id":
            return {"id": "not-" + request.id, "seatbid": [{"bid": []}]}
        return [1, 2, 3]


@pytest.mark.parametrize("kind", ["id", "list"])
def test_an_answer_that_is_no_bid_response_is_invalid_not_a_crash(
    small, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gavel.sim import runner

    exp = load_experiment(small(path="object", days=0.02))
    real = runner.make_bidder

    def make(spec: str, params: Any) -> Any:
        return _Odd(kind=kind) if spec == "odd" else real(spec, params)

    monkeypatch.setattr(runner, "make_bidder", make)
    odd = dataclasses.replace(exp.dsp[1], strategy="", bidder="odd", params={})
    (r,) = run_experiment(dataclasses.replace(exp, dsp=(exp.dsp[0], odd)), base=ROOT)
    t = r.market.dsps["other"]
    assert t.invalid > 0 and t.bids == 0 and t.invalid + t.timeouts == t.requests


def test_batch_p_convert_is_the_ground_truths_after_an_advance() -> None:
    import numpy as np

    from gavel.sim.experiment import DspEntry, Experiment
    from gavel.sim.fast import p_convert_batch
    from gavel.sim.runner import scenario
    from gavel.traffic import build_sim_world
    from ssp.world import taxonomy

    world = scenario(Experiment(users=2000, dsp=(DspEntry(name="x", bidder="constant"),)), ROOT, 4)
    sim = build_sim_world(world)
    t = world.traffic.start_ts + 86_400.0
    sim.truth.intent.advance(t)  # unix time
    users = np.arange(2000)
    for cat in ("IAB17", "IAB20", "IAB8-5", "none"):
        c = taxonomy.index_of(cat)
        got = p_convert_batch(sim.truth, users, c)
        want = [sim.truth.p_convert(user=int(u), ad_cat=c, t=t) for u in users]
        assert got.tolist() == want
        assert c < 0 or sum(want) > 0
        # zero outside the user's interests (the per-request path skips those: Market._render)
        rows = sim.population.seg_cat.tolist()
        assert all(p == 0 for u, p in enumerate(want) if c not in rows[u])
