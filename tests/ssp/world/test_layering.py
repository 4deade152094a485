"""Imports go one way: ssp -> exchange, never dsp or gavel; the world is pure (no asyncio, no
aiohttp), so the offline simulator and an oracle can use it without a server."""

from __future__ import annotations

from pathlib import Path

from tests.layering import assert_load_without_io, offenders

SSP = Path(__file__).resolve().parents[3] / "ssp"
WORLD = sorted(f"ssp.world.{p.stem}" for p in (SSP / "world").glob("*.py") if p.stem != "__init__")


def test_ssp_never_imports_dsp_or_gavel() -> None:
    assert offenders("ssp", {"dsp", "gavel"}) == []


def test_the_world_loads_without_asyncio_or_aiohttp() -> None:
    assert len(WORLD) >= 15
    assert_load_without_io(WORLD)


def test_world_modules_stay_small() -> None:
    for path in (SSP / "world").glob("*.py"):
        assert len(path.read_text().splitlines()) <= 400, path
