"""The simulated world in one object: sites, users, intent, advertisers and the ground truth."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ssp.config import Site
from ssp.world.advertisers import AdvertiserBook
from ssp.world.catalog import SiteCatalog
from ssp.world.cities import CITIES
from ssp.world.clock import diurnal
from ssp.world.intent import IntentBook
from ssp.world.population import DEVICES, Population, build_population
from ssp.world.settings import Advertiser, IntentSettings, TruthSettings, UserSettings
from ssp.world.truth import GroundTruth

log = logging.getLogger(__name__)


@dataclass(eq=False, slots=True)
class SimWorld:
    """Everything the traffic generator, the renderer and an oracle read; see :func:`build_world`."""

    catalog: SiteCatalog
    population: Population
    intent: IntentBook
    truth: GroundTruth
    advertisers: AdvertiserBook
    users: UserSettings
    #: Each city's share of the world's page views (by the visit rates of its users).
    city_share: np.ndarray

    @property
    def epoch(self) -> float:
        """Simulated unix time at which the world starts."""
        return self.intent.epoch

    @property
    def nbytes(self) -> int:
        return self.population.nbytes + self.intent.nbytes

    def mobile_share(self) -> float:
        """The share of page views made on phones (weighted by visit rate)."""
        mobile = np.array([d.mobile for d, _ in DEVICES])[self.population.device]
        w = self.population.visit_rate
        return float((w * mobile).sum() / w.sum())

    def diurnal_curve(self, sim_ts: np.ndarray) -> np.ndarray:
        """The world's page-view rate factor at simulated times (mean 1 over a day): each city's
        curve at its local time, weighted by its share of page views."""
        out = np.zeros(np.shape(sim_ts))
        for city, w in zip(CITIES, self.city_share, strict=True):
            if w > 0:
                out += w * diurnal(sim_ts + city.utcoffset * 60)
        return out


def build_world(
    *,
    sites: Sequence[Site],
    users: UserSettings | None = None,
    intent: IntentSettings | None = None,
    truth: TruthSettings | None = None,
    advertisers: Sequence[Advertiser] = (),
    start_ts: float,
) -> SimWorld:
    """Build the world: the same settings (seeds included), the same world."""
    t0 = time.perf_counter()
    users = users or UserSettings()
    population = build_population(users)
    book = IntentBook(
        population=population,
        settings=intent or IntentSettings(),
        epoch=start_ts,
        seed=users.seed,
    )
    world = SimWorld(
        catalog=SiteCatalog(sites=sites),
        population=population,
        intent=book,
        truth=GroundTruth(population=population, intent=book, settings=truth or TruthSettings()),
        advertisers=AdvertiserBook(advertisers=advertisers),
        users=users,
        city_share=_city_share(population),
    )
    log.info(
        "world: %d sites, %d users (%.1f MB), %d advertisers, built in %.2f s",
        len(world.catalog),
        population.n,
        world.nbytes / 1e6,
        len(world.advertisers),
        time.perf_counter() - t0,
    )
    return world


def _city_share(population: Population) -> np.ndarray:
    w = np.bincount(population.city, weights=population.visit_rate, minlength=len(CITIES))
    return np.asarray(w / w.sum())
