"""Built-in bidders. Each is one module and one line in :data:`dsp.registry.BIDDERS`."""
