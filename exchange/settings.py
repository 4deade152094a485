"""The exchange's own settings (the ``[exchange]`` table of a scenario file)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ExchangeSettings:
    #: The most an auction may take (ms); a request's own ``tmax`` can only shorten it.
    tmax_ms: int = 100
    #: Kept back from the deadline for the exchange's own work (auction, answer); bidders get the rest.
    margin_ms: float = 5.0
    #: Under load the margin grows, up to this, to the longest overshoot (how late an auction that
    #: waited until its cutoff finished after it) of the last 10 s (exchange/margin.py); <= margin_ms:
    #: fixed.
    margin_max_ms: float = 15.0
    #: ...and kept, while the exchange's thread is busy, at least at this times busy / (1 - busy)
    #: (busy: its share of the time on the CPU; 3 ms: 12 ms at 80% busy); 0 = off.
    margin_per_load_ms: float = 3.0
    currency: str = "USD"
    #: Units of ``currency`` per unit of another currency, for floors given in that currency.
    rates: dict[str, float] = field(default_factory=dict)
    #: The exchange's cut of each clearing price, in basis points (1000 = 10%).
    fee_bps: int = 1000
    #: Second-price increment over the runner-up (CPM).
    increment: float = 0.01
    #: Seed of the tie-break RNG; none = a fresh seed per process.
    seed: int | None = None
    #: Largest bidder response body read; past it the call is an error.
    max_response_bytes: int = 256 * 1024
    #: What happens to a bidder call still running at the deadline: "drain" or "cancel".
    late_calls: str = "drain"
    #: A late call draining in the background is cut after this long (ms from its start).
    late_grace_ms: int = 1000
    #: At most this many late calls drain at once; past it they are cancelled.
    max_late: int = 1024
    #: Keep-alive connections per DSP host.
    connections_per_dsp: int = 256
    #: HTTP client for DSP calls: "lean" (asyncio protocol + httptools; https:// DSPs fall back to
    #: aiohttp) or "aiohttp". bench/fanout_bench.py: lean is 1.2-2x faster (bench/RESULTS.md).
    transport: str = "lean"

    def __post_init__(self) -> None:
        if self.tmax_ms <= 0:
            raise ValueError("exchange.tmax_ms must be > 0")
        if not 0 <= self.margin_ms < self.tmax_ms:
            raise ValueError("exchange.margin_ms must be >= 0 and below exchange.tmax_ms")
        if not 0 <= self.margin_max_ms < self.tmax_ms:
            raise ValueError("exchange.margin_max_ms must be >= 0 and below exchange.tmax_ms")
        if self.margin_per_load_ms < 0:
            raise ValueError("exchange.margin_per_load_ms must be >= 0 (0 = off)")
        if not 0 <= self.fee_bps <= 10_000:
            raise ValueError("exchange.fee_bps must be between 0 and 10000")
        if self.increment < 0:
            raise ValueError("exchange.increment must be >= 0")
        if self.late_calls not in ("drain", "cancel"):
            raise ValueError("exchange.late_calls must be 'drain' or 'cancel'")
        if self.transport not in ("lean", "aiohttp"):
            raise ValueError("exchange.transport must be 'lean' or 'aiohttp'")
        if self.late_grace_ms < self.tmax_ms:
            raise ValueError("exchange.late_grace_ms must be >= exchange.tmax_ms")
