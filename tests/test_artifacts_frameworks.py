"""Checkpoints from each framework as artifact versions on a real ``trackio show``: Lightning's
``log_model``, the Trainer's ``log_checkpoints``, Accelerate's ``tracker.log_artifact``; and
``save_code`` putting the training script and its config in the project's Files."""

from __future__ import annotations

import filecmp
import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from lightning.pytorch.callbacks import ModelCheckpoint

from tests.harness import TrackioServer
from tests.test_lightning import QUIET, Regressor, loaders
from tests.test_transformers import make_trainer
from trackio_integrations import TrackioCallback, TrackioClient, TrackioLogger, TrackioTracker


@pytest.fixture
def script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A training script run as ``python train.py --config train.yaml``."""
    code = tmp_path / "job" / "train.py"
    code.parent.mkdir()
    code.write_text("print('training')\n")
    config = code.with_name("train.yaml")
    config.write_text("lr: 0.05\n")
    monkeypatch.setattr(sys, "argv", [str(code), "--config", str(config)])
    return code, config


def download(server: TrackioServer, project: str, ref: str, dest: Path) -> Path:
    with TrackioClient(project, "reader", server_url=server.write_url) as run:
        used = run.use_artifact(ref)
        assert used is not None
        return used.download(dest)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def code_files(server: TrackioServer, project: str) -> set[str]:
    """The Files tab's entries, as ``<folder the server keeps the name in>``."""
    return {f["name"].rsplit("/", 1)[0] for f in server.api("get_project_files", project)}


def test_lightning_log_model_true_uploads_the_best_and_last_at_the_end(
    shared_server: TrackioServer, project: str, tmp_path: Path, script: tuple[Path, Path]
) -> None:
    logger = TrackioLogger(
        project, server_url=shared_server.write_url, log_model=True, save_code=True
    )
    checkpoint = ModelCheckpoint(monitor="val_loss", save_top_k=1, save_last=True)
    trainer = L.Trainer(
        max_epochs=3, logger=logger, callbacks=[checkpoint], default_root_dir=tmp_path, **QUIET
    )
    trainer.fit(Regressor(), *loaders())

    name = f"model-{logger.version}"
    best_file, last_file = Path(checkpoint.best_model_path), Path(checkpoint.last_model_path)
    assert best_file != last_file
    [listed] = shared_server.api("get_artifacts", project)
    assert (listed["name"], listed["type"]) == (name, "model")
    # the best and the last, once each (one version if their bytes are the same)
    assert listed["num_versions"] == len({sha256(best_file), sha256(last_file)})
    assert set(listed["aliases"]) == {"best", "latest"}
    best = shared_server.api("get_artifact_manifest", project, name, "best")
    assert best["manifest"][0]["digest"] == sha256(best_file)
    latest = shared_server.api("get_artifact_manifest", project, name, "latest")
    assert latest["manifest"][0]["digest"] == sha256(last_file)
    # last.ckpt is a copy of the best when the last epoch was the best: one version, which keeps
    # the name ModelCheckpoint gave those bytes first (as WandbLogger's)
    first_name = best_file.name if sha256(best_file) == sha256(last_file) else "last.ckpt"
    assert latest["metadata"]["original_filename"] == first_name
    assert latest["metadata"]["ModelCheckpoint"]["monitor"] == "val_loss"
    if best["version"] != latest["version"]:
        assert best["metadata"]["score"] == pytest.approx(float(checkpoint.best_model_score))
    folder = download(shared_server, project, f"{name}:best", tmp_path / "best")
    assert filecmp.cmp(folder / "model.ckpt", best_file, shallow=False)
    assert code_files(shared_server, project) == {
        f"code/{logger.version}/train.py",
        f"code/{logger.version}/train.yaml",
    }


