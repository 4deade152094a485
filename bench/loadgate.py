"""The load test's gate, as pure functions: server-side figures from the SSP's Prometheus text, and
which thresholds a run missed.

No Locust here (it monkey-patches with gevent on import): ``bench/locustfile.py`` gathers the
figures and calls these; the tests call them directly.

The server-side auction latency comes from the ``gavel_auction_duration_seconds`` histogram, whose
buckets are cumulative counts of auctions that took at most ``le`` seconds. A percentile is
interpolated linearly inside its bucket, as Prometheus' ``histogram_quantile`` does, and every
figure also carries its bucket, ``(lo, hi]``: the true value lies there, the interpolation is a guess
within it. The slowest auction is only known to lie in the highest non-empty bucket.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

AUCTION_HISTOGRAM = "gavel_auction_duration_seconds"
BIDDER_OUTCOMES = "gavel_bidder_outcomes_total"
AUCTIONS = "gavel_auctions_total"
TIMEOUT = "timeout"


# -- what the SSP exports --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerSnapshot:
    """The SSP's counters at one moment (or the difference between two moments)."""

    #: Cumulative histogram buckets of the auction duration: ``(le seconds, count)``, ascending,
    #: the last one ``+Inf``.
    buckets: tuple[tuple[float, float], ...] = ()
    #: Bidder calls by bidder and result (bid, nobid, timeout, error, invalid).
    outcomes: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    #: Auctions by result (filled, unfilled, rejected, overload).
    auctions: Mapping[str, float] = field(default_factory=dict)

    @property
    def count(self) -> float:
        return self.buckets[-1][1] if self.buckets else 0.0

    def minus(self, before: ServerSnapshot) -> ServerSnapshot:
        """What happened between ``before`` and this snapshot (counters only go up)."""
        old = dict(before.buckets)
        buckets = tuple((le, count - old.get(le, 0.0)) for le, count in self.buckets)
        outcomes = {
            bidder: {r: n - before.outcomes.get(bidder, {}).get(r, 0.0) for r, n in results.items()}
            for bidder, results in self.outcomes.items()
        }
        auctions = {r: n - before.auctions.get(r, 0.0) for r, n in self.auctions.items()}
        return ServerSnapshot(buckets, outcomes, auctions)


def parse_metrics(text: str) -> ServerSnapshot:
    """The auction histogram, bidder outcomes and auction results from ``/metrics`` text."""
    buckets: list[tuple[float, float]] = []
    outcomes: dict[str, dict[str, float]] = {}
    auctions: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{AUCTION_HISTOGRAM}_bucket":
                buckets.append((float(sample.labels["le"]), float(sample.value)))
            elif sample.name == BIDDER_OUTCOMES:
                bidder = outcomes.setdefault(sample.labels["bidder"], {})
                bidder[sample.labels["result"]] = float(sample.value)
            elif sample.name == AUCTIONS:
                auctions[sample.labels["result"]] = float(sample.value)
    buckets.sort()
    return ServerSnapshot(tuple(buckets), outcomes, auctions)


# -- percentiles from buckets ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Estimate:
    """A value known to lie in ``(lo, hi]`` (seconds), with an interpolated guess ``value``.

    ``hi`` is ``inf`` when the value is past the last finite bucket: then ``value`` is ``lo``.
    """

    value: float
    lo: float
    hi: float

    def bucket(self) -> str:
        """``"(25-50] ms"``: the bucket the value lies in."""
        hi = "inf" if math.isinf(self.hi) else _fmt_ms(self.hi)
        return f"({_fmt_ms(self.lo)}-{hi}] ms"

    def ms(self) -> str:
        """``"41.20 ms in (25-50] ms"``: the guess and its bucket."""
        return f"{self.value * 1000:.2f} ms in {self.bucket()}"


def _fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:g}"


