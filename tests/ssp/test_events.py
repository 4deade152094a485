"""The event log: every auction, impression, click, conversion and notice as a JSON line.

The first tests drive :class:`exchange.eventlog.EventLog` directly (the queue bound, drops,
rotation, draining on close); the others run a real SSP with real DSP servers on 127.0.0.1 and
read the file it wrote. Writing happens off the request path, so the tests poll (bounded) or close
the server, which writes everything accepted before it returns.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from exchange.eventlog import EventLog
from exchange.events import TYPES, read_events, with_backups
from exchange.metrics import ExchangeMetrics
from exchange.settings import ExchangeSettings
from ssp.config import DspEndpoint, SspSettings
from ssp.dashboard import OBSERVERS, Observers
from tests.conftest import (
    Client,
    StartDsp,
    StartSsp,
    bid_request,
    eventually,
    free_port,
    get,
    metric,
    metrics_text,
    stats,
)


def observers_of(client: Client) -> Observers:
    """The dashboard and event log of the SSP behind ``client``."""
    app = client.app
    assert app is not None
    return app[OBSERVERS]


def plain(event: Any) -> dict[str, Any]:
    """Encode a test event ``("auction", ts, n, None)`` as ``{"type": "auction", "n": n}``."""
    return {"type": event[0], "n": event[2]}


def lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


async def test_every_event_accepted_is_written_and_the_excess_is_dropped_and_counted(
    tmp_path: Path,
) -> None:
    metrics = ExchangeMetrics()
    log = EventLog(tmp_path / "events.jsonl", queue_size=500, encode=plain, metrics=metrics)
    log.start()
    # a burst with no chance for the writer to run: exactly the queue's bound is accepted
    accepted = [log.emit(("auction", 0.0, n, None)) for n in range(500)]
    refused = [log.emit(("click", 0.0, 500 + n, None)) for n in range(7)]
    assert all(accepted) and not any(refused)
    assert (log.backlog, log.dropped) == (500, 7)
    assert metric(metrics.render().decode(), "gavel_events_dropped_total", type="click") == 7

    await log.close()  # drains: nothing accepted is lost
    assert [r["n"] for r in lines(log.path)] == list(range(500))
    assert (log.written, log.backlog, log.failed) == (500, 0, 0)
    text = metrics.render().decode()
    assert metric(text, "gavel_events_written_total", type="auction") == 500
    assert metric(text, "gavel_event_queue_length") == 0
    assert not log.emit(("auction", 0.0, 999, None))  # closed: refused and counted
    assert log.dropped == 8


async def test_the_bound_is_on_the_backlog_not_on_the_total(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "e.jsonl", queue_size=100, flush_s=0.01, encode=plain)
    log.start()
    for round_ in range(3):
        assert all(log.emit(("auction", 0.0, round_ * 100 + n, None)) for n in range(100))
        await eventually(lambda: log.backlog == 0, what="the writer to catch up")
    await log.close()
    assert [r["n"] for r in lines(log.path)] == list(range(300))
    assert log.dropped == 0


class SlowDisk(EventLog):
    """An event log whose writes wait until the test lets them through."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writing = threading.Event()
        self.go = threading.Event()

    def _write(self, lines: list[bytes]) -> None:
        self.writing.set()
        self.go.wait(10)
        super()._write(lines)


async def test_events_accepted_while_the_writer_is_busy_are_written_at_close(
    tmp_path: Path,
) -> None:
    log = SlowDisk(tmp_path / "e.jsonl", flush_s=0.01, encode=plain)
    log.start()
    for n in range(10):
        log.emit(("auction", 0.0, n, None))
    await eventually(log.writing.is_set, what="the writer to be busy")
    for n in range(10, 20):
        assert log.emit(("auction", 0.0, n, None))
    closing = asyncio.ensure_future(log.close())
    await asyncio.sleep(0)  # close() starts: no more events accepted
    assert not log.emit(("auction", 0.0, 99, None))
    log.go.set()
    await closing
    assert [r["n"] for r in lines(log.path)] == list(range(20))
    assert (log.written, log.failed, log.dropped) == (20, 0, 1)


