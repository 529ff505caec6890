"""The PyTorch Lightning adapter: ``TrackioLogger`` for ``L.Trainer``, ``pytorch_lightning`` and Fabric.

May import: ``trackio_integrations.client`` and below; ``lightning`` or ``pytorch_lightning`` only
when the logger class is built. ``logger`` maps Lightning's calls to client calls; ``checkpoints``
turns ``ModelCheckpoint`` saves into artifact versions.
"""
