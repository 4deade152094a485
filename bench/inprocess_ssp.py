"""The SSP with five in-process bidders, served like ``gavel ssp`` (for the in-process HTTP phase).

``python -m bench.inprocess_ssp --port P [--bidders 5]`` serves :func:`ssp.server.make_app` with
``random`` bidders (CPM uniform in [0.5, 3], seeds 0..N-1) called in-process, on uvloop, through
:func:`gavel.serve.run`: the same server path as ``gavel ssp``, with no outgoing HTTP.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import Any

from dsp.registry import make_bidder
from exchange.settings import ExchangeSettings
from gavel.serve import run
from ssp.server import make_app


def bidders(n: int) -> dict[str, Any]:
    """``n`` random bidders named b0..b{n-1}, bidding CPM 0.5-3.0, seeded by their index."""
    return {
        f"b{i}": make_bidder("random", {"low": 0.5, "high": 3.0, "seed": i, "seat": f"b{i}"})
        for i in range(n)
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.inprocess_ssp",
        description="Serve the SSP with N in-process random bidders (no outgoing HTTP).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, required=True, help="port to listen on")
    p.add_argument("--bidders", type=int, default=5, help="in-process bidders (default 5)")
    p.add_argument("--workers", type=int, default=1, help="processes on the port (default 1)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    app = make_app(settings=ExchangeSettings(seed=1), inprocess=bidders(args.bidders))
    return run(
        app, host=args.host, port=args.port, name="SSP (in-process bidders)", workers=args.workers
    )


if __name__ == "__main__":
    raise SystemExit(main())
