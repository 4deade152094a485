"""The offline simulator: the world, the exchange and the bidders in one process on a virtual clock.

``gavel simulate EXPERIMENT.toml`` (docs/simulation.md). Same rules as the live servers (OpenRTB
requests, :func:`exchange.bids.parse_bid_response`, :func:`exchange.auction.run_auction`, feedback
events), DSP latencies drawn in virtual time and compared with the deadline, no sockets, no sleeping.
"""
