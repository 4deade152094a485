"""The SSP's settings, its DSP endpoints and its site/slot catalog (``[ssp]``, ``[[dsp]]``, ``[[sites]]``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SspSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    #: Request bodies past this size get 413.
    max_request_bytes: int = 256 * 1024
    #: Auctions in flight past this are answered 204 at once (counted as overload), not queued.
    max_inflight: int = 512
    #: New auctions are answered 204 at once (overload) while the event loop runs this late (ms,
    #: smoothed); 0 turns the check off. See ssp/admission.py.
    max_loop_lag_ms: float = 20.0
    #: Won imps wait this long for their impression, click and conversion beacons (seconds), at
    #: most ``max_wins`` of them; later beacons are ignored. Their memory is bounded by both.
    win_ttl_s: float = 300.0
    max_wins: int = 100_000
    #: Base URL of this SSP as clients reach it (for beacon URLs); empty = from the request's Host.
    public_url: str = ""
    notice_queue: int = 10_000
    notice_workers: int = 16
    notice_timeout_ms: int = 1000
    #: Run ``gc.freeze()`` after start-up (fewer long collections on the hot path).
    gc_freeze: bool = True
    #: Collect garbage on a clock (ssp/gcpace.py): the young generation every this many ms, the
    #: middle one once a second, all of it every 10 minutes; automatic collection is off. 0 =
    #: leave it to Python (with ``gc_threshold``). A young collection walks what was born since
    #: the last one and still lives: every 10 ms, a tenth of the auctions in flight.
    gc_interval_ms: float = 10.0
    #: With ``gc_interval_ms = 0``: the generation-0 threshold (Python's default: 700; 0 = leave
    #: it). An auction allocates hundreds of objects, so the default collects hundreds of times a
    #: second; a high one collects rarely but long (bench/RESULTS.md, benchmark 3).
    gc_threshold: int = 50_000
    #: The event log (JSONL, docs/observability.md): its file, empty = off. ``{pid}`` in the path
    #: becomes the process id (one file per worker).
    event_log: str = ""
    #: The file is rotated past this size (0 = never), keeping this many older files (path.1...).
    event_log_max_bytes: int = 64 * 1024 * 1024
    event_log_backups: int = 5
    #: Events waiting to be written past this are dropped (counted), never the auction slowed.
    event_queue: int = 100_000
    #: Serve /dashboard and keep its live view (per-second series, the last auctions).
    dashboard: bool = True
    #: How often the live view adds a point and pushes it to the dashboards (seconds).
    dashboard_tick_s: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError("ssp.port must be between 0 and 65535")
        if self.max_request_bytes < 1024:
            raise ValueError("ssp.max_request_bytes must be >= 1024")
        if not 0 <= self.gc_interval_ms <= 10_000:
            raise ValueError("ssp.gc_interval_ms must be between 0 (off) and 10000")
        if self.gc_threshold < 0:
            raise ValueError("ssp.gc_threshold must be >= 0 (0 = Python's default)")
        if self.max_inflight < 1:
            raise ValueError("ssp.max_inflight must be >= 1")
        if self.win_ttl_s <= 0 or self.max_wins < 1:
            raise ValueError("ssp.win_ttl_s must be > 0 and ssp.max_wins >= 1")
        if self.max_loop_lag_ms < 0:
            raise ValueError("ssp.max_loop_lag_ms must be >= 0 (0 = off)")
        if self.event_log_max_bytes < 0 or self.event_log_backups < 0:
            raise ValueError("ssp.event_log_max_bytes and ssp.event_log_backups must be >= 0")
        if self.event_queue < 1:
            raise ValueError("ssp.event_queue must be >= 1")
        if not 0.05 <= self.dashboard_tick_s <= 60:
            raise ValueError("ssp.dashboard_tick_s must be between 0.05 and 60")


@dataclass(frozen=True, slots=True)
class DspEndpoint:
    """An HTTP DSP the SSP calls."""

    name: str
    url: str
    #: Optional click notice URL template (OpenRTB macros); the SSP's click beacon fires it.
    click_url: str | None = None


SLOT_DEVICES = ("any", "desktop", "mobile")


@dataclass(frozen=True, slots=True)
class Slot:
    id: str
    w: int
    h: int
    floor: float = 0.0
    #: OpenRTB ad position: 1 above the fold, 3 below, 0 unknown.
    pos: int = 0
    #: The layouts that show this slot: "any", "desktop" (desktops and tablets) or "mobile" (phones).
    device: str = "any"

    def __post_init__(self) -> None:
        if self.w <= 0 or self.h <= 0:
            raise ValueError(f"slot {self.id!r}: w and h must be > 0")
        if self.floor < 0:
            raise ValueError(f"slot {self.id!r}: floor must be >= 0")
        if self.device not in SLOT_DEVICES:
            raise ValueError(f"slot {self.id!r}: device must be one of {', '.join(SLOT_DEVICES)}")


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    domain: str
    name: str = ""
    #: IAB content categories of the site.
    cat: tuple[str, ...] = ()
    publisher: str = ""
    page: str = ""
    slots: tuple[Slot, ...] = ()
    #: Relative share of the simulated world's page views (ssp.world); 0 = never visited.
    share: float = 1.0
    #: Page URL patterns of the simulated traffic; ``{id}`` is an article number, ``{date}`` the
    #: simulated date (YYYY/MM/DD). Empty: ``page``.
    pages: tuple[str, ...] = ()
    #: Audience skew: how many times more likely a user interested in an IAB category is to be
    #: among this site's visitors (``{ IAB17 = 4.0 }``); unlisted categories count 1 (ssp.world).
    audience: dict[str, float] = field(default_factory=dict, hash=False)
    slot_by_id: dict[str, Slot] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id = {s.id: s for s in self.slots}
        if len(by_id) != len(self.slots):
            raise ValueError(f"site {self.id!r}: slot ids must be unique")
        if self.share < 0:
            raise ValueError(f"site {self.id!r}: share must be >= 0")
        bad = [cat for cat, skew in self.audience.items() if not skew > 0]
        if bad:
            raise ValueError(f"site {self.id!r}: audience.{bad[0]} must be > 0")
        object.__setattr__(self, "slot_by_id", by_id)
