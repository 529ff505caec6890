"""``LightningCLI`` with ``TrackioLogger`` named in its YAML or on its command line, against a real
``trackio show``: ``fit --config`` runs (twice in one folder), the CLI checks every init argument,
and the CLI's whole configuration is in the run's config, its tokens masked."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import lightning as L
import pytest
import yaml
from lightning.pytorch.cli import LightningCLI
from torch.utils.data import DataLoader

from tests.harness import REPO, TOKEN, TrackioServer, wait_until
from tests.test_lightning import Regressor, loaders

DOCS = REPO / "docs" / "lightning.md"


class Data(L.LightningDataModule):
    """The regression data of tests/test_lightning.py, for the CLI's ``data`` section."""

    def __init__(self, batch_size: int = 8) -> None:
        super().__init__()
        self.batch_size = batch_size

    def train_dataloader(self) -> DataLoader:
        return loaders()[0]

    def val_dataloader(self) -> DataLoader:
        return loaders()[1]


def config_file(tmp_path: Path, init_args: str) -> Path:
    """A YAML as users write it; ``init_args`` is the logger's, already indented."""
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""\
seed_everything: 0
trainer:
  max_epochs: 1
  accelerator: cpu
  enable_progress_bar: false
  enable_model_summary: false
  log_every_n_steps: 1
  default_root_dir: {tmp_path / "root"}
  logger:
    class_path: trackio_integrations.TrackioLogger
    init_args:
{init_args}
model:
  hidden: 6
data:
  batch_size: 8
"""
    )
    return path


def cli(*args: str) -> LightningCLI:
    with mock.patch.object(sys, "argv", ["train.py"]):  # pytest's own arguments are not the CLI's
        return LightningCLI(Regressor, Data, args=list(args))


def run_config(server: TrackioServer, project: str, name: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        runs = {r["name"]: r["id"] for r in server.runs(project)}
        config = server.configs(project).get(runs.get(name, ""), {})
        return config if config.get("status") == "success" else None

    return dict(wait_until(ended))


def test_fit_with_the_logger_in_the_yaml_runs_and_the_whole_config_reaches_the_run(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    init_args = f"""\
      project: {project}
      name: from-yaml
      group: cli
      server_url: {shared_server.write_url}
      system_metrics: false
"""
    path = config_file(tmp_path, init_args)
    cli("fit", "--config", str(path))  # crashed in SaveConfigCallback.setup: no log_dir
    # The command line overrides the YAML, and a second run in the same folder is no error.
    cli("fit", "--config", str(path), "--trainer.logger.init_args.name=from-cli", "--model.lr=0.02")

    for run in ("from-yaml", "from-cli"):  # where the CLI saves it: each run's own folder
        assert (tmp_path / "root" / project / run / "config.yaml").is_file()
    first = run_config(shared_server, project, "from-yaml")
    second = run_config(shared_server, project, "from-cli")
    assert first["_Group"] == second["_Group"] == "cli"
    for config, lr in ((first, 0.05), (second, 0.02)):
        whole = config["cli"]  # everything the CLI was given, defaults included
        assert whole["seed_everything"] == 0
        assert whole["trainer"]["max_epochs"] == 1 and whole["data"]["batch_size"] == 8
        assert whole["model"]["hidden"] == 6 and whole["model"]["lr"] == lr
        assert whole["optimizer"] is None  # a default, dumped as the CLI saves it
        logger = whole["trainer"]["logger"]
        assert logger["class_path"] == "trackio_integrations.TrackioLogger"
        assert logger["init_args"]["group"] == "cli"
        assert config["lr"] == lr  # the model's hyperparameters, as without the CLI
    assert second["cli"]["trainer"]["logger"]["init_args"]["name"] == "from-cli"
    assert TOKEN not in repr(first) and TOKEN not in repr(second)  # the write token is masked
    steps = shared_server.wait_for_steps(project, "from-cli", "train_loss", 4)
    assert steps == [0, 1, 2, 3]


def test_the_logger_named_on_the_command_line_alone(
    shared_server: TrackioServer, project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKIO_SERVER_URL", shared_server.url)
    monkeypatch.setenv("TRACKIO_WRITE_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)  # the Trainer's default root: config.yaml is saved under it
    cli(
        "fit",
        "--trainer.max_epochs=1",
        "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
        "--trainer.logger=trackio_integrations.TrackioLogger",
        f"--trainer.logger.project={project}",
        "--trainer.logger.name=flags",
        "--trainer.logger.system_metrics=false",
    )
    assert run_config(shared_server, project, "flags")["cli"]["trainer"]["max_epochs"] == 1
    assert (tmp_path / project / "flags" / "config.yaml").is_file()


@pytest.mark.parametrize(
    ("init_arg", "said"),
    [
        ("sytem_metrics: false", "sytem_metrics"),  # misspelt
        ("mode: onlnie", "onlnie"),  # not one of its values
        ("system_interval: often", "often"),  # not a number
    ],
)
def test_a_wrong_logger_argument_is_the_clis_error_and_nothing_starts(
    init_arg: str,
    said: str,
    shared_server: TrackioServer,
    project: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    init_args = f"""\
      project: {project}
      server_url: {shared_server.write_url}
      {init_arg}
"""
    with pytest.raises(SystemExit) as exited:
        cli("fit", "--config", str(config_file(tmp_path, init_args)))
    assert exited.value.code == 2  # argparse's usage error, before anything is built
    assert said in capsys.readouterr().err
    assert shared_server.runs(project) == []


def test_the_yaml_in_the_docs_runs_as_written(
    shared_server: TrackioServer, project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (block,) = re.findall(r"^```yaml\n(.*?)^```", DOCS.read_text(), re.DOTALL | re.MULTILINE)
    written = yaml.safe_load(block)
    logger = written["trainer"]["logger"]["init_args"]
    logger["project"] = project  # the test's own project; the rest as the page has it
    written["trainer"].update(  # this machine's: a CPU, a temporary folder, no progress bar
        accelerator="cpu", default_root_dir=str(tmp_path), enable_progress_bar=False
    )
    path = tmp_path / "config.yaml"  # in the root, as the page has it (the working directory)
    path.write_text(f"# {logger['name']}, my settings\n{yaml.safe_dump(written)}")
    mine = path.read_text()
    monkeypatch.setenv("TRACKIO_SERVER_URL", shared_server.url)
    monkeypatch.setenv("TRACKIO_WRITE_TOKEN", TOKEN)
    cli("fit", "--config", str(path))
    cli("fit", "--config", str(path))  # again: the YAML passed is still the user's
    assert path.read_text() == mine, "the CLI replaced the user's config.yaml with its own"
    assert (tmp_path / project / logger["name"] / "config.yaml").is_file()
    config = run_config(shared_server, project, logger["name"])
    assert config["_Group"] == logger["group"]
    assert written["model"].items() <= config["cli"]["model"].items()  # and the defaults
    assert config["cli"]["trainer"]["max_epochs"] == written["trainer"]["max_epochs"]
