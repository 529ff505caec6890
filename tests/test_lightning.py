"""TrackioLogger in real Lightning runs against a real ``trackio show``: what Lightning logs is
what the dashboard reads, with hyperparameters, checkpoints and the run's outcome in its config."""

from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
from lightning.fabric import Fabric
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.parsing import AttributeDict
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, TensorDataset

from tests.harness import REPO, TrackioServer, own, run_python
from trackio_integrations import TrackioAuthError, TrackioConfigError, TrackioLogger

QUIET: dict[str, Any] = {
    "accelerator": "cpu",
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "log_every_n_steps": 1,
}


class Regressor(L.LightningModule):
    """Learns y = x·w; remembers every training loss it logs, and can be told to crash."""

    def __init__(
        self, hidden: int = 8, lr: float = 0.05, activation: type = torch.nn.Tanh, fail_at: int = -1
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, hidden), activation(), torch.nn.Linear(hidden, 1)
        )
        self.losses: list[float] = []

    def training_step(self, batch: Any, _: int) -> torch.Tensor:
        if self.global_step == self.hparams["fail_at"]:
            raise RuntimeError("the data loader hit a corrupt shard")
        loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
        self.log("train_loss", loss)
        self.losses.append(loss.item())
        return loss

    def validation_step(self, batch: Any, _: int) -> None:
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(batch[0]), batch[1]))

    def test_step(self, batch: Any, _: int) -> None:
        self.log("test_loss", torch.nn.functional.mse_loss(self.net(batch[0]), batch[1]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams["lr"])


def loaders() -> tuple[DataLoader, DataLoader]:
    """32 training samples in batches of 8: 4 steps per epoch."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(48, 4, generator=generator)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    return (
        DataLoader(TensorDataset(x[:32], y[:32]), batch_size=8),
        DataLoader(TensorDataset(x[32:], y[32:]), batch_size=16),
    )


def config_of(server: TrackioServer, project: str, logger: TrackioLogger) -> dict[str, Any]:
    return dict(server.configs(project)[logger.run_id])


def test_a_fit_arrives_with_its_metrics_hyperparameters_checkpoints_and_status(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    logger = TrackioLogger(project, server_url=shared_server.write_url)
    checkpoint = ModelCheckpoint(monitor="val_loss", save_top_k=2, save_last=True)
    trainer = L.Trainer(
        max_epochs=3, logger=logger, callbacks=[checkpoint], default_root_dir=tmp_path, **QUIET
    )
    model = Regressor(hidden=8, lr=0.05)
    train, val = loaders()
    run = logger.experiment  # the client fit() will log through
    trainer.fit(model, train, val)

    assert run.pending == 0  # finalize() had every point delivered before fit() returned
    assert shared_server.wait_for_steps(project, logger.version, "train_loss", 12) == list(
        range(12)
    )
    assert [r["name"] for r in shared_server.runs(project)] == [logger.version]
    losses = shared_server.values(project, logger.version, "train_loss")
    assert [v["value"] for v in losses] == pytest.approx(model.losses)
    val_losses = shared_server.values(project, logger.version, "val_loss")
    assert [v["step"] for v in val_losses] == [3, 7, 11]

    config = shared_server.wait_for_config(project, logger.run_id, status="success")
    assert config["status"] == "success"
    assert config["hidden"] == 8 and config["lr"] == 0.05
    assert config["activation"] == "torch.nn.modules.activation.Tanh"

    # the checkpoints are where a user finds them: in the config, with their scores
    assert checkpoint.dirpath == str(tmp_path / project / logger.version / "checkpoints")
    recorded = config["checkpoints"]["val_loss"]
    assert recorded["best_model_path"] == checkpoint.best_model_path
    assert Path(recorded["best_model_path"]).is_file()
    assert recorded["best_model_score"] == pytest.approx(min(v["value"] for v in val_losses))
    assert recorded["last_model_path"] == checkpoint.last_model_path
    assert recorded["last_model_path"].endswith("last.ckpt")
    assert recorded["mode"] == "min"
    scores = [entry["score"] for entry in recorded["top_k"]]
    assert (
        len(scores) == 2 and scores == sorted(scores) and scores[0] == recorded["best_model_score"]
    )
    assert {entry["path"] for entry in recorded["top_k"]} == set(checkpoint.best_k_models)

    # testing afterwards continues the same run
    trainer.test(model, val)
    assert shared_server.wait_for_steps(project, logger.version, "test_loss", 1) == [12]
    assert [r["name"] for r in shared_server.runs(project)] == [logger.version]
    assert shared_server.wait_for_config(project, logger.run_id, status="success")


def test_a_score_logged_after_fit_lands_in_the_run_which_keeps_fit_s_status(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    # A fresh process that touches the logger after fit() and exits: nothing finalizes it again.
    code = textwrap.dedent(
        f"""
        import lightning as L
        from tests.test_lightning import QUIET, Regressor, loaders
        from trackio_integrations import TrackioLogger
        logger = TrackioLogger({project!r}, "after-fit", server_url={shared_server.write_url!r})
        trainer = L.Trainer(max_epochs=1, logger=logger, enable_checkpointing=False,
                            default_root_dir={str(tmp_path)!r}, **QUIET)
        trainer.fit(Regressor(), *loaders())
        assert logger.experiment.pending == 0
        logger.log_metrics({{"final/score": 0.5}})
        """
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr

    assert shared_server.wait_for_steps(project, "after-fit", "final/score", 1) == [4]
    assert shared_server.steps(project, "after-fit", "train_loss") == [0, 1, 2, 3]
    [run] = shared_server.runs(project)
    assert shared_server.configs(project)[run["id"]]["status"] == "success"
    rows = shared_server.logs(project, "after-fit")
    assert [row for row in rows if not row.keys() - {"step", "timestamp"}] == []


def test_a_fit_that_raises_still_delivers_its_points_and_records_failed(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    logger = TrackioLogger(project, server_url=shared_server.write_url)
    trainer = L.Trainer(max_epochs=3, logger=logger, default_root_dir=tmp_path, **QUIET)
    model = Regressor(fail_at=6)
    with pytest.raises(RuntimeError, match="corrupt shard"):
        trainer.fit(model, *loaders())
    assert shared_server.wait_for_steps(project, logger.version, "train_loss", 6) == list(range(6))
    losses = shared_server.values(project, logger.version, "train_loss")
    assert [v["value"] for v in losses] == pytest.approx(model.losses)
    assert shared_server.wait_for_steps(project, logger.version, "val_loss", 1) == [3]
    assert shared_server.wait_for_config(project, logger.run_id, status="failed")


def test_resuming_from_a_checkpoint_continues_the_run_with_each_step_once(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    def fit(logger: TrackioLogger, model: Regressor, ckpt_path: str | None = None) -> None:
        checkpoint = ModelCheckpoint(dirpath=tmp_path, save_last=True)
        trainer = L.Trainer(max_epochs=3, logger=logger, callbacks=[checkpoint], **QUIET)
        trainer.fit(model, *loaders(), ckpt_path=ckpt_path, weights_only=False)  # our own file

    first = TrackioLogger(project, server_url=shared_server.write_url, step_ids=True)
    with pytest.raises(RuntimeError):
        fit(first, Regressor(fail_at=10))  # the job dies in epoch 3, after steps 8 and 9
    again = TrackioLogger(
        project,
        first.version,
        server_url=shared_server.write_url,
        run_id=first.run_id,
        step_ids=True,
    )
    fit(again, Regressor(), ckpt_path=str(tmp_path / "last.ckpt"))  # epoch 3 runs again

    steps = shared_server.wait_for_steps(project, first.version, "train_loss", 12)
    assert steps == list(range(12))  # each once
    assert [r["name"] for r in shared_server.runs(project)] == [first.version]
    assert shared_server.wait_for_config(project, first.run_id, status="success")


def test_a_wrong_write_token_stops_the_fit_before_the_first_step(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    logger = TrackioLogger(project, server_url=shared_server.url, write_token="WRONG")
    trainer = L.Trainer(max_epochs=1, logger=logger, default_root_dir=tmp_path, **QUIET)
    model = Regressor()
    with pytest.raises(TrackioAuthError):
        trainer.fit(model, *loaders())
    assert model.losses == [] and shared_server.runs(project) == []


def test_one_logger_class_is_a_logger_of_both_lightning_packages_and_of_fabric() -> None:
    # In a program that imports both packages. Not in this process: the class takes the bases
    # of the packages imported before it is first used, and which those are here depends on the
    # test modules collected before this one (tests/test_oracle_lightning.py imports only one).
    code = textwrap.dedent(
        """
        import lightning as L
        import lightning_fabric
        import pytorch_lightning as pl
        from trackio_integrations import TrackioLogger

        logger = TrackioLogger("any-project")
        assert isinstance(logger, L.pytorch.loggers.Logger)
        assert isinstance(logger, pl.loggers.Logger)
        assert isinstance(logger, L.fabric.loggers.Logger)
        assert isinstance(logger, lightning_fabric.loggers.Logger)
        assert (logger.name, logger.save_dir, logger.log_dir) == ("any-project", None, None)
        """
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr[-3000:]


def run_fit_script(
    package: str, devices: int, project: str, server: TrackioServer, out: Path
) -> list[dict[str, Any]]:
    env = server.job_env(project)
    script = REPO / "tests" / "scripts" / "lightning_fit.py"
    result = subprocess.run(
        [sys.executable, str(script), package, str(devices), str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    return [json.loads((out / f"rank{rank}.json").read_text()) for rank in range(devices)]


def test_a_pytorch_lightning_program_gets_a_pytorch_lightning_logger(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    (report,) = run_fit_script("pytorch_lightning", 1, project, shared_server, tmp_path)
    assert "pytorch_lightning.loggers.logger" in report["logger_bases"]
    assert not report["lightning_imported"]  # the other package is never pulled in
    values = shared_server.values(project, report["run"], "train_loss")
    assert [v["step"] for v in values] == list(range(16))
    assert [v["value"] for v in values] == pytest.approx(report["losses"])
    config = shared_server.configs(project)[report["run_id"]]
    assert config["status"] == "success" and config["hidden"] == 8
    assert config["checkpoints"]["val_loss"]["best_model_path"] == report["best_model_path"]


def test_ddp_with_two_processes_makes_one_run_with_each_point_once(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    rank0, rank1 = run_fit_script("lightning.pytorch", 2, project, shared_server, tmp_path)
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert (rank0["experiment"], rank0["clients"]) == ("TrackioClient", 1)
    assert (rank1["experiment"], rank1["clients"]) == ("_DummyExperiment", 0)
    assert [r["name"] for r in shared_server.runs(project)] == [rank0["run"]]
    values = shared_server.values(project, rank0["run"], "train_loss")
    assert [v["step"] for v in values] == list(range(8))  # 64 samples / 2 ranks / 8 a batch * 2
    assert [v["value"] for v in values] == pytest.approx(rank0["losses"])
    assert shared_server.steps(project, rank0["run"], "val_loss") == [3, 7]
    config = shared_server.configs(project)[rank0["run_id"]]
    assert config["status"] == "success"
    assert config["checkpoints"]["val_loss"]["best_model_path"] == rank0["best_model_path"]
    assert rank1["best_model_path"] == rank0["best_model_path"]


def test_a_fabric_loop_logs_through_log_dict(shared_server: TrackioServer, project: str) -> None:
    logger = TrackioLogger(project, server_url=shared_server.write_url)
    fabric = Fabric(accelerator="cpu", devices=1, loggers=[logger])
    fabric.logger.log_hyperparams(
        OmegaConf.create({"optim": {"lr": 0.1, "warmup": "${steps}"}, "steps": 10})
    )
    model = torch.nn.Linear(4, 1)
    model, optimizer = fabric.setup(model, torch.optim.SGD(model.parameters(), lr=0.1))
    train, _ = loaders()
    losses = []
    for step, (x, y) in enumerate(list(train) * 3):
        loss = torch.nn.functional.mse_loss(model(x), y)
        fabric.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        fabric.log_dict({"loss": loss, "lr": 0.1}, step=step)
        losses.append(loss.item())
    fabric.logger.finalize("success")

    assert shared_server.wait_for_steps(project, logger.version, "loss", 12) == list(range(12))
    values = shared_server.values(project, logger.version, "loss")
    assert [v["value"] for v in values] == pytest.approx(losses)
    assert own(config_of(shared_server, project, logger)) == {
        "_Group": None,
        "optim": {"lr": 0.1, "warmup": 10},
        "steps": 10,
        "status": "success",
    }


@dataclasses.dataclass
class DataConfig:
    path: Path = Path("/data/shards")
    splits: tuple[str, ...] = ("train", "val")


def test_every_kind_of_hyperparameters_becomes_json_config(
    shared_server: TrackioServer, project: str
) -> None:
    logger = TrackioLogger(project, server_url=shared_server.write_url)
    logger.log_hyperparams(argparse.Namespace(seed=7, out=Path("/runs/7")))
    logger.log_hyperparams(
        AttributeDict(
            activation=torch.nn.GELU,
            loss_fn=torch.nn.functional.mse_loss,
            model={"layers": [64, 64], "dropout": np.float32(0.25)},
            class_weights=torch.tensor([0.5, 2.0]),
            hydra=OmegaConf.create({"ckpt": "???", "home": "${oc.env:NO_SUCH_VARIABLE}"}),
        )
    )
    logger.log_hyperparams({"data": DataConfig()})
    logger.log_hyperparams(DataConfig(splits=("all",)))  # a dataclass as the whole argument
    logger.log_hyperparams(
        OmegaConf.create({"trainer": {"epochs": 3, "eval": "${trainer.epochs}"}})
    )
    logger.log_hyperparams(None)
    logger.finalize("success")
    assert own(shared_server.wait_for_config(project, logger.run_id, status="success")) == {
        "_Group": None,
        "seed": 7,
        "out": "/runs/7",
        "activation": "torch.nn.modules.activation.GELU",
        "loss_fn": "torch.nn.functional.mse_loss",
        "model": {"layers": [64, 64], "dropout": 0.25},
        "class_weights": [0.5, 2.0],
        "hydra": {"ckpt": "???", "home": "${oc.env:NO_SUCH_VARIABLE}"},  # kept, not lost
        "data": {"path": "/data/shards", "splits": ["train", "val"]},
        "path": "/data/shards",
        "splits": ["all"],
        "trainer": {"epochs": 3, "eval": 3},
        "status": "success",
    }


def test_prefix_and_tensor_and_numpy_values(shared_server: TrackioServer, project: str) -> None:
    logger = TrackioLogger(project, server_url=shared_server.write_url, prefix="fold1")
    logger.log_metrics({"loss": torch.tensor(0.5), "acc": np.float32(0.75), "epoch": 2}, step=7)
    logger.finalize("success")
    shared_server.wait_for_steps(project, logger.version, "fold1-loss", 1)
    (row,) = [r for r in shared_server.logs(project, logger.version) if len(r) > 2]  # not config
    assert (row["step"], row["fold1-loss"], row["fold1-acc"], row["fold1-epoch"]) == (
        7,
        0.5,
        0.75,
        2,
    )


def test_a_pickled_logger_continues_the_same_run(
    shared_server: TrackioServer, project: str
) -> None:
    # ddp_spawn pickles the Trainer's loggers into the worker processes
    logger = TrackioLogger(project, server_url=shared_server.write_url)
    logger.log_metrics({"a": 1.0}, step=0)
    clone = pickle.loads(pickle.dumps(logger))
    assert (clone.name, clone.version, clone.run_id) == (logger.name, logger.version, logger.run_id)
    clone.log_metrics({"a": 2.0}, step=1)
    clone.finalize("success")
    logger.finalize("success")
    assert shared_server.wait_for_steps(project, logger.version, "a", 2) == [0, 1]
    assert [r["name"] for r in shared_server.runs(project)] == [logger.version]


def test_no_project_fails_when_the_logger_is_made() -> None:
    with pytest.raises(TrackioConfigError, match="TRACKIO_PROJECT"):
        TrackioLogger()