async def test_the_file_is_rotated_by_size_keeping_backups(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path, max_bytes=1000, backups=2, encode=plain)
    log.start()
    for n in range(300):  # ~9 KB of lines of ~30 bytes
        assert log.emit(("auction", 0.0, n, None))
    await log.close()

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "events.jsonl",
        "events.jsonl.1",
        "events.jsonl.2",
    ]
    for p in tmp_path.iterdir():
        assert 0 < p.stat().st_size <= 1000
        assert p.read_bytes().endswith(b"\n")  # rotated at line boundaries
    assert log.rotations >= 8
    kept = [r["n"] for r in read_events(with_backups(path))]
    assert kept == list(range(300 - len(kept), 300))  # the newest, in order, none torn
    assert len(kept) > 60


async def test_without_backups_a_full_file_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path, max_bytes=500, backups=0, encode=plain)
    log.start()
    for n in range(100):
        log.emit(("auction", 0.0, n, None))
    await log.close()
    assert [p.name for p in tmp_path.iterdir()] == ["events.jsonl"]
    assert lines(path)[-1]["n"] == 99


async def test_an_existing_log_is_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    for start in (0, 10):
        log = EventLog(path, encode=plain)
        log.start()
        for n in range(start, start + 10):
            log.emit(("auction", 0.0, n, None))
        await log.close()
    assert [r["n"] for r in lines(path)] == list(range(20))


# -- the SSP's event log ------------------------------------------------------------------------


async def logging_ssp(
    start_dsp: StartDsp, start_ssp: StartSsp, path: Path, **ssp: Any
) -> tuple[Client, Any, Any]:
    high = await start_dsp("high", price=2.0)
    low = await start_dsp("low", price=1.0)
    gone = DspEndpoint(name="gone", url=f"http://127.0.0.1:{free_port()}/openrtb2/bid")
    client = await start_ssp(
        dsps=[high, low, gone],
        # a generous deadline: the records are what is checked here, on a busy test machine
        settings=ExchangeSettings(seed=1, tmax_ms=1000),
        ssp=SspSettings(gc_freeze=False, event_log=str(path), **ssp),
    )
    return client, high, low


