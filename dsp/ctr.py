"""Click-through-rate estimators: what a campaign bidder believes a bid's chance of a click is.

Three models share one small interface (:class:`CtrModel`):

- :class:`LogisticCTR`: online logistic regression on hashed features (numpy), trained by the DSP's
  own feedback: every billed impression is a negative example, every click a positive one.
- :class:`ConstantCTR`: one number, for strategies that should not depend on a model.
- :class:`OracleCTR`: the world's ground truth through an injected callable
  ``truth(request, imp, creative) -> float``, for research baselines (the upper bound of what a
  perfect model could do). The DSP never imports the world: whoever builds the bidder injects it.

Features of :class:`LogisticCTR` (hashed with CRC-32 into ``2**bits`` weights, so the same feature
gets the same weight in every process): site domain, each site category, slot size, slot position,
device type, OS, the user's local hour, each creative category, and each user segment crossed with
each creative category.

Training with delayed clicks uses the *fake negative* scheme (Ktena et al., 2019, "Addressing
Delayed Feedback for Continuous Training with Neural Networks in CTR Prediction"): an impression is
learnt as a negative at once and its click, later, as an extra positive. The model then estimates
q = p / (1 + p); predictions are calibrated back with p = q / (1 - q). The optimiser is per-coordinate
AdaGrad with L2, and the bias starts at the prior, so an untrained model predicts ``prior``.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from dsp.targeting import RequestFacts
from exchange.openrtb import BidRequest, Imp

log = logging.getLogger(__name__)

Truth = Callable[[BidRequest, Imp, Any], float]


class CtrModel(Protocol):
    """``predict`` a pCTR; models that learn also turn an opportunity into ``features`` to keep
    with the bid and ``learn`` from them when the impression is billed or clicked."""

    learns: bool

    def reset(self, seed: int | None = None) -> None: ...

    def base(self, request: BidRequest, imp: Imp, facts: RequestFacts, hour: int) -> Any:
        """What depends on the request and imp only (computed once per imp)."""

    def predict(self, base: Any, request: BidRequest, imp: Imp, creative: Any) -> float: ...

    def features(self, base: Any, creative: Any) -> Any:
        """The features of one impression, to learn from later (None if the model does not learn)."""

    def learn(self, features: Any, clicked: bool) -> None: ...


class ConstantCTR:
    """Every opportunity has the same pCTR."""

    learns = False
    by_category = True  # the prediction depends on a creative's categories at most

    def __init__(self, *, ctr: float = 0.001) -> None:
        self.ctr = ctr

    def reset(self, seed: int | None = None) -> None:
        pass

    def base(self, request: BidRequest, imp: Imp, facts: RequestFacts, hour: int) -> None:
        return None

    def predict(self, base: Any, request: BidRequest, imp: Imp, creative: Any) -> float:
        return self.ctr

    def features(self, base: Any, creative: Any) -> None:
        return None

    def learn(self, features: Any, clicked: bool) -> None:
        pass


class OracleCTR:
    """The ground truth: ``truth(request, imp, creative)``, clipped to [0, 1]."""

    learns = False

    def __init__(self, *, truth: Truth) -> None:
        self.truth = truth

    def reset(self, seed: int | None = None) -> None:
        pass

    def base(self, request: BidRequest, imp: Imp, facts: RequestFacts, hour: int) -> None:
        return None

    def predict(self, base: Any, request: BidRequest, imp: Imp, creative: Any) -> float:
        p = float(self.truth(request, imp, creative))
        return min(1.0, max(0.0, p)) if p == p else 0.0

    def features(self, base: Any, creative: Any) -> None:
        return None

    def learn(self, features: Any, clicked: bool) -> None:
        pass


class _Base:
    """The request-and-imp part of the features: indexes, their weight sum (on first use), the
    segments, and the cross features of the segments with each creative category seen so far."""

    __slots__ = ("crosses", "idx", "segments", "total")

    def __init__(
        self,
        *,
        idx: list[int],
        segments: tuple[str, ...],
        crosses: dict[tuple[str, ...], list[int]],
    ) -> None:
        self.idx = idx
        self.segments = segments
        self.crosses = crosses
        self.total: float | None = None


class LogisticCTR:
    """Online logistic regression on hashed features (see the module docstring)."""

    learns = True
    by_category = True

    def __init__(
        self,
        *,
        prior: float = 0.001,
        learning_rate: float = 0.05,
        l2: float = 1e-6,
        bits: int = 18,
        initial_g2: float = 0.1,
    ) -> None:
        self.prior = prior
        self.learning_rate = learning_rate
        self.l2 = l2
        self.bits = bits
        self.initial_g2 = initial_g2

    def reset(self, seed: int | None = None) -> None:
        size = 1 << self.bits
        self.mask_ = size - 1
        self.w_ = np.zeros(size)
        # AdaGrad's accumulators start at initial_g2 (TensorFlow's default 0.1), not 0: from 0 the
        # first step moves a weight by the whole learning rate however small its gradient, and a
        # few dozen unclicked impressions drove pCTR from its prior to ~0 for good.
        self.g2_ = np.full(size, self.initial_g2)
        self._w = [0.0] * size  # a copy of w_ for reading single weights fast (no numpy scalars)
        self._bases: dict[tuple[Any, ...], list[int]] = {}
        self._sorted: dict[frozenset[str], tuple[str, ...]] = {}
        q = self.prior / (1 + self.prior)  # the prior in fake-negative space
        self.bias_ = math.log(q / (1 - q))
        self.bias_g2_ = self.initial_g2
        self.examples_ = 0
        self.clicks_ = 0
        self._index: dict[str, int] = {}
        self._crosses: dict[tuple[str, ...], dict[tuple[str, ...], list[int]]] = {}

    def _i(self, name: str) -> int:
        i = self._index.get(name)
        if i is None:
            if len(self._index) > 200_000:
                self._index.clear()
            i = self._index[name] = zlib.crc32(name.encode()) & self.mask_
        return i

    def base(self, request: BidRequest, imp: Imp, facts: RequestFacts, hour: int) -> _Base:
        banner = imp.raw.get("banner")
        pos = banner.get("pos") if isinstance(banner, dict) else None
        domain = facts.domains[0] if facts.domains else None
        key = (hour, imp.w, imp.h, domain, facts.site_cats, pos, facts.devicetype, facts.os)
        idx = self._bases.get(key)
        if idx is None:
            names = [f"h={hour}", f"s={imp.w}x{imp.h}"]
            if domain is not None:
                names.append(f"d={domain}")
            names.extend(f"c={c}" for c in sorted(facts.site_cats))
            if pos is not None:
                names.append(f"p={pos}")
            if facts.devicetype is not None:
                names.append(f"dt={facts.devicetype}")
            if facts.os is not None:
                names.append(f"os={facts.os}")
            if len(self._bases) > 50_000:
                self._bases.clear()
            idx = self._bases[key] = [self._i(n) for n in names]
        segments = self._sorted.get(facts.segments)
        if segments is None:
            if len(self._sorted) > 20_000:
                self._sorted.clear()
            segments = self._sorted[facts.segments] = tuple(sorted(facts.segments))
        crosses = self._crosses.get(segments)
        if crosses is None:
            if len(self._crosses) > 20_000:
                self._crosses.clear()
            crosses = self._crosses[segments] = {}
        return _Base(idx=idx, segments=segments, crosses=crosses)

    def _creative_idx(self, base: _Base, creative: Any) -> list[int]:
        idx = base.crosses.get(creative.cat)
        if idx is None:
            i = self._i
            idx = []
            for c in creative.cat:
                idx.append(i(f"cc={c}"))
                idx.extend(i(f"x={s}|{c}") for s in base.segments)
            base.crosses[creative.cat] = idx
        return idx

    def predict(self, base: _Base, request: BidRequest, imp: Imp, creative: Any) -> float:
        w = self._w
        total = base.total
        if total is None:
            total = base.total = sum([w[k] for k in base.idx])
        idx = base.crosses.get(creative.cat) or self._creative_idx(base, creative)
        z = self.bias_ + total + sum([w[k] for k in idx])
        return 1.0 if z >= 0.0 else math.exp(z)  # calibrated: see _calibrate

    def features(self, base: _Base, creative: Any) -> list[int]:
        return base.idx + self._creative_idx(base, creative)

    def learn(self, features: Any, clicked: bool) -> None:
        """One AdaGrad step on the log-loss: a billed impression (``clicked=False``) or its click."""
        idx = np.asarray(features, dtype=np.intp)
        z = self.bias_ + float(self.w_[idx].sum())
        q = 1.0 / (1.0 + math.exp(-max(-35.0, min(35.0, z))))
        g = q - (1.0 if clicked else 0.0)
        lr = self.learning_rate
        self.bias_g2_ += g * g
        self.bias_ -= lr * g / math.sqrt(self.bias_g2_ + 1e-12)
        if idx.size:
            grad = g + self.l2 * self.w_[idx]
            np.add.at(self.g2_, idx, grad * grad)
            np.subtract.at(self.w_, idx, lr * grad / np.sqrt(self.g2_[idx] + 1e-12))
            w, wl = self.w_, self._w
            for k in features:
                wl[k] = float(w[k])
        self.examples_ += 1
        self.clicks_ += bool(clicked)


def _calibrate(z: float) -> float:
    """p = q / (1 - q) for q = sigmoid(z), i.e. exp(z), capped at 1."""
    return min(1.0, math.exp(min(z, 0.0)))


def make_ctr_model(
    model: str,
    *,
    ctr: float = 0.001,
    learning_rate: float = 0.05,
    l2: float = 1e-6,
    bits: int = 18,
    truth: Truth | None = None,
) -> CtrModel:
    """The model a ``[dsp.ctr]`` table describes; an oracle needs ``truth``."""
    if model == "constant":
        return ConstantCTR(ctr=ctr)
    if model == "logistic":
        return LogisticCTR(prior=ctr, learning_rate=learning_rate, l2=l2, bits=bits)
    if model == "oracle":
        if truth is None:
            raise ValueError(
                "the oracle CTR model needs a truth function: dsp.ctr.truth = "
                "'package.module:function', or inject one (CampaignBidder(truth=...))"
            )
        return OracleCTR(truth=truth)
    raise ValueError(f"unknown CTR model {model!r}: use constant, logistic or oracle")