def test_lightning_log_model_all_uploads_each_checkpoint_as_it_is_saved(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    logger = TrackioLogger(project, server_url=shared_server.write_url, log_model="all")
    checkpoint = ModelCheckpoint(every_n_epochs=1, save_top_k=-1, filename="{epoch}")
    trainer = L.Trainer(
        max_epochs=3, logger=logger, callbacks=[checkpoint], default_root_dir=tmp_path, **QUIET
    )
    trainer.fit(Regressor(), *loaders())

    name = f"model-{logger.version}"
    [listed] = shared_server.api("get_artifacts", project)
    assert listed["num_versions"] == 3
    for version in range(3):
        record = shared_server.api("get_artifact_manifest", project, name, f"v{version}")
        assert record["metadata"]["original_filename"] == f"epoch={version}.ckpt"
        on_disk = Path(checkpoint.dirpath) / f"epoch={version}.ckpt"
        assert record["manifest"] == [
            {"path": "model.ckpt", "digest": sha256(on_disk), "size": on_disk.stat().st_size}
        ]


def test_lightning_log_model_all_with_save_last_keeps_each_checkpoints_own_file_name(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    logger = TrackioLogger(project, server_url=shared_server.write_url, log_model="all")
    checkpoint = ModelCheckpoint(monitor="val_loss", save_top_k=-1, save_last=True)
    trainer = L.Trainer(
        max_epochs=3, logger=logger, callbacks=[checkpoint], default_root_dir=tmp_path, **QUIET
    )
    trainer.fit(Regressor(), *loaders())
    assert logger.experiment.finish()  # the uploads are recorded

    name = f"model-{logger.version}"
    [listed] = shared_server.api("get_artifacts", project)
    versions = [
        shared_server.api("get_artifact_manifest", project, name, f"v{v}")
        for v in range(listed["num_versions"])
    ]
    named = {v["manifest"][0]["digest"]: v["metadata"]["original_filename"] for v in versions}
    epochs = sorted(p for p in Path(checkpoint.dirpath).glob("epoch=*.ckpt"))
    assert len(epochs) == 3
    for saved in epochs:  # each checkpoint under the name ModelCheckpoint gave it
        assert named[sha256(saved)] == saved.name
    last = Path(checkpoint.last_model_path)
    assert last.name == "last.ckpt" and sha256(last) == sha256(epochs[-1])
    # best and latest follow the callback
    best = shared_server.api("get_artifact_manifest", project, name, "best")
    assert best["manifest"][0]["digest"] == sha256(Path(checkpoint.best_model_path))
    assert best["metadata"]["original_filename"] == Path(checkpoint.best_model_path).name
    latest = shared_server.api("get_artifact_manifest", project, name, "latest")
    assert latest["manifest"][0]["digest"] == sha256(last)


def test_trainer_checkpoints_become_versions_of_one_model_artifact(
    shared_server: TrackioServer, project: str, tmp_path: Path, script: tuple[Path, Path]
) -> None:
    callback = TrackioCallback(
        server_url=shared_server.write_url, log_checkpoints="all", save_code=True
    )
    trainer = make_trainer(
        tmp_path, callback, project=project, run_name="ckpts", save_strategy="steps", save_steps=3
    )
    trainer.train()

    [listed] = shared_server.api("get_artifacts", project)
    assert (listed["name"], listed["num_versions"]) == ("model-ckpts", 2)
    assert set(listed["aliases"]) == {"step-3", "step-6", "latest"}
    record = shared_server.api("get_artifact_manifest", project, "model-ckpts", "step-6")
    assert record["metadata"]["global_step"] == 6
    saved = tmp_path / "out" / "checkpoint-6"
    folder = download(shared_server, project, "model-ckpts:step-6", tmp_path / "back")
    files = sorted(p.relative_to(saved).as_posix() for p in saved.rglob("*") if p.is_file())
    assert sorted(e["path"] for e in record["manifest"]) == files
    for name in files:
        assert filecmp.cmp(folder / name, saved / name, shallow=False), name
    assert code_files(shared_server, project) == {"code/ckpts/train.py", "code/ckpts/train.yaml"}


def test_trainer_log_model_end_from_the_environment_uploads_the_final_checkpoint(
    shared_server: TrackioServer, project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKIO_LOG_MODEL", "end")
    callback = TrackioCallback(server_url=shared_server.write_url)
    trainer = make_trainer(
        tmp_path, callback, project=project, run_name="final", save_strategy="steps", save_steps=4
    )
    trainer.train()

    [listed] = shared_server.api("get_artifacts", project)
    assert (listed["name"], listed["num_versions"]) == ("model-final", 1)
    record = shared_server.api("get_artifact_manifest", project, "model-final", "final")
    assert record["metadata"]["checkpoint"] == "checkpoint-6"  # the Trainer saves the last step


@pytest.fixture
def fresh_accelerate_state() -> Iterator[None]:
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def test_accelerate_tracker_logs_a_saved_state(
    shared_server: TrackioServer,
    project: str,
    tmp_path: Path,
    script: tuple[Path, Path],
    fresh_accelerate_state: None,
) -> None:
    tracker = TrackioTracker(server_url=shared_server.write_url, name="acc", save_code=True)
    accelerator = Accelerator(cpu=True, log_with=tracker)
    accelerator.init_trackers(project)
    model = accelerator.prepare(torch.nn.Linear(4, 1))
    state_dir = tmp_path / "state"
    accelerator.save_state(str(state_dir))
    art: Any = accelerator.get_tracker("trackio").log_artifact(
        state_dir, name="state", type="checkpoint", aliases=["step-0"]
    )
    accelerator.end_training()

    assert art is not None and art.version == "v0"
    record = shared_server.api("get_artifact_manifest", project, "state", "step-0")
    assert record["type"] == "checkpoint" and record["producer_run_name"] == "acc"
    folder = download(shared_server, project, "state", tmp_path / "back")
    for entry in record["manifest"]:
        assert filecmp.cmp(folder / entry["path"], state_dir / entry["path"], shallow=False)
    assert model is not None
    assert code_files(shared_server, project) == {"code/acc/train.py", "code/acc/train.yaml"}
