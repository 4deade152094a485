"""Intent: the buying cycle of each (user, interest) in simulated time, and the running-shoes case."""

from __future__ import annotations

import numpy as np
import pytest

from gavel.config import World
from ssp.world import taxonomy
from ssp.world.intent import (
    DAY_S,
    DORMANT,
    PURCHASED,
    RESEARCHING,
    SATIATED,
    IntentBook,
)
from ssp.world.population import build_population
from ssp.world.settings import IntentSettings, UserSettings
from ssp.world.world import SimWorld
from tests.ssp.world.conftest import START, hold, make_world

ALLOWED = {
    (DORMANT, RESEARCHING),
    (RESEARCHING, PURCHASED),
    (RESEARCHING, DORMANT),
    (PURCHASED, SATIATED),
    (SATIATED, DORMANT),
}


def book(users: int = 20_000, seed: int = 1, **settings: float) -> IntentBook:
    pop = build_population(UserSettings(count=users, seed=seed))
    return IntentBook(population=pop, settings=IntentSettings(**settings), epoch=START, seed=seed)


def stationary(settings: IntentSettings, k: int, w: np.ndarray) -> np.ndarray:
    """The analytic stationary shares, averaged over pairs of weight ``w``."""
    a = settings.research_per_year / 365 * k * w  # per day
    b, p = 1 / settings.research_days, settings.buy_share
    c, d = 1 / settings.purchased_days, 1 / settings.satiated_days
    pi = np.stack([np.ones_like(a), a / b, a * p / c, a * p / d])
    return (pi / pi.sum(axis=0)).mean(axis=1)


def test_starts_and_stays_in_the_stationary_distribution() -> None:
    b = book()
    expected = stationary(b.settings, b.population.k, b.population.seg_w.ravel().astype(float))
    start = np.array(list(b.shares().values()))
    np.testing.assert_allclose(start, expected, atol=0.005)
    b.advance(START + 120 * DAY_S)
    np.testing.assert_allclose(np.array(list(b.shares().values())), expected, atol=0.006)
    assert b.shares()["researching"] == pytest.approx(expected[RESEARCHING], abs=0.006)


def test_only_the_allowed_transitions_happen() -> None:
    """Advanced one transition at a time, every move is an edge of the chain, and research
    spells end in a purchase about buy_share of the time."""
    b = book(users=500, research_per_year=40.0)
    seen: dict[tuple[int, int], int] = {}
    before = b.state.copy()
    end = 120 * DAY_S
    while True:
        nxt = float(b.next_t.min())
        if nxt > end:
            break
        count = b.count.copy()
        b.advance(START + nxt)
        changed = before != b.state
        assert ((b.count - count)[changed] == 1).all()
        for edge in zip(before[changed].tolist(), b.state[changed].tolist(), strict=True):
            seen[edge] = seen.get(edge, 0) + 1
        before = b.state.copy()
    assert set(seen) == ALLOWED
    ended = seen[(RESEARCHING, PURCHASED)] + seen[(RESEARCHING, DORMANT)]
    assert seen[(RESEARCHING, PURCHASED)] / ended == pytest.approx(b.settings.buy_share, abs=0.05)


def test_advance_reports_organic_purchases_at_their_time() -> None:
    b = book(users=5000)
    bought = b.advance(START + 30 * DAY_S)
    assert len(bought) > 0
    assert ((bought.t > START) & (bought.t <= START + 30 * DAY_S)).all()
    # each buyer holds the category as an interest
    for user, cat in zip(bought.user[:50].tolist(), bought.cat[:50].tolist(), strict=True):
        assert cat in b.population.seg_cat[user].tolist()
    # about buy_share of the research spells that ended were purchases
    assert len(b.advance(START + 30 * DAY_S)) == 0  # nothing twice


def test_reads_never_change_the_trajectories() -> None:
    """An oracle reading the world (state_of between advances) must not change what users do."""
    quiet, read = book(users=3000, seed=5), book(users=3000, seed=5)
    rng = np.random.default_rng(0)
    for day in range(1, 21):
        for user in rng.integers(0, 3000, 200).tolist():
            cat = int(read.population.seg_cat[user, rng.integers(0, read.population.k)])
            read.state_of(user, cat, START + (day - rng.random()) * DAY_S)
        quiet.advance(START + day * DAY_S)
        read.advance(START + day * DAY_S)
    assert np.array_equal(quiet.state, read.state)
    assert np.array_equal(quiet.next_t, read.next_t)


def test_state_of_between_advances_is_exact() -> None:
    a, b = book(users=2000, seed=9), book(users=2000, seed=9)
    a.advance(START + 10 * DAY_S)
    for user in range(0, 2000, 37):
        for slot in range(a.population.k):
            cat = int(a.population.seg_cat[user, slot])
            assert b.state_of(user, cat, START + 10 * DAY_S) == a.state[user, slot]
    assert b.state_of(0, taxonomy.NONE, START) == DORMANT


def interest(world: SimWorld, cat: str) -> tuple[int, int, int]:
    """A user holding ``cat`` as an interest: (user, slot, category index)."""
    c = taxonomy.INDEX[cat]
    user, slot = map(int, np.argwhere(world.population.seg_cat == c)[0])
    return user, slot, c


def test_a_purchase_stops_conversions_until_satiation_decays(default_world: World) -> None:
    """The running-shoes case: who just bought does not convert again in that category until
    the purchase has worn off (purchased, then satiated, then dormant again)."""
    world = make_world(default_world, users=2000)
    truth, intent = world.truth, world.intent
    user, slot, shoes = interest(world, "IAB17")
    hold(world, user, slot, RESEARCHING)
    assert truth.p_convert(user=user, ad_cat=shoes, t=START) == truth.settings.cvr_researching

    assert intent.purchase(user, shoes, START + 3600)
    assert intent.state_of(user, shoes, START + 3600) == PURCHASED
    assert not intent.purchase(user, shoes, START + 7200)  # no second purchase
    t = START + 3600
    states = []
    while intent.state_of(user, shoes, t) != DORMANT:
        assert truth.p_convert(user=user, ad_cat=shoes, t=t) == 0.0
        states.append(intent.state_of(user, shoes, t))
        t += 3600
        assert t < START + 400 * DAY_S, "never decayed"
    assert states[0] == PURCHASED and SATIATED in states
    assert truth.p_convert(user=user, ad_cat=shoes, t=t) == truth.settings.cvr_dormant
    assert intent.purchase(user, shoes, t)  # and may buy again


def test_purchase_outside_the_interests_is_refused(default_world: World) -> None:
    world = make_world(default_world, users=500)
    user = 3
    other = next(
        i for i in range(len(taxonomy.IDS)) if i not in world.population.seg_cat[user].tolist()
    )
    assert not world.intent.purchase(user, other, START)
    assert world.truth.p_convert(user=user, ad_cat=other, t=START) == 0.0


def test_researching_lists_the_researching_pairs() -> None:
    b = book(users=3000)
    users, cats = b.researching()
    assert users.size == (b.state == RESEARCHING).sum()
    for u, c in zip(users[:100].tolist(), cats[:100].tolist(), strict=True):
        assert b.state[u, b.population.seg_cat[u].tolist().index(c)] == RESEARCHING
