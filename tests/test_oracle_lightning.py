"""The oracle over the Lightning settings users set: a ``CSVLogger`` beside the ``TrackioLogger``
records what Lightning logged; every row of its ``metrics.csv`` is on the server at its step, once,
and nothing else; its ``hparams.yaml`` is in the run's config."""

from __future__ import annotations

import csv
import os
import uuid
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import yaml
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from lightning.fabric import Fabric
from lightning.fabric.loggers import CSVLogger as FabricCSVLogger
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from tests.harness import TrackioServer, wait_until
from tests.oracle import Point, assert_run_holds, run_ids, same, stored_name
from trackio_integrations import TrackioLogger

EXAMPLES = int(os.environ.get("ORACLE_EXAMPLES", "5"))
QUIET: dict[str, Any] = {
    "accelerator": "cpu",
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "enable_checkpointing": False,
}


def data(n: int = 16, seed: int = 0) -> DataLoader:
    """``n`` samples in batches of 4."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=generator)
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4)


class Model(L.LightningModule):
    def __init__(
        self,
        on_step: bool = True,
        on_epoch: bool = False,
        lr: float = 0.05,
        tags: Any = None,
        optimizer: Any = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Linear(4, 1)

    def loss(self, batch: Any) -> torch.Tensor:
        return torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])

    def training_step(self, batch: Any, _: int) -> torch.Tensor:
        loss = self.loss(batch)
        self.log("train_loss", loss, on_step=self.hparams.on_step, on_epoch=self.hparams.on_epoch)
        return loss

    def validation_step(self, batch: Any, _: int, dataloader_idx: int = 0) -> None:
        self.log("val_loss", self.loss(batch))  # two loaders: val_loss/dataloader_idx_<i>

    def test_step(self, batch: Any, _: int) -> None:
        self.log("test_loss", self.loss(batch))

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
        return {
            "optimizer": optimizer,
            "lr_scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 1),
        }


class TwoOptimizers(Model):
    """Manual optimization, as a GAN steps its two networks."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.other = torch.nn.Linear(4, 1)

    def training_step(self, batch: Any, _: int) -> None:
        first, second = self.optimizers()  # type: ignore[misc]
        for optimizer, net, name in ((first, self.net, "a"), (second, self.other, "b")):
            loss = torch.nn.functional.mse_loss(net(batch[0]), batch[1])
            optimizer.zero_grad()
            self.manual_backward(loss)
            optimizer.step()
            self.log(f"loss_{name}", loss, prog_bar=True)

    def configure_optimizers(self) -> Any:
        return [
            torch.optim.SGD(self.net.parameters(), lr=0.05),
            torch.optim.Adam(self.other.parameters(), lr=0.01),
        ]


def csv_points(path: Path) -> list[Point]:
    """Every non-empty cell of ``metrics.csv`` but the step, at its row's step."""
    points = []
    with path.open() as f:
        for row in csv.DictReader(f):
            step = int(row.pop("step"))
            points += [Point(stored_name(k), step, float(v)) for k, v in row.items() if v]
    return points


def check_hparams(server: TrackioServer, project: str, run_id: str, hparams: Path) -> None:
    expected = yaml.safe_load(hparams.read_text()) or {}

    def config() -> dict[str, Any]:
        return dict(server.configs(project).get(run_id) or {})

    wait_until(lambda: expected.keys() <= config().keys(), 30)
    held = config()
    wrong = {k: (v, held[k]) for k, v in expected.items() if not equal(v, held[k])}
    assert not wrong, f"hparams.yaml against the run's config: {wrong}"


def equal(expected: Any, held: Any) -> bool:
    if isinstance(expected, dict) and isinstance(held, dict):
        return expected.keys() == held.keys() and all(equal(expected[k], held[k]) for k in held)
    if isinstance(expected, list) and isinstance(held, list):
        return len(expected) == len(held) and all(map(equal, expected, held))
    return same(expected, held)


def loggers(server: TrackioServer, project: str, root: Path, **options: Any) -> tuple[Any, Any]:
    trackio = TrackioLogger(project, server_url=server.write_url, **options)
    return trackio, CSVLogger(root, name="csv")


SETTINGS = st.fixed_dictionaries(
    {
        "log_every_n_steps": st.sampled_from([1, 2, 3]),
        "on_step_on_epoch": st.sampled_from([(True, False), (False, True), (True, True)]),
        "validation": st.sampled_from(["none", "epoch", "every 2 batches"]),
        "val_loaders": st.sampled_from([1, 2]),
        "test": st.booleans(),
        "validate_after": st.booleans(),
        "accumulate_grad_batches": st.sampled_from([1, 2]),
        "lr_monitor": st.booleans(),
    }
)


