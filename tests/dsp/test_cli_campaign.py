"""``gavel dsp --config configs/dsp/NAME.toml``: a campaign DSP as a real process, and its errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import orjson
import pytest

from gavel.cli import main
from gavel.config import DspSpec
from gavel.run import dsp_command
from tests.conftest import eventually, free_port

from .helpers import WED_1730_UTC, raw_request

ROOT = Path(__file__).resolve().parents[2]
STRIDE = "configs/dsp/stride.toml"


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    return code, capsys.readouterr().err


@pytest.mark.slow
async def test_campaign_dsp_process_bids_takes_pixels_and_reports(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "dsp.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gavel",
            "dsp",
            "--config",
            STRIDE,
            "--port",
            str(port),
            "--seed",
            "1",
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:

            async def healthy() -> bool:
                assert proc.poll() is None, (tmp_path / "dsp.log").read_text()
                try:
                    async with session.get(f"{base}/healthz") as resp:
                        return resp.status == 200 and (await resp.json())["bidder"] == "stride"
                except (aiohttp.ClientError, OSError, TimeoutError):
                    return False

            await eventually(healthy, timeout=20, what="the campaign DSP to start")
            # a shopper who looked at shoes yesterday, on a sports site: the retargeting campaign
            visit = {"event": "visit", "user": "u1", "advertiser": "runfast.example",
                     "ts": WED_1730_UTC - 86_400}  # fmt: skip
            async with session.get(f"{base}/pixel?{urlencode(visit)}") as resp:
                assert resp.status == 204
            body = raw_request("p1", site=("scores.example", ["IAB17"]), w=728, h=90)
            async with session.post(f"{base}/openrtb2/bid", data=orjson.dumps(body)) as resp:
                assert resp.status == 200, await resp.text()
                bid = (await resp.json())["seatbid"][0]["bid"][0]
            assert bid["crid"] == "stride-rt-728x90" and bid["adomain"] == ["runfast.example"]
            assert bid["burl"].startswith(f"{base}/bill?auction=p1")
            async with session.get(f"{base}/pixel?event=visit") as resp:
                assert resp.status == 400 and (await resp.json())["field"] == "user"
            async with session.get(f"{base}/stats") as resp:
                stats = await resp.json()
            assert stats["dsp"] == "stride"
            assert stats["campaigns"]["stride-retarget"]["bids"] == 1
            assert stats["pixels"] == {"visit": 1}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        log.close()
    assert code in (0, -signal.SIGTERM)
    assert "Traceback" not in (tmp_path / "dsp.log").read_text()


def test_config_excludes_strategy_and_params(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_main(["dsp", "--port", "0", "--config", STRIDE, "--strategy", "random"], capsys)
    assert code == 2 and "--strategy" in err
    code, err = run_main(["dsp", "--port", "0", "--config", STRIDE, "--param", "price=2"], capsys)
    assert code == 2 and "--param" in err


def test_bad_campaign_file_exits_2_naming_key_and_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        (ROOT / STRIDE).read_text().replace("per_hour = 2", "per_hour = 2\nper_week = 9")
    )
    code, err = run_main(["dsp", "--port", "0", "--config", str(path)], capsys)
    assert code == 2 and "per_week" in err and str(path) in err and "Traceback" not in err
    code, err = run_main(["dsp", "--port", "0", "--config", str(tmp_path / "none.toml")], capsys)
    assert code == 2 and "no such file" in err


def test_gavel_run_starts_campaign_dsps_with_their_file() -> None:
    cmd = dsp_command(DspSpec(name="stride", config=STRIDE), 9100, seed=3)
    assert cmd[cmd.index("--config") + 1] == STRIDE
    assert "--strategy" not in cmd and "--param" not in cmd
    plain = dsp_command(DspSpec(name="c", params={"price": 2}), 9101, seed=3)
    assert "--config" not in plain and plain[plain.index("--strategy") + 1] == "constant"
    with pytest.raises(ValueError, match="config and params"):
        DspSpec(name="x", config=STRIDE, params={"price": 1})
