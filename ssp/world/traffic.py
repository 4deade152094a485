"""The open-loop traffic generator: batches of ``/ad`` requests and advertiser pixel events.

Window after window of real time, vectorised:

1. page views arrive as a Poisson process (:class:`~ssp.world.arrivals.Arrivals`) at
   ``qps / slots per page`` a second, following the population's diurnal curve in simulated time;
2. each picks a site by ``share`` and a visitor by rejection sampling: a user drawn by visit rate is
   kept with probability ``affinity / max affinity * diurnal(local time) / peak``, where
   ``affinity = prod_i skew[cat_i] ** min(1, k * w_i)`` over the user's ``k`` interests (weights
   ``w_i``) and the site's ``audience`` skews: a user holding the category at average weight or
   more is ``skew`` times as likely to visit, a weaker interest counts in part;
3. each page view asks for every slot of the site's layout for the user's device (phones get
   ``device = "mobile"`` slots, the others ``"desktop"``; ``"any"`` is on both);
4. each ad request gets the page URL (from the site's patterns), the user id and segments, the
   device, the geo (home city, jittered) and ``ts`` (the simulated time).

Researching users also visit advertisers' sites and some research ends in a purchase: those
become pixel events, thinned by the same sampling fraction as the page views (the generator
emits a sample of the world's page views: ``qps`` sets the sample's size).

Nothing waits for answers: the schedule depends only on the seed, the settings and the clock.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import orjson

from ssp.world import taxonomy
from ssp.world.arrivals import Arrivals
from ssp.world.cities import CITIES
from ssp.world.clock import DIURNAL_PEAK, SimClock, diurnal
from ssp.world.intent import DAY_S, Purchases
from ssp.world.keyed import seed_key, uniform
from ssp.world.population import DEVICES
from ssp.world.settings import Burst
from ssp.world.world import SimWorld

VISIT, PURCHASE = 0, 1
PIXEL_EVENTS = ("visit", "purchase")
_KM_PER_DEGREE = 111.2
_VALUE_SIGMA = 0.5


@dataclass(slots=True)
class PixelEvents:
    """Advertiser-site events of one window: visits of researching users and purchases."""

    due: np.ndarray  # real seconds since the start, sorted
    ts: np.ndarray  # simulated unix time
    user: np.ndarray  # population index
    advertiser: np.ndarray  # index into world.advertisers.advertisers
    kind: np.ndarray  # VISIT or PURCHASE
    value: np.ndarray  # order value of a purchase (0 for a visit)

    def __len__(self) -> int:
        return int(self.due.size)


@dataclass(slots=True)
class Batch:
    """The ad requests of one window of real time ``[start, end)``, in time order."""

    start: float
    end: float
    due: np.ndarray  # real seconds since the start of the run
    ts: np.ndarray  # simulated unix time
    user: np.ndarray  # population index
    site: np.ndarray  # catalog site index
    slot: np.ndarray  # catalog flat slot index
    bodies: list[bytes]  # the POST /ad bodies
    page_views: int
    pixels: PixelEvents

    def __len__(self) -> int:
        return len(self.bodies)


class TrafficGenerator:
    """Schedules the world's traffic; :meth:`next_batch` moves it forward in real time."""

    def __init__(
        self,
        *,
        world: SimWorld,
        qps: float,
        clock: SimClock,
        seed: int,
        diurnal: bool = True,
        bursts: Sequence[Burst] = (),
    ) -> None:
        self.world = world
        self.clock = clock
        self.diurnal = diurnal
        self.visits_per_day = world.intent.settings.advertiser_visits_per_day
        self._purchase_keys = [seed_key(seed, 100 + salt) for salt in range(4)]
        streams = np.random.SeedSequence(seed).spawn(3)
        pages, arrivals, pixels = (np.random.default_rng(s) for s in streams)
        self.rng, self._pixel_rng = pages, pixels
        self.slots_per_page = world.catalog.slots_per_page(world.mobile_share())
        if self.slots_per_page <= 0:
            raise ValueError("no site has a slot for any device: nothing to request")
        self.page_rate = qps / self.slots_per_page
        self.arrivals = Arrivals(
            rate=self.page_rate,
            clock=clock,
            rng=arrivals,
            curve=world.diurnal_curve if diurnal else None,
            peak=DIURNAL_PEAK,
            bursts=bursts,
        )
        pop = world.population
        world_rate = float(pop.visit_rate.sum(dtype=np.float64)) / DAY_S  # page views / sim s
        #: The share of the world's page views (and advertiser events) the generator emits.
        self.sample_fraction = min(1.0, self.page_rate / clock.speed / world_rate)
        #: Real seconds generated so far.
        self.t = 0.0
        cat = world.catalog
        self._site_ids = [s.id for s in cat.sites]
        self._slot_prefix = [b'{"slot":' + orjson.dumps(s.id) + b"," for s in cat.slots]
        self._devices = [{"ua": d.ua, "devicetype": d.devicetype, "os": d.os} for d, _ in DEVICES]
        self._mobile = np.array([d.mobile for d, _ in DEVICES])
        self._city_geo = [c.geo() for c in CITIES]
        self._lang = [c.lang for c in CITIES]
        self._offset = np.array([c.utcoffset * 60 for c in CITIES], dtype=float)
        self._lat = np.array([c.lat for c in CITIES])
        self._lon = np.array([c.lon for c in CITIES])
        self._dates: dict[int, str] = {}
        # the largest affinity a visitor can have: the k largest skews (>= 1) all held fully
        top = np.sort(np.maximum(cat.log_skew, 0.0), axis=1)[:, -pop.k :]
        self._log_max_affinity = top.sum(axis=1)
        ads = world.advertisers.advertisers
        self._order_value = np.array([a.order_value for a in ads] or [0.0])

    def burst(self, *, factor: float, seconds: float, at: float | None = None) -> Burst:
        """On demand: ``factor`` times the traffic for ``seconds``, from ``at`` (default: the
        first time not generated yet)."""
        return self.arrivals.burst(factor=factor, seconds=seconds, at=self.t if at is None else at)

    def next_batch(self, until: float) -> Batch:
        """The requests and pixel events of real times ``[self.t, until)``."""
        r0, r1 = self.t, max(self.t, until)
        self.t = r1
        times = self.arrivals.window(r0, r1)
        world, rng = self.world, self.rng
        pop, cat = world.population, world.catalog
        ts = self.clock.sim_array(times)
        sites = np.searchsorted(cat.cum_share, rng.random(times.size), side="right")
        sites = np.minimum(sites, len(cat) - 1)
        users = self._visitors(sites, ts)
        mobile = self._mobile[pop.device[users]]
        layout = sites * 2 + np.where(mobile, 0, 1)
        counts = cat.layout_count[layout]
        page = np.repeat(np.arange(times.size), counts)
        within = np.arange(page.size) - np.repeat(np.cumsum(counts) - counts, counts)
        slots = cat.layout_slots[cat.layout_start[layout][page] + within]
        bodies = self._bodies(sites, users, ts, page, slots)
        return Batch(
            start=r0,
            end=r1,
            due=times[page],
            ts=ts[page],
            user=users[page],
            site=sites[page],
            slot=slots,
            bodies=bodies,
            page_views=int(times.size),
            pixels=self._pixel_events(r0, r1),
        )

    # -- visitors and bodies ---------------------------------------------------------------------

    def _visitors(self, sites: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """A visitor per page view: by visit rate, audience skew and local time of day."""
        pop, cat, rng = self.world.population, self.world.catalog, self.rng
        users = np.empty(sites.size, dtype=np.int64)
        todo = np.arange(sites.size)
        while todo.size:
            cand = pop.sample(rng, todo.size)
            s = sites[todo]
            strength = np.minimum(1.0, pop.k * pop.seg_w[cand])
            log_affinity = (strength * cat.log_skew[s[:, None], pop.seg_cat[cand]]).sum(axis=1)
            accept = np.exp(log_affinity - self._log_max_affinity[s])
            if self.diurnal:
                local = ts[todo] + self._offset[pop.city[cand]]
                accept = accept * diurnal(local) / DIURNAL_PEAK
            ok = rng.random(todo.size) < accept
            users[todo[ok]] = cand[ok]
            todo = todo[~ok]
        return users

    def _page_fields(
        self, sites: np.ndarray, users: np.ndarray, ts: np.ndarray
    ) -> list[tuple[int, int, int, int, float, float, float, str, list[int]]]:
        """The drawn fields of each page view: site, user, city, device, ts, lat, lon, page URL and
        the user's segment categories. One sequence of random draws, whatever the views become
        (``/ad`` bodies here, OpenRTB requests in the simulator)."""
        pop, cat, rng = self.world.population, self.world.catalog, self.rng
        n = sites.size
        city = pop.city[users]
        jitter = self.world.users.geo_jitter_km / _KM_PER_DEGREE
        lat = self._lat[city] + rng.normal(0, jitter, n)
        lon = self._lon[city] + rng.normal(0, jitter, n) / np.cos(np.radians(self._lat[city]))
        pattern = (rng.random(n) * cat.n_pages[sites]).astype(np.int64)
        article = rng.integers(10_000, 1_000_000, n)
        pages = cat.pages
        out = []
        for s, u, c, d, t, la, lo, pat, art, segs in zip(
            sites.tolist(),
            users.tolist(),
            city.tolist(),
            pop.device[users].tolist(),
            np.round(ts, 3).tolist(),
            np.round(lat, 4).tolist(),
            np.round(np.clip(lon, -180, 180), 4).tolist(),
            pattern.tolist(),
            article.tolist(),
            pop.seg_cat[users].tolist(),
            strict=True,
        ):
            template = pages[s][pat]
            url = template.format(id=art, date=self._date(t)) if "{" in template else template
            out.append((s, u, c, d, t, la, lo, url, segs))
        return out

    def _bodies(
        self,
        sites: np.ndarray,
        users: np.ndarray,
        ts: np.ndarray,
        page: np.ndarray,
        slots: np.ndarray,
    ) -> list[bytes]:
        """One JSON body per ad request; the fields of a page view are serialised once."""
        ids, site_ids = taxonomy.IDS, self._site_ids
        devices, city_geo, lang = self._devices, self._city_geo, self._lang
        dumps = orjson.dumps
        common: list[bytes] = []
        for s, u, c, d, t, la, lo, url, segs in self._page_fields(sites, users, ts):
            device = devices[d].copy()
            device["ip"] = f"10.{u >> 16 & 255}.{u >> 8 & 255}.{u & 255}"
            device["lang"] = lang[c]
            geo = {"lat": la, "lon": lo, **city_geo[c]}
            body = {
                "site": site_ids[s],
                "page": url,
                "user": f"u{u}",
                "segments": [ids[x] for x in segs],
                "device": device,
                "geo": geo,
                "ts": t,
            }
            common.append(dumps(body)[1:])
        prefix = self._slot_prefix
        return [prefix[j] + common[p] for p, j in zip(page.tolist(), slots.tolist(), strict=True)]

    def _date(self, ts: float) -> str:
        day = int(ts // DAY_S)
        text = self._dates.get(day)
        if text is None:
            text = self._dates[day] = time.strftime("%Y/%m/%d", time.gmtime(day * DAY_S))
        return text

    # -- advertiser events -----------------------------------------------------------------------

    def _keyed(self, bought: Purchases, salt: int) -> np.ndarray:
        """A uniform per purchase, from the purchase (user, category, time) and ``salt``."""
        return uniform(_purchase_key(bought) ^ self._purchase_keys[salt])

    def _pixel_events(self, r0: float, r1: float) -> PixelEvents:
        """Visits of researching users to advertisers' sites and organic purchases in the window
        (the world's intent moves to its end), thinned by the sampling fraction."""
        world, rng, clock = self.world, self._pixel_rng, self.clock
        bought = world.intent.advance(clock.sim(r1))
        book = world.advertisers
        if not len(book):
            return _no_pixels()
        users_r, cats_r = world.intent.researching()
        expected = (
            self.sample_fraction
            * users_r.size
            * self.visits_per_day
            * (clock.sim(r1) - clock.sim(r0))
            / DAY_S
        )
        n = rng.poisson(expected) if users_r.size else 0
        pick = rng.integers(0, max(1, users_r.size), n)
        v_adv = book.pick(cats_r[pick], rng.random(n)) if n else np.empty(0, np.int64)
        v_ok = v_adv >= 0
        v_due = np.sort(rng.uniform(r0, r1, n))[v_ok]
        # a purchase's fate (sampled? which advertiser? what value?) is a function of the
        # purchase itself, not of which window happened to report it
        u = [self._keyed(bought, salt) for salt in range(4)]
        kept = u[0] < self.sample_fraction
        p_adv = book.pick(bought.cat[kept], u[1][kept])
        p_ok = p_adv >= 0
        p_ts = bought.t[kept][p_ok]
        p_adv = p_adv[p_ok]
        mean = self._order_value[p_adv]
        u2, u3 = u[2][kept][p_ok], u[3][kept][p_ok]
        z = np.sqrt(-2 * np.log1p(-u2)) * np.cos(2 * np.pi * u3)  # Box-Muller: a normal draw
        value = mean * np.exp(_VALUE_SIGMA * z - _VALUE_SIGMA**2 / 2)
        p_due = np.clip((p_ts - clock.start_ts) / clock.speed, r0, r1)
        due = np.concatenate([v_due, p_due])
        order = np.argsort(due, kind="stable")
        return PixelEvents(
            due=due[order],
            ts=np.concatenate([clock.sim_array(v_due), p_ts])[order],
            user=np.concatenate([users_r[pick][v_ok], bought.user[kept][p_ok]])[order],
            advertiser=np.concatenate([v_adv[v_ok], p_adv])[order],
            kind=np.concatenate(
                [np.full(v_due.size, VISIT, np.int8), np.full(p_due.size, PURCHASE, np.int8)]
            )[order],
            value=np.concatenate([np.zeros(v_due.size), np.round(value, 2)])[order],
        )


def _purchase_key(bought: Purchases) -> np.ndarray:
    ms = np.round(bought.t * 1000).astype(np.uint64)
    return (
        (bought.user.astype(np.uint64) << np.uint64(32))
        ^ (bought.cat.astype(np.uint64) << np.uint64(24))
        ^ ms
    )


def _no_pixels() -> PixelEvents:
    empty = np.empty(0)
    return PixelEvents(
        due=empty,
        ts=empty,
        user=np.empty(0, np.int64),
        advertiser=np.empty(0, np.int64),
        kind=np.empty(0, np.int8),
        value=empty,
    )