@pytest.mark.timeout(120 + 60 * EXAMPLES)  # each example is a short training run
@example(
    case={
        "log_every_n_steps": 1,
        "on_step_on_epoch": (True, True),
        "validation": "every 2 batches",
        "val_loaders": 2,
        "test": True,
        "validate_after": True,
        "accumulate_grad_batches": 2,
        "lr_monitor": True,
    }
)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # a failing fit is not worth shrinking
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=SETTINGS)
def test_the_server_holds_every_row_of_a_csv_logger_beside_it(
    case: dict[str, Any], shared_server: TrackioServer, tmp_path: Path
) -> None:
    project = f"oracle-{uuid.uuid4().hex[:10]}"
    root = tmp_path / uuid.uuid4().hex
    trackio, csv_logger = loggers(shared_server, project, root)
    on_step, on_epoch = case["on_step_on_epoch"]
    validation = case["validation"]
    trainer = L.Trainer(
        **QUIET,
        max_epochs=2,
        logger=[trackio, csv_logger],
        log_every_n_steps=case["log_every_n_steps"],
        accumulate_grad_batches=case["accumulate_grad_batches"],
        limit_val_batches=0 if validation == "none" else None,
        val_check_interval=2 if validation == "every 2 batches" else None,
        callbacks=[LearningRateMonitor("step")] if case["lr_monitor"] else [],
        default_root_dir=root,
    )
    model = Model(on_step, on_epoch, tags=["a", "b"], optimizer={"name": "sgd", "decay": None})
    val = [data(8, seed=1), data(4, seed=3)][: case["val_loaders"]]
    trainer.fit(model, data(), val)
    if case["validate_after"]:  # after fit(): the same run again
        trainer.validate(model, val)
    if case["test"]:
        trainer.test(model, data(8, seed=2))
    assert_run_holds(shared_server, project, trackio.run_id, csv_points(csv_metrics(csv_logger)))
    check_hparams(shared_server, project, trackio.run_id, Path(csv_logger.log_dir) / "hparams.yaml")


def csv_metrics(logger: CSVLogger) -> Path:
    return Path(logger.log_dir) / "metrics.csv"


def test_manual_optimization_with_two_optimizers(
    shared_server: TrackioServer, tmp_path: Path
) -> None:
    project = f"oracle-{uuid.uuid4().hex[:10]}"
    trackio, csv_logger = loggers(shared_server, project, tmp_path)
    trainer = L.Trainer(
        **QUIET,
        max_epochs=2,
        logger=[trackio, csv_logger],
        log_every_n_steps=1,
        callbacks=[LearningRateMonitor("step")],
        default_root_dir=tmp_path,
    )
    trainer.fit(TwoOptimizers(), data())
    assert_run_holds(shared_server, project, trackio.run_id, csv_points(csv_metrics(csv_logger)))


def test_a_fit_resumed_from_a_checkpoint_continues_the_run_with_every_row(
    shared_server: TrackioServer, tmp_path: Path
) -> None:
    project = f"oracle-{uuid.uuid4().hex[:10]}"
    checkpoints = ModelCheckpoint(tmp_path / "ckpt", save_last=True)
    first, first_csv = loggers(shared_server, project, tmp_path / "first", step_ids=True)
    options = {**QUIET, "enable_checkpointing": True, "log_every_n_steps": 1}
    options["default_root_dir"] = tmp_path
    trainer = L.Trainer(**options, max_epochs=1, logger=[first, first_csv], callbacks=[checkpoints])
    trainer.fit(Model(), data(), data(8, seed=1))
    again, again_csv = loggers(
        shared_server,
        project,
        tmp_path / "again",
        name=first.version,
        run_id=first.run_id,
        step_ids=True,
    )
    trainer = L.Trainer(**options, max_epochs=2, logger=[again, again_csv])
    trainer.fit(Model(), data(), data(8, seed=1), ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))
    assert run_ids(shared_server, project) == [first.run_id]
    rows = csv_points(csv_metrics(first_csv)) + csv_points(csv_metrics(again_csv))
    assert_run_holds(shared_server, project, first.run_id, rows)


def test_fabric_logs_every_value_its_csv_logger_records(
    shared_server: TrackioServer, tmp_path: Path
) -> None:
    project = f"oracle-{uuid.uuid4().hex[:10]}"
    trackio = TrackioLogger(project, server_url=shared_server.write_url)
    csv_logger = FabricCSVLogger(tmp_path, name="csv")
    fabric = Fabric(accelerator="cpu", loggers=[trackio, csv_logger])
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model, optimizer = fabric.setup(model, optimizer)
    for step, (x, y) in enumerate(data(32)):
        loss = torch.nn.functional.mse_loss(model(x), y)
        fabric.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        fabric.log_dict({"loss": loss, "half": loss / 2}, step=step)
        if step % 3 == 0:
            fabric.log("every_third", float(step), step=step)
    fabric.log_dict({"nan": float("nan")}, step=8)
    for logger in fabric.loggers:
        logger.finalize("success")
    rows = csv_points(Path(csv_logger.log_dir) / "metrics.csv")
    assert_run_holds(shared_server, project, trackio.run_id, rows)


def test_a_run_continued_by_its_id_alone_keeps_its_name(
    shared_server: TrackioServer, tmp_path: Path
) -> None:
    project = f"oracle-{uuid.uuid4().hex[:10]}"
    first = TrackioLogger(project, server_url=shared_server.write_url)
    first.log_metrics({"x": 1.0}, step=0)
    first.finalize("success")
    again = TrackioLogger(project, server_url=shared_server.write_url, run_id=first.run_id)
    again.log_metrics({"x": 2.0}, step=1)
    again.finalize("success")
    assert again.version == first.version
    assert [r["name"] for r in shared_server.runs(project)] == [first.version]


def test_on_local_storage_a_run_continued_by_its_id_alone_keeps_its_name() -> None:
    # The embedded default (TRACKIO_DIR, set by conftest): the first run's points still wait in
    # trackio's inbox, not yet in the project's database.
    project = f"oracle-{uuid.uuid4().hex[:10]}"
    first = TrackioLogger(project, system_metrics=False)
    first.log_metrics({"x": 1.0}, step=0)
    first.finalize("success")
    again = TrackioLogger(project, run_id=first.run_id, system_metrics=False)
    again.log_metrics({"x": 2.0}, step=1)
    again.finalize("success")
    assert again.version == first.version
