"""LightningCLI with TrackioLogger configured by flags (``--trainer.logger.headers={...}``).

``save_config_callback=None``: LightningCLI's config saver asks the logger for a ``log_dir``.
"""

from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.demos.boring_classes import BoringDataModule, BoringModel

if __name__ == "__main__":
    LightningCLI(BoringModel, BoringDataModule, save_config_callback=None)
