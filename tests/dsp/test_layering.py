"""Imports go one way: dsp -> exchange; the pure parts of dsp use neither asyncio nor aiohttp."""

from __future__ import annotations

from pathlib import Path

from tests.layering import assert_load_without_io, offenders

DSP = Path(__file__).resolve().parents[2] / "dsp"
PURE = [
    "dsp.bidder",
    "dsp.bidders.campaign",
    "dsp.bidders.campaign_report",
    "dsp.bidders.campaign_turn",
    "dsp.bidders.constant",
    "dsp.bidders.random_bid",
    "dsp.campaign",
    "dsp.clock",
    "dsp.config",
    "dsp.conformance",
    "dsp.creative",
    "dsp.ctr",
    "dsp.faults",
    "dsp.fixtures",
    "dsp.geo",
    "dsp.index",
    "dsp.memory_state",
    "dsp.notices",
    "dsp.pacing",
    "dsp.params",
    "dsp.pixel",
    "dsp.registry",
    "dsp.response",
    "dsp.state",
    "dsp.strategy",
    *(f"dsp.strategies.{p.stem}" for p in sorted((DSP / "strategies").glob("[!_]*.py"))),
    "dsp.targeting",
]


def test_dsp_never_imports_ssp_or_gavel() -> None:
    assert offenders("dsp", {"ssp", "gavel"}) == []


def test_pure_modules_load_without_asyncio_or_aiohttp() -> None:
    assert_load_without_io(PURE)
