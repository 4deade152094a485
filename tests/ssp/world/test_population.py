"""The population: deterministic for a seed, the interest mix its settings ask for, compact."""

from __future__ import annotations

import random

import numpy as np
import pytest

from ssp.world import taxonomy
from ssp.world.cities import CITIES
from ssp.world.population import DEVICES, build_population
from ssp.world.settings import UserSettings


def test_same_seed_same_users_other_seed_other_users() -> None:
    a = build_population(UserSettings(count=5000, seed=3))
    b = build_population(UserSettings(count=5000, seed=3))
    c = build_population(UserSettings(count=5000, seed=4))
    for name in ("seg_cat", "seg_w", "city", "device", "visit_rate"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert not np.array_equal(a.seg_cat, c.seg_cat)


def test_arrays_shapes_and_weights() -> None:
    pop = build_population(UserSettings(count=3000, segments=5, seed=1))
    assert pop.n == 3000 and pop.k == 5
    assert pop.seg_cat.dtype == np.int8 and pop.seg_w.dtype == np.float32
    np.testing.assert_allclose(pop.seg_w.sum(axis=1), 1.0, atol=1e-5)
    assert (np.diff(pop.seg_w, axis=1) <= 1e-7).all()  # strongest first
    for row in pop.seg_cat[:500]:
        assert len(set(row.tolist())) == 5  # distinct interests
    assert pop.cum_rate[-1] == pytest.approx(1.0)
    assert pop.visit_rate.mean() == pytest.approx(20.0, rel=0.1)


def test_segment_mix_matches_weighted_sampling_without_replacement() -> None:
    """Each user's interests are ``k`` categories drawn without replacement in proportion to
    their popularity; checked against a plain-Python sampler (tolerance 0.015)."""
    k, n = 4, 40_000
    pop = build_population(UserSettings(count=n, segments=k, seed=11))
    rng = random.Random(0)
    ids = list(taxonomy.IDS)
    counts = dict.fromkeys(ids, 0)
    trials = 20_000
    for _ in range(trials):
        left = {c: taxonomy.POPULARITY[c] for c in ids}
        for _ in range(k):
            pick = rng.choices(list(left), weights=list(left.values()))[0]
            counts[pick] += 1
            del left[pick]
    share = pop.segment_share()
    for i, cat in enumerate(ids):
        assert share[i] == pytest.approx(counts[cat] / trials, abs=0.015), cat
    # the most popular interest is held by many more users than the least popular
    assert share[taxonomy.INDEX["IAB1"]] > 4 * share[taxonomy.INDEX["IAB23"]]


def test_interest_overrides_and_device_and_city_mix() -> None:
    pop = build_population(
        UserSettings(count=20_000, seed=2, interests={"IAB17": 100.0}, phone_share=0.5)
    )
    assert pop.segment_share()[taxonomy.INDEX["IAB17"]] > 0.97
    phones = np.array([d.devicetype == 4 for d, _ in DEVICES])[pop.device]
    assert phones.mean() == pytest.approx(0.5, abs=0.02)
    shares = np.bincount(pop.city, minlength=len(CITIES)) / pop.n
    for city, got in zip(CITIES, shares, strict=True):
        assert got == pytest.approx(city.share / sum(c.share for c in CITIES), abs=0.02)


def test_wire_ids_segments_and_weights() -> None:
    pop = build_population(UserSettings(count=100, seed=1))
    assert pop.index("u42") == 42 and pop.wire_id(42) == "u42"
    for bad in ("u100", "x1", "u", "u-1", "u1a", None, 7, "demo-1"):
        assert pop.index(bad) is None
    segs = pop.segments(5)
    assert len(segs) == pop.k and all(s in taxonomy.INDEX for s in segs)
    top = taxonomy.INDEX[segs[0]]
    assert pop.weight(5, top) == pytest.approx(float(pop.seg_w[5, 0]))
    missing = next(i for i in range(len(taxonomy.IDS)) if taxonomy.IDS[i] not in segs)
    assert pop.weight(5, missing) == 0.0
    assert pop.weight(5, taxonomy.NONE) == 0.0


def test_a_million_users_take_under_60_bytes_each() -> None:
    pop = build_population(UserSettings(count=1_000_000, seed=1))
    assert pop.nbytes / pop.n < 60


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"count": 0}, "users.count"),
        ({"segments": 0}, "users.segments"),
        ({"segments": 30}, "users.segments"),
        ({"phone_share": 0.8, "tablet_share": 0.3}, "phone_share"),
        ({"interests": {"IAB99": 1.0}}, "IAB99"),
        ({"interests": {"IAB3": -1.0}}, "IAB3"),
    ],
)
def test_bad_user_settings_name_the_key(kwargs: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        UserSettings(**kwargs)  # type: ignore[arg-type]
