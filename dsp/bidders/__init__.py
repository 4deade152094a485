"""Built-in bidders, each one line in :data:`dsp.registry.BIDDERS`: one module each, but the
campaign bidder, whose reports (``campaign_report``) and per-request scratch (``campaign_turn``)
sit next to it."""