def histogram_quantile(buckets: Sequence[tuple[float, float]], q: float) -> Estimate | None:
    """The ``q`` quantile (0-1) of a cumulative histogram; None when it holds no observation."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lo, below = 0.0, 0.0
    for le, cum in buckets:
        if cum >= rank and cum > below:
            if math.isinf(le):
                return Estimate(lo, lo, le)
            inside = cum - below
            value = lo + (le - lo) * (rank - below) / inside if inside else le
            return Estimate(max(lo, value), lo, le)
        lo, below = le, cum
    return Estimate(lo, lo, math.inf)  # pragma: no cover - the +Inf bucket always matches


def histogram_max(buckets: Sequence[tuple[float, float]]) -> Estimate | None:
    """The bucket of the slowest observation (its guess is the bucket's upper bound)."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    lo, below = 0.0, 0.0
    top: Estimate | None = None
    for le, cum in buckets:
        if cum > below:
            top = Estimate(lo if math.isinf(le) else le, lo, le)
        lo, below = le, cum
    return top


def count_above(buckets: Sequence[tuple[float, float]], limit_s: float) -> tuple[float, float]:
    """Observations proven slower than ``limit_s``: those above the first bucket bound ``b`` at or
    past the limit. Returns ``(count, b)``; ``(0, inf)`` when no finite bound reaches the limit."""
    for le, cum in buckets:
        if le >= limit_s and not math.isinf(le):
            return buckets[-1][1] - cum, le
    return 0.0, math.inf


# -- bidder timeouts -------------------------------------------------------------------------------


def timeout_shares(outcomes: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Per bidder: its calls that timed out / all its calls (bidders with no call are left out)."""
    shares = {}
    for bidder, results in sorted(outcomes.items()):
        calls = sum(results.values())
        if calls > 0:
            shares[bidder] = results.get(TIMEOUT, 0.0) / calls
    return shares


def timeout_ratio(outcomes: Mapping[str, Mapping[str, float]]) -> float | None:
    """All bidders' timed-out calls / all their calls; None when no bidder was called."""
    calls = sum(sum(r.values()) for r in outcomes.values())
    if calls <= 0:
        return None
    return sum(r.get(TIMEOUT, 0.0) for r in outcomes.values()) / calls


# -- percentiles from Locust's rounded response times ----------------------------------------------


def rounded_percentile(response_times: Mapping[int, int], q: float) -> int:
    """The ``q`` percentile of a Locust ``{rounded ms: count}`` dict, computed the way Locust
    computes it (so that a stage's figure matches the whole run's when the stage is the run)."""
    total = sum(response_times.values())
    if total <= 0:
        return 0
    wanted = int(total * q)
    seen = 0
    for ms in sorted(response_times, reverse=True):
        seen += response_times[ms]
        if total - seen <= wanted:
            return ms
    return 0  # pragma: no cover


def diff_counts(after: Mapping[int, int], before: Mapping[int, int]) -> dict[int, int]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0)}


