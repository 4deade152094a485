"""Small worlds for the tests: the default catalog and advertisers, a few thousand users."""

from __future__ import annotations

from typing import Any

import pytest

from gavel.config import DEFAULT_CONFIG, World, load_world
from ssp.world.clock import SimClock
from ssp.world.intent import DAY_S
from ssp.world.settings import UserSettings
from ssp.world.traffic import TrafficGenerator
from ssp.world.world import SimWorld, build_world

START = 1_749_052_800.0  # Wed 2025-06-04 16:00 UTC


@pytest.fixture(scope="session")
def default_world() -> World:
    return load_world(DEFAULT_CONFIG, environ={})


def make_world(cfg: World, *, users: int = 20_000, seed: int = 1, **kw: Any) -> SimWorld:
    return build_world(
        sites=kw.pop("sites", cfg.sites),
        users=kw.pop("user_settings", UserSettings(count=users, seed=seed)),
        intent=kw.pop("intent", cfg.intent),
        truth=kw.pop("truth", cfg.truth),
        advertisers=kw.pop("advertisers", cfg.advertisers),
        start_ts=START,
    )


@pytest.fixture
def world(default_world: World) -> SimWorld:
    return make_world(default_world)


def generator(world: SimWorld, *, qps: float = 2000, seed: int = 1, **kw: Any) -> TrafficGenerator:
    clock = SimClock.day_in(start_ts=START, day_minutes=kw.pop("day_minutes", 10.0))
    return TrafficGenerator(world=world, qps=qps, clock=clock, seed=seed, **kw)


def hold(world: SimWorld, user: int, slot: int, state: int) -> None:
    """Put one (user, interest) pair in ``state`` with no transition due for a year."""
    world.intent.state[user, slot] = state
    world.intent.next_t[user, slot] = 365 * DAY_S
