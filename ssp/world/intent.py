"""Intent: per user and interest, where they are in a buying cycle, moving in simulated time.

Each (user, interest) pair is a continuous-time Markov chain::

    dormant --a--> researching --b*buy_share--> purchased --c--> satiated --d--> dormant
                        \\--b*(1-buy_share)--> dormant  (gave up)

with ``a = research_per_year / 365 days * (k * weight)`` (a stronger interest is researched more
often), ``b = 1 / research_days``, ``c = 1 / purchased_days``, ``d = 1 / satiated_days``. A
conversion after an ad click (:meth:`IntentBook.purchase`) jumps researching or dormant to
purchased at once. Purchased and satiated users do not convert: the running-shoes case.

The chains start in their stationary distribution, so the world does not begin with everybody
dormant. Each pair holds its state (int8) and the time of its next transition (float32 seconds
since ``epoch``, drawn from the exponential holding time when the state is entered);
:meth:`IntentBook.advance` applies every transition due, vectorised. Reads of one pair settle that
pair first, so a read between two ``advance`` calls is exact too. The draws are counter-based
(:mod:`ssp.world.keyed`: a hash of the seed, the pair and its transition number), so a pair's
trajectory depends on the seed and on the purchases made, never on who read the book when.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ssp.world.keyed import seed_key, uniform
from ssp.world.population import Population
from ssp.world.settings import IntentSettings

DORMANT, RESEARCHING, PURCHASED, SATIATED = 0, 1, 2, 3
STATES = ("dormant", "researching", "purchased", "satiated")
DAY_S = 86_400.0
_CHUNK = 1 << 20  # pairs drawn at once at the start


@dataclass(slots=True)
class Purchases:
    """Purchases that happened without an ad (research spells that ended in a purchase)."""

    user: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    cat: np.ndarray = field(default_factory=lambda: np.empty(0, np.int8))
    #: Simulated unix time of each purchase.
    t: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))

    def __len__(self) -> int:
        return int(self.user.size)


class IntentBook:
    """The intent state of every (user, interest) of ``population`` (see the module docstring)."""

    def __init__(
        self,
        *,
        population: Population,
        settings: IntentSettings,
        epoch: float,
        seed: int,
    ) -> None:
        self.seed = seed
        self.population = population
        self.settings = settings
        #: Simulated unix time that the float32 times count from.
        self.epoch = epoch
        self._keys = {name: seed_key(seed, i) for i, name in enumerate(("start", "buy", "hold"))}
        s = settings
        self._a = s.research_per_year / (365 * DAY_S) * population.k
        self._b = 1 / (s.research_days * DAY_S)
        self._c = 1 / (s.purchased_days * DAY_S)
        self._d = 1 / (s.satiated_days * DAY_S)
        self._w = population.seg_w.reshape(-1)
        #: (n, k) uint16: transitions made by each pair (the counter of its random draws).
        self.count = np.zeros(population.seg_cat.shape, dtype=np.uint16)
        self.state, self.next_t = self._stationary_start()
        #: Simulated time (seconds since epoch) up to which transitions are applied.
        self.now = 0.0
        self._settled = Purchases()

    # -- rates and the start -----------------------------------------------------------------

    def _rates(self, state: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The rate (1/s) of leaving ``state`` for pairs of interest weight ``w``."""
        out = np.empty(state.shape, dtype=np.float64)
        out[state == DORMANT] = self._a * w[state == DORMANT]
        out[state == RESEARCHING] = self._b
        out[state == PURCHASED] = self._c
        out[state == SATIATED] = self._d
        return np.maximum(out, 1e-15)

    def _draw(self, salt: str, flat: np.ndarray, count: np.ndarray) -> np.ndarray:
        """Uniform draws for pairs ``flat`` at transition number ``count`` (see keyed)."""
        key = (flat.astype(np.uint64) << np.uint64(20)) ^ count.astype(np.uint64)
        return uniform(key ^ self._keys[salt])

    def _holding(self, state: np.ndarray, flat: np.ndarray, count: np.ndarray) -> np.ndarray:
        """Exponential holding times (s) of pairs ``flat`` entering ``state``."""
        u = self._draw("hold", flat, count)
        return -np.log1p(-u) / self._rates(state, self._w[flat])

    def _stationary_start(self) -> tuple[np.ndarray, np.ndarray]:
        """States drawn from the stationary distribution (per pair: it depends on the weight),
        in chunks to bound the temporary memory."""
        size = self._w.size
        state = np.empty(size, dtype=np.int8)
        nxt = np.empty(size, dtype=np.float32)
        p = self.settings.buy_share
        for lo in range(0, size, _CHUNK):
            flat = np.arange(lo, min(size, lo + _CHUNK))
            a = self._a * self._w[flat].astype(np.float64)
            # balance: pi_R = pi_D a/b, pi_P = pi_D a p/c, pi_S = pi_D a p/d (pi_D = 1, unscaled)
            r, bought, sat = a / self._b, a * p / self._c, a * p / self._d
            u = self._draw("start", flat, np.zeros(flat.size, np.uint16)) * (1 + r + bought + sat)
            s = (u > 1).astype(np.int8) + (u > 1 + r) + (u > 1 + r + bought)
            state[flat] = s
            nxt[flat] = self._holding(s, flat, np.zeros(flat.size, np.uint16))
        k = self.population.k
        return state.reshape(-1, k), nxt.reshape(-1, k)

    # -- time ----------------------------------------------------------------------------------

    def advance(self, t: float) -> Purchases:
        """Apply every transition due up to simulated unix time ``t``; the organic purchases."""
        rel = t - self.epoch
        found = [self._settled]
        self._settled = Purchases()
        if rel > self.now:
            state, nxt = self.state.reshape(-1), self.next_t.reshape(-1)
            count = self.count.reshape(-1)
            due = np.flatnonzero(nxt <= rel)
            while due.size:
                when = nxt[due].astype(np.float64)
                count[due] += 1
                new, bought = self._step(state[due], due, count[due])
                if bought.any():
                    users = due[bought] // self.population.k
                    cats = self.population.seg_cat.reshape(-1)[due[bought]]
                    found.append(Purchases(users, cats, when[bought] + self.epoch))
                state[due] = new
                after = when + self._holding(new, due, count[due])
                nxt[due] = after
                due = due[after <= rel]
            self.now = rel
        if len(found) == 1:
            return found[0]
        return Purchases(
            np.concatenate([f.user for f in found]),
            np.concatenate([f.cat for f in found]),
            np.concatenate([f.t for f in found]),
        )

    def _step(
        self, state: np.ndarray, flat: np.ndarray, count: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The next state of pairs ``flat`` (in ``state``), and which of them bought."""
        new = np.empty_like(state)
        new[state == DORMANT] = RESEARCHING
        researching = state == RESEARCHING
        bought = researching & (self._draw("buy", flat, count) < self.settings.buy_share)
        new[researching] = DORMANT
        new[bought] = PURCHASED
        new[state == PURCHASED] = SATIATED
        new[state == SATIATED] = DORMANT
        return new, bought

    # -- one pair --------------------------------------------------------------------------------

    def slot_of(self, user: int, cat: int) -> int:
        """The interest slot of category ``cat`` for ``user``, or -1 when it is not an interest."""
        if cat < 0:
            return -1
        row = self.population.seg_cat[user].tolist()
        return row.index(cat) if cat in row else -1

    def _settle(self, user: int, slot: int, rel: float) -> None:
        """Apply the transitions of one pair due by ``rel`` (a read between two ``advance``)."""
        flat = np.array([user * self.population.k + slot])
        while float(self.next_t[user, slot]) <= rel:
            when = float(self.next_t[user, slot])
            self.count[user, slot] += 1
            count = self.count[user, slot : slot + 1]
            new, bought = self._step(self.state[user, slot : slot + 1], flat, count)
            if bought[0]:
                cat = self.population.seg_cat[user, slot]
                self._settled = _append(self._settled, user, int(cat), when + self.epoch)
            self.state[user, slot] = new[0]
            self.next_t[user, slot] = when + float(self._holding(new, flat, count)[0])

    def state_of(self, user: int, cat: int, t: float) -> int:
        """The intent state of ``user`` for category ``cat`` at simulated time ``t``
        (dormant when ``cat`` is not one of the user's interests)."""
        slot = self.slot_of(user, cat)
        if slot < 0:
            return DORMANT
        self._settle(user, slot, t - self.epoch)
        return int(self.state[user, slot])

    def purchase(self, user: int, cat: int, t: float) -> bool:
        """``user`` buys in category ``cat`` at ``t`` (after an ad): purchased from now on.

        False (and nothing changes) when ``cat`` is not an interest of the user, or the user is
        purchased or satiated there already (who just bought does not buy again)."""
        slot = self.slot_of(user, cat)
        if slot < 0:
            return False
        rel = t - self.epoch
        self._settle(user, slot, rel)
        if self.state[user, slot] in (PURCHASED, SATIATED):
            return False
        self.state[user, slot] = PURCHASED
        self.count[user, slot] += 1
        flat = np.array([user * self.population.k + slot])
        hold = self._holding(
            self.state[user, slot : slot + 1], flat, self.count[user, slot : slot + 1]
        )
        self.next_t[user, slot] = rel + float(hold[0])
        return True

    # -- the whole book -------------------------------------------------------------------------

    def researching(self) -> tuple[np.ndarray, np.ndarray]:
        """(users, categories) of every pair in the researching state."""
        flat = np.flatnonzero(self.state.reshape(-1) == RESEARCHING)
        return flat // self.population.k, self.population.seg_cat.reshape(-1)[flat]

    def shares(self) -> dict[str, float]:
        """The share of (user, interest) pairs in each state."""
        counts = np.bincount(self.state.reshape(-1), minlength=len(STATES))
        return {name: float(c) / self.state.size for name, c in zip(STATES, counts, strict=True)}

    @property
    def nbytes(self) -> int:
        return int(self.state.nbytes + self.next_t.nbytes + self.count.nbytes)


def _append(p: Purchases, user: int, cat: int, t: float) -> Purchases:
    return Purchases(
        np.append(p.user, np.int64(user)),
        np.append(p.cat, np.int8(cat)),
        np.append(p.t, t),
    )
