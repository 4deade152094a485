"""The demand side: bidders, campaigns and the DSP server that serves any bidder over OpenRTB.

- the researcher's API: :mod:`dsp.bidder` (whole bidders), :mod:`dsp.strategy` (pricing
  strategies), :mod:`dsp.registry` (names to classes), :mod:`dsp.conformance` (``check_bidder``),
  :mod:`dsp.fixtures` (JSON fixtures);
- built-ins: :mod:`dsp.bidders` (``constant``, ``random``, ``campaign``) and :mod:`dsp.strategies`;
- campaigns: :mod:`dsp.config` (the TOML file), :mod:`dsp.campaign`, :mod:`dsp.targeting`,
  :mod:`dsp.index`, :mod:`dsp.geo`, :mod:`dsp.clock`, :mod:`dsp.pacing`, :mod:`dsp.ctr`,
  :mod:`dsp.state` and :mod:`dsp.memory_state` (budgets, frequency, audiences), :mod:`dsp.pixel`;
- the server: :mod:`dsp.server`, :mod:`dsp.notices`, :mod:`dsp.faults`.

Everything but the server is pure: no asyncio, no aiohttp, no I/O.
"""
