"""The marketplace core knows nothing of the packages built on it (DESIGN.md: imports go
gavel -> ssp, dsp -> exchange), and its pure parts do no I/O."""

from __future__ import annotations

from tests.layering import assert_load_without_io, offenders


def test_exchange_never_imports_ssp_dsp_or_gavel() -> None:
    assert offenders("exchange", {"ssp", "dsp", "gavel"}) == []


def test_pure_core_loads_without_asyncio_or_aiohttp() -> None:
    assert_load_without_io(
        [
            "exchange.openrtb",
            "exchange.bids",
            "exchange.auction",
            "exchange.auction_batch",
            "exchange.macros",
        ]
    )
