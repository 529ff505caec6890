"""A run's config survives the run being reopened in the same process.

The server replaces a run's config as a whole. A client that reopens a run this process already
logged to (a Trainer's ``predict()`` after ``train()``) records provenance again, and must send
the config the run has plus provenance, never provenance alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import PrinterCallback, Trainer, TrainingArguments

from examples.transformers_trainer import TokenData, tiny_model
from tests.harness import TrackioServer
from trackio_integrations import TrackioCallback, TrackioClient


def test_predict_after_train_keeps_the_trainers_config_with_provenance_on(
    shared_server: TrackioServer, project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKIO_PROVENANCE", "1")  # the default a user has
    monkeypatch.chdir(tmp_path)  # no git checkout: provenance records the command and machine
    callback = TrackioCallback(server_url=shared_server.write_url)
    trainer = Trainer(
        model=tiny_model(),
        args=TrainingArguments(
            str(tmp_path / "out"),
            project=project,
            run_name="kept",
            max_steps=2,
            per_device_train_batch_size=4,
            logging_steps=1,
            learning_rate=0.0123,
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            disable_tqdm=True,
        ),
        train_dataset=TokenData(16),
        callbacks=[callback],
    )
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    trainer.predict(TokenData(8, seed=2))  # reopens the run for test/*
    assert callback.client is not None
    assert callback.client.finish(timeout=20)

    run_id = shared_server.runs(project)[0]["id"]
    config = shared_server.configs(project)[run_id]
    assert config["learning_rate"] == pytest.approx(0.0123)  # TrainingArguments
    assert config["n_embd"] == 16  # the model's config
    assert "train_runtime" in config["summary"]  # the end-of-training summary
    assert "provenance/command" in config


def test_a_client_reopening_a_run_of_this_process_keeps_its_config(
    shared_server: TrackioServer, project: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRACKIO_PROVENANCE", "1")
    monkeypatch.chdir(tmp_path)
    first = TrackioClient(project, "again", server_url=shared_server.write_url, config={"lr": 0.5})
    first.log({"loss": 1.0}, step=0)
    first.update_config({"best": 0.9})
    assert first.finish(timeout=20)

    again = TrackioClient(project, "again", server_url=shared_server.write_url, run_id=first.run_id)
    assert again.config["lr"] == 0.5  # it knows the run's config
    again.log({"test/score": 0.7}, step=1)
    again.update_config({"tested": True})
    assert again.finish(timeout=20)

    config = shared_server.configs(project)[first.run_id]
    assert {"lr": 0.5, "best": 0.9, "tested": True}.items() <= config.items()
    assert "provenance/command" in config
