"""Media from each framework, with the method names its W&B integration has, in real training."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import lightning as L
import numpy as np
import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from lightning_utilities.core.rank_zero import rank_zero_only
from PIL import Image as PILImage

from examples.transformers_trainer import TokenData
from tests.harness import TrackioServer
from tests.test_accelerate import train
from tests.test_lightning import QUIET, Regressor, loaders
from tests.test_transformers import make_trainer
from trackio_integrations import TrackioCallback, TrackioConfigError, TrackioLogger, TrackioTracker
from trackio_integrations.media.encode import image_array


def stored_pixels(server: TrackioServer, value: dict[str, Any]) -> list[Any]:
    path = server.data_dir / "media" / value["file_path"]
    response = httpx.get(f"{server.url}/file", params={"path": str(path)}, timeout=30)
    assert response.status_code == 200
    return np.asarray(PILImage.open(io.BytesIO(response.content))).tolist()


def rows_with(server: TrackioServer, project: str, run: str, key: str) -> list[dict[str, Any]]:
    return [row for row in server.logs(project, run) if key in row]


def histogram_steps(server: TrackioServer, project: str, run: str, key: str) -> list[int]:
    return [row["step"] for row in rows_with(server, project, run, key)]


SAMPLES = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


class Painter(Regressor):
    """Logs samples, a predictions table, text, a sound and a clip after each validation."""

    def on_validation_epoch_end(self) -> None:
        logger: Any = self.logger
        step = self.global_step
        logger.log_image("samples", images=[SAMPLES[0], SAMPLES[1]], caption=["a", "b"], step=step)
        logger.log_table("preds", columns=["x", "y"], data=[[1, 0.5], [2, 0.25]], step=step)
        logger.log_text("notes", columns=["text"], data=[["went well"]], step=step)
        tone = np.sin(np.linspace(0, 40 * np.pi, 800))
        logger.log_audio("sound", audios=[tone], sample_rate=[8000], caption=["tone"], step=step)
        frames = np.zeros((3, 3, 8, 8), dtype=np.uint8)
        logger.log_video("clip", videos=[frames], fps=[2], step=step)


def test_lightning_logs_media_like_wandb_logger_and_watches_until_unwatch(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    logger = TrackioLogger(project, server_url=shared_server.write_url)
    model = Painter()
    logger.watch(model, log="all", log_freq=2)
    train, val = loaders()
    settings = {"num_sanity_val_steps": 0, "default_root_dir": tmp_path, **QUIET}
    L.Trainer(logger=logger, max_epochs=2, **settings).fit(model, train, val)

    run = logger.version
    images = rows_with(shared_server, project, run, "samples/0")
    assert [r["step"] for r in images] == [4, 8]  # after each epoch of 4 steps
    assert [images[0]["samples/0"]["caption"], images[0]["samples/1"]["caption"]] == ["a", "b"]
    assert stored_pixels(shared_server, images[0]["samples/1"]) == image_array(SAMPLES[1]).tolist()
    (preds, _) = rows_with(shared_server, project, run, "preds")
    assert preds["preds"]["_value"] == [{"x": 1, "y": 0.5}, {"x": 2, "y": 0.25}]
    assert rows_with(shared_server, project, run, "notes")[0]["notes"]["_value"] == [
        {"text": "went well"}
    ]
    assert rows_with(shared_server, project, run, "sound/0")[0]["sound/0"]["caption"] == "tone"
    assert rows_with(shared_server, project, run, "clip/0")[0]["clip/0"]["_type"] == "trackio.video"

    # Histograms every 2 steps, computed from the real gradients and weights of each layer;
    # gradients wait for a training step that has them (the validation at step 8 has none).
    steps = histogram_steps(shared_server, project, run, "gradients/net.0.weight")
    assert steps == [2, 4, 6]
    assert histogram_steps(shared_server, project, run, "parameters/net.2.bias") == [2, 4, 6, 8]
    row = rows_with(shared_server, project, run, "gradients/net.0.weight")[-1]
    assert sum(row["gradients/net.0.weight"]["values"]) == 8 * 4
    weights = model.net[0].weight.detach()
    assert sum(row["parameters/net.0.weight"]["values"]) == weights.numel()

    logger.unwatch(model)
    L.Trainer(logger=logger, max_epochs=1, **settings).fit(model, train, val)
    assert histogram_steps(shared_server, project, run, "gradients/net.0.weight") == steps


def test_lightning_media_methods_log_on_rank_zero_only(project: str) -> None:
    logger = TrackioLogger(project)
    rank, rank_zero_only.rank = getattr(rank_zero_only, "rank", 0), 1
    try:
        logger.log_image("samples", [SAMPLES[0]])
        logger.log_table("t", columns=["a"], data=[[1]])
        logger.watch(torch.nn.Linear(2, 2))
    finally:
        rank_zero_only.rank = rank
    assert logger._client is None and logger._watchers == {}


def test_transformers_callback_watches_gradients_and_weights_every_n_steps(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    callback = TrackioCallback(server_url=shared_server.write_url, watch="all", watch_every=2)
    trainer = make_trainer(tmp_path, callback, project=project, run_name="watched")
    trainer.train()
    name = "transformer.h.0.mlp.c_fc.weight"
    gradients = rows_with(shared_server, project, "watched", f"gradients/{name}")
    assert [r["step"] for r in gradients] == [2, 4, 6]
    numel = trainer.model.get_parameter(name).numel()
    assert all(sum(r[f"gradients/{name}"]["values"]) == numel for r in gradients)
    assert any(set(r[f"gradients/{name}"]["bins"]) != {0.0} for r in gradients)  # not zeroed
    assert histogram_steps(shared_server, project, "watched", f"parameters/{name}") == [2, 4, 6]
    assert shared_server.steps(project, "watched", "train/loss") == [2, 4, 6]


def test_trackio_watch_sets_the_callbacks_default(
    shared_server: TrackioServer, project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKIO_WATCH", "gradients")
    callback = TrackioCallback(server_url=shared_server.write_url, watch_every=3)
    make_trainer(tmp_path, callback, project=project, run_name="env").train()
    keys = {k for row in shared_server.logs(project, "env") for k in row}
    assert any(k.startswith("gradients/") for k in keys)
    assert not any(k.startswith("parameters/") for k in keys)
    assert histogram_steps(
        shared_server, project, "env", "gradients/transformer.h.0.mlp.c_fc.weight"
    ) == [3, 6]
    monkeypatch.setenv("TRACKIO_WATCH", "sometimes")
    with pytest.raises(TrackioConfigError, match="watch='sometimes'"):
        TrackioCallback(server_url=shared_server.write_url)
    monkeypatch.setenv("TRACKIO_WATCH", "false")
    assert TrackioCallback(server_url=shared_server.write_url).watch is None
    assert TokenData  # the same tiny data set as the other Trainer tests


@pytest.fixture
def fresh_accelerate_state() -> Iterator[None]:
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def test_accelerate_tracker_logs_images_and_tables_like_its_wandb_tracker(
    shared_server: TrackioServer, project: str, fresh_accelerate_state: None
) -> None:
    accelerator = Accelerator(cpu=True, log_with=TrackioTracker(server_url=shared_server.write_url))
    accelerator.init_trackers(project)
    tracker: Any = accelerator.get_tracker("trackio")
    train(accelerator, steps=3)  # steps 0, 1, 2 of a tiny MLP
    tracker.log_images({"samples": SAMPLES}, step=1)  # a batch: one image each
    tracker.log_table("preds", columns=["id", "label"], data=[[0, "cat"], [1, "dog"]], step=1)
    run = accelerator.get_tracker("trackio", unwrap=True).name
    accelerator.end_training()

    (images,) = rows_with(shared_server, project, run, "samples/0")
    assert images["step"] == 1 and "samples/1" in images
    assert stored_pixels(shared_server, images["samples/0"]) == image_array(SAMPLES[0]).tolist()
    (table,) = rows_with(shared_server, project, run, "preds")
    assert table["preds"]["_value"] == [{"id": 0, "label": "cat"}, {"id": 1, "label": "dog"}]
    assert shared_server.steps(project, run, "train/loss") == [0, 1, 2]
