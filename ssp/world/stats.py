"""The traffic driver's client-side counters, its progress line and its summary.

Every ``/ad`` request sent ends as exactly one of ``filled`` (200), ``unfilled`` (204) or
``errors`` (any other status, a timeout, a connection failure, an unreadable answer, or still
unanswered when the run ends), so ``sent = filled + unfilled + errors``. Requests the client did not
send because too many were in flight are ``dropped``, not sent.

Latencies are kept for the percentiles of the whole run (a uniform sample of at most
:data:`MAX_LATENCIES` once there are more: reservoir sampling) and for the progress line's
interval.
"""

from __future__ import annotations

import random
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

MAX_LATENCIES = 1_000_000


@dataclass(slots=True)
class PixelCount:
    sent: int = 0
    ok: int = 0
    #: Answered 404: the DSP takes no pixels (no ``pixel(event)`` hook, or no ``/pixel`` at all).
    declined: int = 0
    failed: int = 0
    #: Events for a DSP whose URL is not known (not sent).
    unrouted: int = 0
    #: Not sent because too many pixels were in flight.
    dropped: int = 0


@dataclass(slots=True)
class TrafficStats:
    sent: int = 0
    filled: int = 0
    unfilled: int = 0
    errors: int = 0
    dropped: int = 0
    page_views: int = 0
    #: Impression beacons fired (the ad was seen) and served ads never seen.
    impressions: int = 0
    not_viewed: int = 0
    clicks: int = 0
    beacon_errors: int = 0
    #: Purchases after a click that happened (attributed conversions), their value, those lost
    #: because the user had bought meanwhile, and those still to come when the run ended.
    conversions: int = 0
    conversion_value: float = 0.0
    conversions_lost: int = 0
    conversions_pending: int = 0
    #: Sum of the ground truth's P(click) over seen impressions (the expected clicks).
    expected_clicks: float = 0.0
    #: Answers by HTTP status, or "timeout", "connection", "bad-answer", "unfinished".
    statuses: Counter[str] = field(default_factory=Counter)
    pixels: dict[str, PixelCount] = field(default_factory=dict)
    #: Client-side latency of answered /ad requests (seconds): all of them, or a uniform sample
    #: of MAX_LATENCIES; ``answered`` counts them all, ``recent`` holds those since the last mark.
    latencies: array[float] = field(default_factory=lambda: array("d"))
    answered: int = 0
    recent: list[float] = field(default_factory=list)
    _rng: random.Random = field(default_factory=lambda: random.Random(0), repr=False)
    #: Simulated unix time of the first and the latest request.
    sim_start: float = 0.0
    sim_now: float = 0.0

    def pixel(self, event: str) -> PixelCount:
        count = self.pixels.get(event)
        if count is None:
            count = self.pixels[event] = PixelCount()
        return count

    def latency(self, seconds: float) -> None:
        """Record the latency of one answered request."""
        self.answered += 1
        self.recent.append(seconds)
        if len(self.latencies) < MAX_LATENCIES:
            self.latencies.append(seconds)
            return
        j = self._rng.randrange(self.answered)
        if j < MAX_LATENCIES:
            self.latencies[j] = seconds

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        values = sorted(self.latencies)
        return values[min(len(values) - 1, int(len(values) * q))]

    def error(self, kind: str) -> None:
        self.errors += 1
        self.statuses[kind] += 1

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions if self.impressions else 0.0

    def sim_clock(self) -> str:
        """The simulated time of the latest request (``Wed 16:05 UTC``)."""
        return _when(self.sim_now)

    def mark(self) -> int:
        """Start a new progress interval; returns the requests sent so far."""
        self.recent.clear()
        return self.sent

    def progress_line(self, elapsed: float, since_sent: int = 0) -> str:
        """One line of live progress: the requests sent and their latency since the last mark
        (``since_sent`` = what :meth:`mark` returned), and the run's totals."""
        lat = _p50_p99(self.recent)
        return (
            f"[{elapsed:5.1f}s] sim {_when(self.sim_now)}  sent/s {self.sent - since_sent:5d}  "
            f"filled {_pct(self.filled, self.sent)}  p50 {lat[0] * 1000:6.2f} ms  "
            f"p99 {lat[1] * 1000:6.2f} ms  errors {self.errors}  impr {self.impressions}  "
            f"clicks {self.clicks}  conv {self.conversions}  pixels {self._pixels_ok()}"
        )

    def summary(self) -> str:
        """The end-of-run summary, several lines."""
        s = self
        lines = [
            f"simulated {_when(s.sim_start)} -> {_when(s.sim_now)}: {s.page_views} page views, "
            f"{s.sent} ad requests sent ({s.dropped} dropped: too many in flight)",
            f"answers: filled {s.filled} ({_pct(s.filled, s.sent)}), unfilled {s.unfilled}, "
            f"errors {s.errors}  [{', '.join(f'{k} {v}' for k, v in sorted(s.statuses.items()))}]",
            f"client latency p50 {s.percentile(0.5) * 1000:.2f} ms, p95 "
            f"{s.percentile(0.95) * 1000:.2f} ms, p99 {s.percentile(0.99) * 1000:.2f} ms, "
            f"max {(max(s.latencies) if s.latencies else 0) * 1000:.2f} ms",
            f"impressions {s.impressions} (not viewed {s.not_viewed}), clicks {s.clicks} "
            f"(CTR {s.ctr * 100:.3f}%, expected {s.expected_clicks:.1f}), conversions "
            f"{s.conversions} (value {s.conversion_value:.2f}; lost {s.conversions_lost}, "
            f"pending {s.conversions_pending}), beacon errors {s.beacon_errors}",
        ]
        for event, c in sorted(s.pixels.items()):
            lines.append(
                f"pixel {event:<10} sent {c.sent}, ok {c.ok}, declined {c.declined}, "
                f"failed {c.failed}, no DSP url {c.unrouted}, dropped {c.dropped}"
            )
        return "\n".join(lines)

    def _pixels_ok(self) -> str:
        sent = sum(c.sent for c in self.pixels.values())
        ok = sum(c.ok for c in self.pixels.values())
        return f"{ok}/{sent}"


def _p50_p99(values: list[float]) -> tuple[float, float]:
    recent = sorted(values)
    if not recent:
        return 0.0, 0.0
    n = len(recent)
    return recent[(n - 1) // 2], recent[min(n - 1, int(n * 0.99))]


def _pct(part: int, whole: int) -> str:
    return f"{part / whole * 100:5.1f}%" if whole else "    -"


def _when(ts: float) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%a %H:%M UTC")
