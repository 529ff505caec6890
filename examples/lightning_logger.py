"""Fit a tiny Lightning model with TrackioLogger: to TRACKIO_SERVER_URL if set, else local storage.

python examples/lightning_logger.py
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from trackio_integrations import TrackioLogger


class Regressor(L.LightningModule):
    """A two-layer MLP learning y = x·w + noise; remembers every training loss it computes."""

    def __init__(self, features: int = 8, hidden: int = 16, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(features, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1)
        )
        self.losses: list[float] = []

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train/loss", loss)
        self.losses.append(loss.item())
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        x, y = batch
        self.log("val/loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams["lr"])


def loaders(features: int = 8, samples: int = 256) -> tuple[DataLoader, DataLoader]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(samples, features, generator=generator)
    y = x @ torch.randn(features, 1, generator=generator) + 0.1 * torch.randn(samples, 1)
    split = samples * 3 // 4
    train = TensorDataset(x[:split], y[:split])
    val = TensorDataset(x[split:], y[split:])
    return DataLoader(train, batch_size=16, shuffle=True), DataLoader(val, batch_size=64)


def main(
    project: str = "demo-lightning", name: str | None = None, epochs: int = 5
) -> dict[str, Any]:
    L.seed_everything(0, verbose=False)
    for source in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(source).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    model = Regressor()
    # log_model=True: the best and the last checkpoint become versions of the artifact
    # model-<run> at the end (uploaded in the background); save_code: this script in Files.
    logger = TrackioLogger(project, name, log_model=True, save_code=True)
    logger.watch(model, log="all", log_freq=20)  # histograms of gradients and weights
    with tempfile.TemporaryDirectory() as checkpoints:
        trainer = L.Trainer(
            max_epochs=epochs,
            logger=logger,
            callbacks=[ModelCheckpoint(monitor="val/loss", save_top_k=2, save_last=True)],
            log_every_n_steps=1,
            default_root_dir=checkpoints,
            enable_progress_bar=False,
            enable_model_summary=False,
            accelerator="cpu",
        )
        trainer.fit(model, *loaders())
    return {
        "framework": "Lightning",
        "project": project,
        "run": logger.version,
        "metric": "train/loss",
        "values": model.losses,
        "artifact": f"model-{logger.version}",
    }


if __name__ == "__main__":
    summary = main()
    print(f"Logged {len(summary['values'])} points to run {summary['run']} of {summary['project']}")
