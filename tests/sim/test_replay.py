"""gavel replay on a small synthetic file in make-ipinyou-data's log.txt format."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gavel.sim.replay import read_log, replay

from .conftest import ROOT

HEADER = ["click", "weekday", "hour", "bidid", "timestamp", "logtype", "ipinyouid", "useragent", "IP", "region", "city", "adexchange", "domain", "url", "urlid", "slotid", "slotwidth", "slotheight", "slotvisibility", "slotformat", "slotprice", "creative", "bidprice", "payprice", "keypage", "advertiser", "usertag"]  # fmt: skip


def write_log(path: Path, payprices: list[int], clicks: list[int]) -> Path:
    lines = ["\t".join([*HEADER, "extra"])]
    for i, (pay, click) in enumerate(zip(payprices, clicks, strict=True)):
        row = {h: "x" for h in HEADER}
        row.update(click=str(click), slotprice="0", payprice=str(pay), slotwidth="300",
                   slotheight="250", slotvisibility="1", adexchange="1", bidid=f"b{i}")  # fmt: skip
        lines.append("\t".join([row[h] for h in HEADER] + ["more"]))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_wins_strictly_above_pays_market_price_and_stops_at_budget(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log.txt", [50, 100, 101, 30, 80, 20], [0, 1, 0, 1, 0, 1])
    rows = read_log(log)
    out = replay(rows, strategy="constant", params={"cpm": 100})
    # bid 100: wins 50, 30, 80, 20 (not 100: strictly above; not 101)
    assert out["impressions"] == 4 and out["clicks"] == 2
    assert out["spend"] == (50 + 30 + 80 + 20) / 1000
    # budget of 0.1: 50 then 30 (80 no longer fits), then 20 fits: 0.1 exactly
    out = replay(rows, strategy="constant", params={"cpm": 100}, budget=0.1)
    assert out["spend"] == 0.1 and out["impressions"] == 3
    assert out["spend"] <= out["budget"]
    out = replay(rows, strategy="constant", params={"cpm": 100}, fraction=0.5)
    assert out["budget"] == (50 + 100 + 101 + 30 + 80 + 20) / 1000 / 2


def test_cli(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log.txt", [50, 100, 30], [1, 0, 0])
    r = subprocess.run([sys.executable, "-m", "gavel", "replay", str(log), "--strategy", "constant",
                        "--param", "cpm=60", "--budget-fraction", "1/2", "--json"],
                       capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["impressions"] == 2 and out["clicks"] == 1 and out["ecpc"] == 0.08
    bad = tmp_path / "bad.txt"
    bad.write_text("a\tb\n1\t2\n")
    r = subprocess.run([sys.executable, "-m", "gavel", "replay", str(bad)], capture_output=True,
                       text=True, cwd=ROOT)  # fmt: skip
    assert r.returncode == 2 and "payprice" in r.stderr
