"""The win book benchmark runs both books on the same adds and reports them side by side."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bench import winbook_bench
from bench.winbook_bench import BID, OrderedBook
from exchange.winbook import WinBook


def test_the_baseline_keeps_and_drops_the_same_wins_as_the_book() -> None:
    now = time.monotonic()
    books = [OrderedBook(capacity=5_000, ttl_s=60), WinBook(capacity=5_000, ttl_s=60)]
    for book in books:
        for i in range(12_000):
            book.add(f"t{i}", "a", BID, 1_000_000, now)
    for token in ("t0", "t6999", "t7000", "t11999"):
        wins = [book.get(token) for book in books]
        assert (wins[0] is None) == (wins[1] is None)
        assert wins[0] == wins[1]


def test_a_short_run_reports_both_books(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "wb.json"
    args = ["--capacity", "5000", "--adds", "20000", "--rounds", "1", "--lookups", "500"]
    assert winbook_bench.main([*args, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "baseline (one OrderedDict)" in printed and "WinBook (segments)" in printed
    assert "ratios, WinBook / baseline" in printed
    medians = json.loads(out.read_text())["medians"]
    for figures in medians.values():
        assert figures["mean_add_ns"] > 0 and figures["max_add_us"] >= figures["p9999_add_us"]


def test_bad_arguments_are_usage_errors() -> None:
    with pytest.raises(SystemExit) as exc:
        winbook_bench.main(["--adds", "0"])
    assert exc.value.code == 2
