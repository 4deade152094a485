"""The users: a population held as numpy arrays (one row per user), deterministic for a seed.

A user is an index ``0 <= i < n`` (``u{i}`` on the wire) with a home city, a device, a visit rate
(page views per day) and ``k`` interest segments: IAB tier-1 categories with weights summing to 1,
strongest first. A million users take ~35 MB and build in about a second.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ssp.world import taxonomy
from ssp.world.cities import CITIES
from ssp.world.settings import UserSettings

log = logging.getLogger(__name__)

_CHUNK = 200_000  # rows drawn at once while building (bounds the temporary memory)


@dataclass(frozen=True, slots=True)
class Device:
    """A device model of the world: its OpenRTB fields and which page layout it gets."""

    #: OpenRTB 2.6 ``devicetype``: 4 phone, 2 personal computer, 5 tablet.
    devicetype: int
    os: str
    ua: str
    #: Phones get the mobile layout (slots with ``device = "mobile"``); the others the desktop one.
    mobile: bool


_SAFARI = "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5"
_CHROME = "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0"
_UA = {
    "iPhone": f"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) {_SAFARI} Mobile/15E148",
    "Pixel": f"Mozilla/5.0 (Linux; Android 14; Pixel 8) {_CHROME} Mobile Safari/537.36",
    "Windows": f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {_CHROME} Safari/537.36",
    "Mac": f"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) {_SAFARI} Safari/605.1.15",
    "Linux": "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0",
    "iPad": f"Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) {_SAFARI} Mobile/15E148",
    "Galaxy Tab": f"Mozilla/5.0 (Linux; Android 14; SM-X710) {_CHROME} Safari/537.36",
}
#: The device models, and each one's share within its class (phone, desktop, tablet).
DEVICES: tuple[tuple[Device, float], ...] = (
    (Device(4, "iOS", _UA["iPhone"], mobile=True), 0.45),
    (Device(4, "Android", _UA["Pixel"], mobile=True), 0.55),
    (Device(2, "Windows", _UA["Windows"], mobile=False), 0.68),
    (Device(2, "macOS", _UA["Mac"], mobile=False), 0.27),
    (Device(2, "Linux", _UA["Linux"], mobile=False), 0.05),
    (Device(5, "iPadOS", _UA["iPad"], mobile=False), 0.60),
    (Device(5, "Android", _UA["Galaxy Tab"], mobile=False), 0.40),
)


@dataclass(frozen=True, eq=False, slots=True)
class Population:
    """The users as a structure of arrays; build one with :func:`build_population`."""

    #: (n, k) int8: the category index (ssp.world.taxonomy) of each interest, strongest first.
    seg_cat: np.ndarray
    #: (n, k) float32: the weight of each interest; each row sums to 1.
    seg_w: np.ndarray
    #: (n,) int8: index into ssp.world.cities.CITIES.
    city: np.ndarray
    #: (n,) int8: index into DEVICES.
    device: np.ndarray
    #: (n,) float32: page views per day.
    visit_rate: np.ndarray
    #: (n,) float64: the cumulative visit rate, normalised to end at 1 (for sampling by activity).
    cum_rate: np.ndarray

    @property
    def n(self) -> int:
        return int(self.seg_cat.shape[0])

    @property
    def k(self) -> int:
        return int(self.seg_cat.shape[1])

    @property
    def nbytes(self) -> int:
        return sum(
            a.nbytes
            for a in (
                self.seg_cat,
                self.seg_w,
                self.city,
                self.device,
                self.visit_rate,
                self.cum_rate,
            )
        )

    @staticmethod
    def wire_id(user: int) -> str:
        return f"u{user}"

    def index(self, wire_id: object) -> int | None:
        """The user index of a wire id (``"u123"`` -> 123), or None for anyone else."""
        if not isinstance(wire_id, str) or len(wire_id) < 2 or wire_id[0] != "u":
            return None
        digits = wire_id[1:]
        if not digits.isdigit() or len(digits) > 12:
            return None
        i = int(digits)
        return i if i < self.n else None

    def segments(self, user: int) -> list[str]:
        """The user's interest segments as IAB ids, strongest first."""
        ids = taxonomy.IDS
        return [ids[c] for c in self.seg_cat[user].tolist()]

    def weight(self, user: int, cat: int) -> float:
        """The user's interest weight on category index ``cat`` (0 when not an interest)."""
        if cat < 0:
            return 0.0
        row = self.seg_cat[user].tolist()
        return float(self.seg_w[user, row.index(cat)]) if cat in row else 0.0

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` users drawn with probability proportional to their visit rate."""
        users = np.searchsorted(self.cum_rate, rng.random(size), side="right")
        return np.minimum(users, self.n - 1)

    def segment_share(self) -> np.ndarray:
        """For each category, the share of users holding it as an interest."""
        counts = np.bincount(self.seg_cat.ravel(), minlength=len(taxonomy.IDS))
        return counts / self.n


def build_population(settings: UserSettings) -> Population:
    """Draw ``settings.count`` users from ``settings.seed``: the same seed, the same users."""
    rng = np.random.default_rng(settings.seed)
    n, k = settings.count, settings.segments
    popularity = np.array(
        [settings.interests.get(c, taxonomy.POPULARITY[c]) for c in taxonomy.IDS], dtype=float
    )
    if np.count_nonzero(popularity) < k:
        raise ValueError(f"users.interests: fewer than users.segments ({k}) categories are > 0")
    p = popularity / popularity.sum()
    inv_p = np.where(p > 0, 1 / np.maximum(p, 1e-30), 1e30).astype(np.float32)
    seg_cat = np.empty((n, k), dtype=np.int8)
    seg_w = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        m = min(_CHUNK, n - start)
        # Exponential race (Gumbel top-k): the k categories whose Exp(1) / p come first are k
        # distinct draws, in order, with probability proportional to popularity.
        keys = rng.standard_exponential((m, len(p)), dtype=np.float32) * inv_p
        top = np.argpartition(keys, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(keys, top, axis=1), axis=1)
        seg_cat[start : start + m] = np.take_along_axis(top, order, axis=1)
        # Dirichlet weights, strongest first: the first-drawn category gets the largest weight.
        g = rng.gamma(settings.concentration, size=(m, k)) + 1e-9
        w = -np.sort(-(g / g.sum(axis=1, keepdims=True)), axis=1)
        seg_w[start : start + m] = w
    city_p = np.array([c.share for c in CITIES])
    city = rng.choice(len(CITIES), size=n, p=city_p / city_p.sum()).astype(np.int8)
    device = _draw_devices(rng, n, settings)
    sigma = settings.activity_sigma
    mu = np.log(settings.page_views_per_day) - sigma * sigma / 2
    visit_rate = rng.lognormal(mu, sigma, size=n).astype(np.float32)
    cum_rate = np.cumsum(visit_rate, dtype=np.float64)
    cum_rate /= cum_rate[-1]
    pop = Population(
        seg_cat=seg_cat,
        seg_w=seg_w,
        city=city,
        device=device,
        visit_rate=visit_rate,
        cum_rate=cum_rate,
    )
    log.debug("built %d users (%.1f MB)", n, pop.nbytes / 1e6)
    return pop


def _draw_devices(rng: np.random.Generator, n: int, settings: UserSettings) -> np.ndarray:
    """Device model per user: a class (phone, desktop, tablet), then a model within the class."""
    phone, tablet = settings.phone_share, settings.tablet_share
    classes = {4: phone, 2: 1.0 - phone - tablet, 5: tablet}
    p = np.array([classes[d.devicetype] * within for d, within in DEVICES])
    return rng.choice(len(DEVICES), size=n, p=p / p.sum()).astype(np.int8)