async def test_the_ssp_logs_auctions_impressions_clicks_conversions_and_notices(
    start_dsp: StartDsp, start_ssp: StartSsp, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    client, high, low = await logging_ssp(start_dsp, start_ssp, path)
    n = 40
    for batch in range(0, n, 10):
        answers = await asyncio.gather(
            *(
                client.post("/openrtb2/auction", json=bid_request(f"r-{i}"))
                for i in range(batch, batch + 10)
            )
        )
        assert [a.status for a in answers] == [200] * 10
    ad = await client.post("/ad", json={"site": "news", "slot": "top", "user": "u7"})
    assert ad.status == 200
    served = await ad.json()
    assert (await get(client, served["impression_url"])).headers["x-gavel-billed"] == "1"
    assert (await get(client, served["click_url"])).headers["x-gavel-counted"] == "1"
    token = served["impression_url"].split("t=", 1)[1]
    conv = await client.get("/conversion", params={"t": token, "value": "12.5"})
    assert (conv.status, conv.headers["x-gavel-counted"]) == (204, "1")

    # the log is written while the SSP runs, and /metrics and /stats count it
    async def written() -> bool:
        text = await metrics_text(client)
        counts = [metric(text, "gavel_events_written_total", type=t) for t in TYPES]
        return counts == [n + 1, 1, 1, 1, counts[-1]] and bool(counts[-1])

    await eventually(written, what="every event to be written")
    shown = (await stats(client))["event_log"]
    assert shown["path"] == str(path) and shown["dropped"] == 0 and shown["written"] >= n + 4
    assert len(path.read_bytes().splitlines()) == shown["written"]
    await eventually(lambda: notices_sent(client), what="the notices to be sent")

    await client.server.close()  # drains the log
    records = list(read_events([path]))
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_type.setdefault(r["type"], []).append(r)
    auctions = {r["id"]: r for r in by_type["auction"]}
    assert len(auctions) == n + 1 and {f"r-{i}" for i in range(n)} <= set(auctions)

    r = auctions["r-0"]
    assert r["filled"] is True and r["ms"] > 0 and r["ts"] > 1.7e9 and r["token"]
    called = {b["name"]: b for b in r["bidders"]}
    assert called["high"]["result"] == "bid" and called["high"]["bids"][0]["price"] == 2.0
    assert called["low"]["result"] == "bid"
    assert called["gone"]["result"] == "error" and called["gone"]["reason"]
    assert all(b["ms"] >= 0 for b in r["bidders"])
    (imp,) = r["imps"]
    assert (imp["winner"], imp["price"], imp["floor"]) == ("high", 1.01, 0.0)
    assert imp["losers"] == [{"bidder": "low", "bid": "r-0-1", "price": 1.0, "code": 102}]

    site = next(a for a in by_type["auction"] if not a["id"].startswith("r-"))
    assert (site["site"], site["domain"], site["user"]) == ("news", "news.example", "u7")
    assert site["imps"][0]["slot"] == "top" and site["imps"][0]["floor"] == 0.5
    assert site["imps"][0]["price"] == 1.01  # second price over the runner-up, above the floor

    (impression,) = by_type["impression"]
    assert impression["auction"] == site["id"] and impression["token"] == token
    assert (impression["bidder"], impression["price"]) == ("high", 1.01)
    assert impression["spend"] == pytest.approx(0.00101)
    assert impression["revenue"] == pytest.approx(0.000909)  # less the 10% fee
    (click,) = by_type["click"]
    assert (click["token"], click["bidder"], click["n"]) == (token, "high", 1)
    (conversion,) = by_type["conversion"]
    assert (conversion["token"], conversion["value"]) == (token, 12.5)

    notices = by_type["notice"]
    kinds = sorted({(x["kind"], x["result"]) for x in notices})
    assert kinds == [("billing", "queued"), ("loss", "queued"), ("win", "queued")]
    assert sum(x["kind"] == "win" for x in notices) == n + 1
    assert all(x["url"].startswith(high.base) for x in notices if x["kind"] == "win")
    assert all(x["url"].startswith(low.base) for x in notices if x["kind"] == "loss")


async def notices_sent(client: Client) -> bool:
    text = await metrics_text(client)
    return (metric(text, "gavel_notices_total", kind="billing", result="sent") or 0) >= 1


async def test_a_full_queue_drops_events_and_shows_it(
    start_dsp: StartDsp, start_ssp: StartSsp, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    client, _, _ = await logging_ssp(start_dsp, start_ssp, path, event_queue=10)
    log = observers_of(client).log
    assert log is not None
    for i in range(10):  # fill the queue before the writer gets a turn
        assert log.emit(("notice", 0.0, ("win", f"http://x/{i}"), "queued"))
    resp = await client.post("/openrtb2/auction", json=bid_request("dropped-1"))
    assert resp.status == 200  # the auction is never held up by the log

    shown = (await stats(client))["event_log"]
    assert shown["dropped"] >= 1  # the auction record, and the win/loss notice events
    text = await metrics_text(client)
    assert metric(text, "gavel_events_dropped_total", type="auction") == 1
    await client.server.close()
    assert len(lines(path)) == 10
    assert "dropped-1" not in path.read_text()


async def test_the_log_is_off_unless_configured(start_dsp: StartDsp, start_ssp: StartSsp) -> None:
    client = await start_ssp(dsps=[await start_dsp("solo", price=1.0)])
    assert (await stats(client))["event_log"] is None
    assert observers_of(client).log is None


async def test_the_conversion_beacon_checks_its_input(
    start_dsp: StartDsp, start_ssp: StartSsp
) -> None:
    client = await start_ssp(dsps=[await start_dsp("solo", price=1.0)])
    missing = await client.get("/conversion")
    assert missing.status == 400 and (await missing.json())["field"] == "t"
    for bad in ("abc", "-1", "nan", "inf"):
        resp = await client.get("/conversion", params={"t": "x.0", "value": bad})
        assert resp.status == 400 and (await resp.json())["field"] == "value", bad
    unknown = await client.get("/conversion", params={"t": "nope.0"})
    assert (unknown.status, unknown.headers["x-gavel-counted"]) == (204, "0")


async def test_pid_in_the_path_names_one_file_per_process(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events-{pid}.jsonl", encode=plain)
    assert log.path == tmp_path / f"events-{os.getpid()}.jsonl"