# -- the gate --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What a run must meet; None = not checked. See docs/loadtest.md for the exact meanings."""

    #: Locust's 95th/99th percentile of auction requests (``/ad``, ``/openrtb2/auction``), ms.
    p95_ms: float | None = None
    p99_ms: float | None = None
    #: Failed requests / all requests, as Locust counts them (any request, any endpoint).
    max_fail_ratio: float | None = None
    #: Bidder calls that timed out at the SSP / all bidder calls, summed over the DSPs.
    max_timeout_ratio: float | None = None
    #: The deadline gate: no auction answered later than this, neither as Locust measured it
    #: (its slowest auction request) nor as the SSP measured it (``/stats`` and the histogram).
    max_ms: float | None = None

    def __post_init__(self) -> None:
        for name in ("p95_ms", "p99_ms", "max_ms"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        for name in ("max_fail_ratio", "max_timeout_ratio"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")

    def items(self) -> list[tuple[str, float]]:
        """The thresholds that are set, as (name, limit)."""
        names = ("p95_ms", "p99_ms", "max_ms", "max_fail_ratio", "max_timeout_ratio")
        return [(n, getattr(self, n)) for n in names if getattr(self, n) is not None]


@dataclass(frozen=True, slots=True)
class Observed:
    """What a run measured, client side (Locust) and server side (the SSP)."""

    requests: int = 0
    failures: int = 0
    auction_requests: int = 0
    #: Locust's percentiles of auction requests: whole ms under 100 ms, 2 digits above.
    client_p95_ms: float | None = None
    client_p99_ms: float | None = None
    client_max_ms: float | None = None
    #: None when the SSP could not be read.
    timeout_ratio: float | None = None
    #: The SSP's slowest of its most recent auctions (``/stats`` ``latency_s.max``, exact), ms.
    server_recent_max_ms: float | None = None
    #: The SSP's histogram over the run: auctions proven slower than ``max_ms``, and the bound
    #: that proves it.
    server_over_limit: float | None = None
    server_over_bound_ms: float | None = None
    #: Why the server side is missing, if it is.
    server_error: str | None = None

    @property
    def fail_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class Miss:
    threshold: str
    text: str


def check(t: Thresholds, o: Observed) -> list[Miss]:
    """The thresholds ``o`` misses, each with a sentence saying by how much. A threshold that
    needs a figure the run could not measure is missed too (a gate must not pass blind)."""
    misses: list[Miss] = []

    def over(name: str, label: str, value: float | None, limit: float | None, unit: str) -> None:
        if limit is None:
            return
        if value is None:
            misses.append(Miss(name, f"{label}: not measured (limit {limit:g}{unit})"))
        elif value > limit:
            misses.append(Miss(name, f"{label} {value:g}{unit} > limit {limit:g}{unit}"))

    if (t.p95_ms is not None or t.p99_ms is not None or t.max_ms is not None) and not (
        o.auction_requests
    ):
        misses.append(Miss("requests", "no auction request was made: nothing was measured"))
    over("p95_ms", "client p95 of auctions", o.client_p95_ms, t.p95_ms, " ms")
    over("p99_ms", "client p99 of auctions", o.client_p99_ms, t.p99_ms, " ms")
    if t.max_fail_ratio is not None and o.fail_ratio > t.max_fail_ratio:
        misses.append(
            Miss(
                "max_fail_ratio",
                f"failed requests {o.failures}/{o.requests} = {o.fail_ratio:.4f} "
                f"> limit {t.max_fail_ratio:g}",
            )
        )
    if t.max_timeout_ratio is not None:
        if o.timeout_ratio is None:
            why = o.server_error or "no bidder was called"
            misses.append(Miss("max_timeout_ratio", f"bidder timeout share: not measured ({why})"))
        elif o.timeout_ratio > t.max_timeout_ratio:
            misses.append(
                Miss(
                    "max_timeout_ratio",
                    f"bidder calls timed out {o.timeout_ratio:.4f} > limit {t.max_timeout_ratio:g}",
                )
            )
    if t.max_ms is not None:
        over("max_ms", "client slowest auction", _round(o.client_max_ms), t.max_ms, " ms")
        if o.server_error is not None:
            misses.append(
                Miss("max_ms", f"server slowest auction: not measured ({o.server_error})")
            )
        else:
            over(
                "max_ms",
                "server slowest recent auction (/stats)",
                _round(o.server_recent_max_ms),
                t.max_ms,
                " ms",
            )
            if o.server_over_limit:
                misses.append(
                    Miss(
                        "max_ms",
                        f"server histogram: {o.server_over_limit:g} auctions took more than "
                        f"{o.server_over_bound_ms:g} ms (limit {t.max_ms:g} ms)",
                    )
                )
    return misses


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# -- steps of a ramp: where is the knee? -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One stage of a staged run, measured on its own."""

    users: int
    seconds: float
    requests: int
    failures: int
    #: Auction requests (/ad, /openrtb2/auction) and, of those, the ones the SSP shed at once
    #: for overload (204 without an auction).
    auctions: int
    shed: float
    client_p50_ms: float
    client_p99_ms: float
    server_p50: Estimate | None = None
    server_p99: Estimate | None = None
    timeout_ratio: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def run_rps(self) -> float:
        """Auctions actually run per second (shed ones left out): the throughput that counts."""
        return max(0.0, self.auctions - self.shed) / self.seconds if self.seconds else 0.0


def knee(steps: Sequence[Step], *, p99_limit_ms: float, gain: float = 0.05) -> int | None:
    """The index of the step at the knee: the last one before the auctions run per second stop
    growing by more than ``gain`` (a share) for more users, or before the client p99 passes
    ``p99_limit_ms``. None when the users do not grow at every step, or when the first step is
    past the knee already."""
    if len(steps) < 2 or not all(b.users > a.users for a, b in _pairs(steps)):
        return None
    for i, step in enumerate(steps):
        if step.client_p99_ms > p99_limit_ms:
            return i - 1 if i > 0 else None
        if i > 0 and step.run_rps < steps[i - 1].run_rps * (1 + gain):
            return i - 1
    return len(steps) - 1


def _pairs(items: Sequence[Step]) -> Iterable[tuple[Step, Step]]:
    return itertools.pairwise(items)


def render_steps(steps: Sequence[Step], *, p99_limit_ms: float) -> str:
    """The per-stage table, and the knee when the users grew at every step."""
    head = (
        f"{'stage':>5} {'users':>6} {'s':>4} {'req/s':>8} {'fail':>5} {'shed/s':>7} "
        f"{'auctions run/s':>14} {'client p50':>10} {'client p99':>10} "
        f"{'server p50 ms':>13} {'server p99 ms':>13} {'timeouts':>8}"
    )
    lines = [head]
    for i, s in enumerate(steps, 1):
        lines.append(
            f"{i:>5} {s.users:>6} {s.seconds:>4.0f} {s.rps:>8.1f} {s.failures:>5} "
            f"{s.shed / s.seconds if s.seconds else 0:>7.1f} {s.run_rps:>14.1f} "
            f"{s.client_p50_ms:>10g} {s.client_p99_ms:>10g} "
            f"{_est(s.server_p50):>13} {_est(s.server_p99):>13} {_pct(s.timeout_ratio):>8}"
        )
    rule = f"(past it, auctions run/s grow < 5% or the client p99 passes {p99_limit_ms:g} ms)"
    k = knee(steps, p99_limit_ms=p99_limit_ms)
    if k is not None:
        s = steps[k]
        lines.append(
            f"knee: stage {k + 1}, {s.users} users, {s.run_rps:.0f} auctions run/s, client p99 "
            f"{s.client_p99_ms:g} ms {rule}"
        )
    elif len(steps) >= 2 and all(b.users > a.users for a, b in _pairs(steps)):
        lines.append(f"knee: before stage 1 {rule}")
    return "\n".join(lines)


def _est(e: Estimate | None) -> str:
    return "-" if e is None else f"{e.value * 1000:.2f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"
