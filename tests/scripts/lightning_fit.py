"""Fit a tiny model with TrackioLogger in a fresh process; each rank writes ``<out>/rank<N>.json``.

python tests/scripts/lightning_fit.py lightning.pytorch 2 <out>  # DDP: Lightning starts rank 1
python tests/scripts/lightning_fit.py pytorch_lightning 1 <out>  # the standalone package only
The target and project come from TRACKIO_SERVER_URL / TRACKIO_WRITE_TOKEN / TRACKIO_PROJECT.
"""

from __future__ import annotations

import gc
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import torch
from teardown import end_process, leave_process_group, watchdog
from torch.utils.data import DataLoader, TensorDataset

from trackio_integrations import TrackioClient


def main(package: str, devices: int, out: Path) -> None:
    pl: Any = importlib.import_module(package)
    from trackio_integrations import TrackioLogger  # after the package, as a user's script would

    seen: dict[str, Any] = {}

    class Regressor(pl.LightningModule):
        def __init__(self, hidden: int = 8) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(4, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1)
            )
            self.losses: list[float] = []

        def training_step(self, batch: Any, _: int) -> torch.Tensor:
            loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
            self.log("train_loss", loss)  # each rank's own loss; rank zero's is the one sent
            self.losses.append(loss.item())
            return loss

        def validation_step(self, batch: Any, _: int) -> None:
            loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
            self.log("val_loss", loss, sync_dist=True)

        def on_train_epoch_end(self) -> None:
            seen["experiment"] = type(self.logger.experiment).__name__
            seen["clients"] = sum(type(o) is TrackioClient for o in gc.get_objects())

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.05)

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=generator)
    data = TensorDataset(x, x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]))
    logger = TrackioLogger()
    checkpoint = pl.callbacks.ModelCheckpoint(monitor="val_loss", save_top_k=1)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        max_epochs=2,
        logger=logger,
        callbacks=[checkpoint],
        log_every_n_steps=1,
        default_root_dir=str(out),
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    model = Regressor()
    trainer.fit(model, DataLoader(data, batch_size=8), DataLoader(data, batch_size=32))
    report = {
        "rank": trainer.global_rank,
        "world_size": trainer.world_size,
        "run": logger.version,
        "run_id": logger.run_id,
        "losses": model.losses,
        "best_model_path": checkpoint.best_model_path,
        "logger_bases": [base.__module__ for base in type(logger).__mro__],
        "lightning_imported": "lightning" in sys.modules,
        **seen,
    }
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(report))
    leave_process_group()  # under DDP; else Lightning destroys the group at exit, rank by rank
    end_process()


if __name__ == "__main__":
    watchdog()
    main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))
