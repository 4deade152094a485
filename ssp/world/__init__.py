"""The simulated world that calls the SSP: media sites, users with interests and intent, traffic,
and the ground truth of clicks and conversions (see docs/world.md).

Pure logic over numpy arrays: nothing here imports asyncio or aiohttp. The live traffic driver
(:mod:`ssp.driver`) sends what :class:`~ssp.world.traffic.TrafficGenerator` schedules over HTTP;
an offline simulator can step the same objects without any server.

=================  ===========================================================================
module             concept
=================  ===========================================================================
``taxonomy``       IAB tier-1 categories (interests, site content, ad categories)
``cities``         the metro areas users live in (coordinates, UTC offsets)
``settings``       the world's configuration: ``[users]``, ``[intent]``, ``[truth]``,
                   ``[traffic]``, ``[[advertisers]]``
``population``     the users, as numpy arrays (interests, home city, device, visit rate)
``intent``         intent per user and interest: dormant -> researching -> purchased -> satiated
``fatigue``        recent exposures per user and campaign
``truth``          the ground-truth model: viewability, P(click), P(conversion | click)
``oracle``         the ground truth as ``truth(request, imp, creative) -> P(click)``
``clock``          simulated time: compression and the diurnal curve
``catalog``        the site catalog compiled to arrays (shares, audience skew, slots, URLs)
``arrivals``       Poisson arrivals in real time with a diurnal rate and bursts
``traffic``        the open-loop generator: batches of ``/ad`` bodies and pixel events
``render``         what a user does with a served ad: view, click, convert later
``pixels``         advertiser pixel URLs (visits, purchases, attributed conversions)
``world``          :class:`SimWorld`: all of the above built from one configuration
``stats``          the traffic driver's client-side counters, progress line and summary
=================  ===========================================================================
"""
