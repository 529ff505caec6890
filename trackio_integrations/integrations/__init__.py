"""The framework adapters: Transformers, Lightning and Accelerate events -> client calls.

May import: ``trackio_integrations.client`` and everything below it (core, media, monitoring,
artifacts); each framework only inside the adapter for it. No HTTP, threads or files here: an
adapter says *when* (a run started, a point was logged, a checkpoint was saved) and the client
does the rest.

``transformers/`` (the ``TrackioCallback``), ``lightning/`` (the ``TrackioLogger``),
``accelerate`` (the ``TrackioTracker``), ``watch`` (weight and gradient histograms for all three),
``common`` (the monitoring settings and live parts the three share).
"""
