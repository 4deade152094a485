"""Every Prometheus metric of Gavel, defined once.

Each server owns a :class:`CollectorRegistry` (so several servers can live in one test process) and
binds label children once per bidder. The metrics are :mod:`exchange.metric_types`: plain numbers
updated on the hot path, turned into Prometheus families by one collector at scrape time.
No per-request ids are ever labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from exchange.metric_types import Collector, Metric

# Auction and bidder latency buckets, from 100 us up to past the deadline.
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05,
    0.075, 0.09, 0.1, 0.105, 0.11, 0.125, 0.15, 0.25, 0.5, 1.0,
)  # fmt: skip
PRICE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 20, 50)
OUTCOMES = ("bid", "nobid", "timeout", "error", "invalid")
NOTICE_KINDS = ("win", "loss", "billing", "click")
NOTICE_RESULTS = ("sent", "failed", "dropped", "blocked")
CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclass(slots=True)
class BidderMetrics:
    """Label children pre-bound for one bidder."""

    latency: Any
    outcomes: dict[str, Any]
    wins: Any
    impressions: Any
    spend: Any
    dropped: Metric


class ExchangeMetrics:
    """The SSP's metrics: auctions, bidders, prices, notices."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        c = Collector()
        self.registry.register(c)
        self.auction_duration = c.histogram(
            "gavel_auction_duration_seconds",
            "Time from request arrival to the answer being ready, per auction.",
            buckets=LATENCY_BUCKETS,
        )
        self.auctions = c.counter(
            "gavel_auctions_total",
            "Auctions by result: filled (at least one imp won), unfilled, rejected (bad request), "
            "overload (shed at once because too many auctions were in flight).",
            ["result"],
        )
        self.imps = c.counter(
            "gavel_imps_total", "Imps auctioned, by result (filled or unfilled).", ["result"]
        )
        self.inflight = c.gauge("gavel_auctions_in_flight", "Auctions being run now.")
        self.bidder_latency = c.histogram(
            "gavel_bidder_latency_seconds",
            "Time from sending a bid request to a bidder to its answer (timeouts at the cutoff).",
            ["bidder"],
            buckets=LATENCY_BUCKETS,
        )
        self.bidder_outcomes = c.counter(
            "gavel_bidder_outcomes_total",
            "Bidder calls by outcome: bid, nobid, timeout, error, invalid.",
            ["bidder", "result"],
        )
        self.bids_dropped = c.counter(
            "gavel_bids_dropped_total",
            "Bids not admitted to the auction, by OpenRTB loss reason code.",
            ["bidder", "code"],
        )
        self.wins = c.counter("gavel_wins_total", "Imps won, by bidder.", ["bidder"])
        self.clearing_price = c.histogram(
            "gavel_clearing_price_cpm",
            "Clearing prices of won imps (CPM, exchange currency).",
            buckets=PRICE_BUCKETS,
        )
        self.impressions = c.counter(
            "gavel_impressions_total",
            "Billed impressions (impression beacons), by bidder.",
            ["bidder"],
        )
        self.spend = c.counter(
            "gavel_spend_total",
            "Money billed to bidders for impressions (exchange currency, not CPM).",
            ["bidder"],
        )
        self.publisher_revenue = c.counter(
            "gavel_publisher_revenue_total",
            "Money owed to publishers for billed impressions (spend less the exchange fee).",
        )
        self.clicks = c.counter("gavel_clicks_total", "Click beacons, by bidder.", ["bidder"])
        self.notices = c.counter(
            "gavel_notices_total",
            "Notices (win, loss, billing) by result: sent, failed, dropped (queue full), "
            "blocked (host is not a configured DSP).",
            ["kind", "result"],
        )
        self.notice_queue = c.gauge("gavel_notice_queue_length", "Notices waiting to be sent.")
        self.late_calls = c.gauge(
            "gavel_late_bidder_calls", "Bidder calls past their auction's deadline still draining."
        )
        self.loop_lag = c.gauge(
            "gavel_event_loop_lag_seconds",
            "How late the SSP's event loop runs (smoothed); new auctions are shed past ssp.max_loop_lag_ms.",
        )
        self.loop_busy = c.gauge(
            "gavel_event_loop_busy_ratio",
            "Share of the time the SSP's event-loop thread was on the CPU (smoothed over ~1 s); "
            "the deadline margin grows with it.",
        )
        self.margin = c.gauge(
            "gavel_deadline_margin_seconds",
            "The margin kept before each auction's deadline for the exchange's own work; bidders "
            "get the rest as their tmax.",
        )
        self.loop_stalls = c.counter(
            "gavel_event_loop_stalls_total",
            "Event-loop ticks later than the stall threshold (/stats loop_lag_s.stall_ms; its "
            "recent_stalls say whether the SSP was on the CPU meanwhile).",
        )
        # The event log (ssp.event_log, exchange/eventlog.py); type: auction, impression, click,
        # conversion, notice.
        self.events_written = c.counter(
            "gavel_events_written_total", "Events written to the event log, by type.", ["type"]
        )
        self.events_dropped = c.counter(
            "gavel_events_dropped_total",
            "Events not logged because the event log's queue was full (ssp.event_queue), by type.",
            ["type"],
        )
        self.event_queue = c.gauge(
            "gavel_event_queue_length", "Events accepted by the event log, not yet written."
        )
        self._bidders: dict[str, BidderMetrics] = {}
        self.filled = self.auctions.labels("filled")
        self.unfilled = self.auctions.labels("unfilled")
        self.rejected = self.auctions.labels("rejected")
        self.overload = self.auctions.labels("overload")
        self.imps_filled = self.imps.labels("filled")
        self.imps_unfilled = self.imps.labels("unfilled")
        for k in NOTICE_KINDS:  # export every series from the start, at zero
            for res in NOTICE_RESULTS:
                self.notices.labels(k, res)

    def bidder(self, name: str) -> BidderMetrics:
        """The pre-bound children for ``name`` (bound on first use, then cached)."""
        m = self._bidders.get(name)
        if m is None:
            m = BidderMetrics(
                latency=self.bidder_latency.labels(name),
                outcomes={o: self.bidder_outcomes.labels(name, o) for o in OUTCOMES},
                wins=self.wins.labels(name),
                impressions=self.impressions.labels(name),
                spend=self.spend.labels(name),
                dropped=self.bids_dropped,
            )
            self._bidders[name] = m
        return m

    def render(self) -> bytes:
        return generate_latest(self.registry)


class DspMetrics:
    """A DSP server's metrics: requests answered, faults injected, notices received."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        c = Collector()
        self.registry.register(c)
        self.requests = c.counter(
            "gavel_dsp_requests_total",
            "Bid requests by answer: bid, nobid, invalid (request rejected, or over the size limit), "
            "exception (the bidder raised), and the injected faults hang, error, garbage.",
            ["result"],
        )
        self.latency = c.histogram(
            "gavel_dsp_bid_duration_seconds",
            "Time spent answering a bid request, injected latency included.",
            buckets=LATENCY_BUCKETS,
        )
        self.notices = c.counter("gavel_dsp_notices_total", "Notices received, by kind.", ["kind"])

    def render(self) -> bytes:
        return generate_latest(self.registry)
