"""``gavel report``: the market and per-DSP tables from an event log, and its exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from gavel.cli import main
from gavel.report import render, summarize


def auction(
    rid: str, ts: float, winner: str | None, price: float | None, beta: str, ms: float = 10.0
) -> dict[str, Any]:
    imp: dict[str, Any] = {"id": "1", "slot": "top", "floor": 0.5, "winner": winner, "losers": []}
    if winner:
        imp.update(seat=winner, bid=f"{rid}-b", price=price)
    return {
        "type": "auction",
        "ts": ts,
        "id": rid,
        "token": f"t{rid}",
        "site": "news",
        "ms": ms,
        "filled": winner is not None,
        "bidders": [
            {"name": "alpha", "result": "bid" if winner else "nobid", "ms": 3.0},
            {"name": "beta", "result": beta, "ms": 95.0 if beta == "timeout" else 1.0},
        ],
        "imps": [imp],
    }


EVENTS: list[dict[str, Any]] = [
    auction("r1", 100.0, "alpha", 1.01, "timeout", ms=96.0),
    auction("r2", 101.0, "alpha", 2.0, "error"),
    auction("r3", 102.0, None, None, "bid"),
    {
        "type": "impression",
        "ts": 100.1,
        "auction": "r1",
        "token": "tr1.0",
        "bidder": "alpha",
        "price": 1.01,
        "spend": 0.00101,
        "revenue": 0.000909,
    },
    {
        "type": "impression",
        "ts": 101.1,
        "auction": "r2",
        "token": "tr2.0",
        "bidder": "alpha",
        "price": 2.0,
        "spend": 0.002,
        "revenue": 0.0018,
    },
    {"type": "click", "ts": 101.2, "auction": "r2", "token": "tr2.0", "bidder": "alpha", "n": 1},
    {
        "type": "conversion",
        "ts": 103.0,
        "auction": "r2",
        "token": "tr2.0",
        "bidder": "alpha",
        "value": 40.0,
    },
    {"type": "notice", "ts": 100.0, "kind": "win", "result": "queued", "url": "http://x/win"},
]


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def test_summarize_counts_the_market_and_each_dsp() -> None:
    rep = summarize(EVENTS)
    assert (rep.auctions, rep.filled, rep.imps, rep.imps_filled) == (3, 2, 3, 2)
    assert (rep.impressions, rep.clicks, rep.conversions, rep.value) == (2, 1, 1, 40.0)
    assert (rep.spend_micros, rep.revenue_micros) == (3010, 2709)  # exact, in micro-units
    assert (rep.first_ts, rep.last_ts) == (100.0, 103.0)
    assert rep.notices == {("win", "queued"): 1}
    alpha, beta = rep.dsps["alpha"], rep.dsps["beta"]
    assert (alpha.calls, alpha.bids, alpha.wins, alpha.price_micros) == (3, 2, 2, 3_010_000)
    assert (alpha.impressions, alpha.spend_micros, alpha.clicks, alpha.conversions) == (
        2,
        3010,
        1,
        1,
    )
    assert (beta.calls, beta.bids, beta.timeouts, beta.errors, beta.wins) == (3, 1, 1, 1, 0)

    text = render(rep)
    assert "market: 3 auctions over 3.0 s, 2 filled (fill rate 66.7% of 3 imps)" in text
    assert "spend 0.003010 = publisher revenue 0.002709 + exchange fee 0.000301" in text
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[-2:]}
    assert rows["alpha"][:7] == ["3", "66.7%", "0", "0", "2", "100.0%", "1.505"]
    assert rows["beta"][:7] == ["3", "33.3%", "1", "1", "0", "0.0%", "-"]


def test_the_command_reads_rotated_backups_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "events.jsonl.2", EVENTS[:1])
    write(tmp_path / "events.jsonl.1", EVENTS[1:2])
    path = write(tmp_path / "events.jsonl", EVENTS[2:])
    (tmp_path / "events.jsonl.old").write_text("not a backup\n")
    assert main(["report", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("market: 3 auctions over 3.0 s")
    assert main(["report", "--no-backups", str(path)]) == 0
    assert capsys.readouterr().out.startswith("market: 1 auctions")


def test_a_torn_last_line_is_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "events.jsonl", EVENTS)
    with path.open("ab") as fh:
        fh.write(b'{"type":"auction","id":"r4","bid')  # a crash in the middle of a line
    assert main(["report", str(path)]) == 0
    assert "market: 3 auctions" in capsys.readouterr().out


@pytest.mark.parametrize("content", [None, b"", b"hello\n[1, 2]\n"])
def test_no_log_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None
) -> None:
    path = tmp_path / "events.jsonl"
    if content is not None:
        path.write_bytes(content)
    assert main(["report", str(path)]) == 2
    assert str(path) in capsys.readouterr().err


def test_html_report_from_an_event_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "events.jsonl", EVENTS)
    out = tmp_path / "report"
    assert main(["report", str(path), "--html", str(out)]) == 0
    assert f"report: {out / 'report.html'}" in capsys.readouterr().out
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "<img" in html  # self-contained, plots embedded
    assert "alpha" in html
    assert (out / "results.json").is_file()
