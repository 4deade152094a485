"""Built-in pricing strategies. Each is one module and one line in :data:`dsp.registry.STRATEGIES`.

Their JSON fixtures (``fixtures/<id>/exemplary/*.json`` and ``supplemental/*.json``) are run
in-process and behind the DSP server by ``tests/dsp/test_fixtures.py``.
"""
