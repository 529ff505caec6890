"""Adopting without rewriting a script: ``report_to="trackio"``, ``log_with="trackio"``, Lightning's
``TrackioLogger`` arguments, all through this package's client, with one line or none."""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
import sysconfig
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import pytest
from accelerate import Accelerator
from accelerate import tracking as accelerate_tracking
from accelerate.state import AcceleratorState, GradientState
from transformers import PrinterCallback, Trainer, TrainingArguments
from transformers.integrations import INTEGRATION_TO_CALLBACK

import trackio_integrations
import trackio_integrations.integrations.accelerate as our_accelerate
from examples.transformers_trainer import TokenData, tiny_model
from tests.harness import REPO, TOKEN, TrackioServer, own, wait_until
from tests.test_accelerate import MODEL, train
from tests.test_lightning import QUIET, Regressor, loaders
from trackio_integrations import (
    TrackioAuthError,
    TrackioConfigError,
    TrackioLogger,
    TrackioTracker,
    install,
    uninstall,
)
from trackio_integrations.adopt.install import installed
from trackio_integrations.integrations.transformers.callback import ReportToTrackioCallback

SCRIPT = REPO / "tests" / "scripts" / "report_to_trackio.py"
BUILTIN_CALLBACK = INTEGRATION_TO_CALLBACK["trackio"]  # transformers' own, as imported here
BUILTIN_TRACKER = accelerate_tracking.LOGGER_TYPE_TO_CLASS["trackio"]


@pytest.fixture(autouse=True)
def nothing_installed_after() -> Iterator[None]:
    """Other test modules expect the frameworks' own 'trackio'; accelerate's state is global."""
    yield
    uninstall()
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


@pytest.fixture
def on_server(shared_server: TrackioServer, project: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cluster's environment: a server, its token, a project; the script names none."""
    monkeypatch.setenv("TRACKIO_SERVER_URL", shared_server.url)
    monkeypatch.setenv("TRACKIO_WRITE_TOKEN", TOKEN)
    monkeypatch.setenv("TRACKIO_PROJECT", project)


def trainer_reporting_to(report_to: str, tmp_path: Path, callbacks: Any = None) -> Trainer:
    trainer = Trainer(
        model=tiny_model(),
        args=TrainingArguments(
            str(tmp_path / "out"),
            run_name="adopted",
            max_steps=4,
            per_device_train_batch_size=4,
            logging_steps=2,
            save_strategy="no",
            report_to=report_to,
            use_cpu=True,
            disable_tqdm=True,
        ),
        train_dataset=TokenData(32),
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)
    return trainer


def trackio_callbacks(trainer: Trainer) -> list[Any]:
    return [cb for cb in trainer.callback_handler.callbacks if "Trackio" in type(cb).__name__]


def log_ids(server: TrackioServer, project: str, run_id: str) -> list[str]:
    """The ids the server stored the run's points under (its API does not return them)."""
    with sqlite3.connect(server.data_dir / f"{project}.db") as db:
        rows = db.execute("SELECT log_id FROM metrics WHERE run_id = ?", (run_id,)).fetchall()
    return [row[0] for row in rows]


def run_script(
    python: str, tmp_path: Path, server: TrackioServer, project: str, *args: str, **env: str
) -> dict[str, Any]:
    environment = server.job_env(project, **env)
    command = [python, str(SCRIPT), "--output-dir", str(tmp_path / "out"), *args]
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def assert_run_is_ours(server: TrackioServer, project: str, printed: dict[str, Any]) -> None:
    assert printed["callbacks"] == [
        "trackio_integrations.integrations.transformers.callback.ReportToTrackioCallback"
    ]
    assert printed["imported"] == []  # neither trackio nor gradio in the training process
    assert [r["name"] for r in server.runs(project)] == ["no-code-change"]
    assert server.wait_for_steps(project, "no-code-change", "train/loss", 4) == [1, 2, 3, 4]
    # Our client's ids: (run id, step, metric names) for the points, which makes each step stored
    # once; (writer, sequence) for the config-only row of the end-of-training summary.
    ids = log_ids(server, project, printed["run_id"])
    ours = rf"{printed['run_id']}-s\d+-[0-9a-f]{{8}}|[0-9a-f]{{16}}-\d{{10}}"
    assert len(ids) >= 4 and all(re.fullmatch(ours, i) for i in ids), ids


# --- transformers ----------------------------------------------------------------------------------


def test_one_line_makes_report_to_trackio_ours_and_no_trackio_is_imported(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    printed = run_script(sys.executable, tmp_path, shared_server, project, "--install")
    assert_run_is_ours(shared_server, project, printed)


def test_after_install_a_wrong_token_stops_report_to_trackio_before_the_first_step(
    shared_server: TrackioServer, project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install()
    monkeypatch.setenv("TRACKIO_SERVER_URL", shared_server.url)
    monkeypatch.setenv("TRACKIO_WRITE_TOKEN", "WRONG")
    monkeypatch.setenv("TRACKIO_PROJECT", project)
    trainer = trainer_reporting_to("trackio", tmp_path)
    with pytest.raises(TrackioAuthError):
        trainer.train()
    assert trainer.state.global_step == 0
    assert shared_server.runs(project) == []


@pytest.mark.usefixtures("on_server")
def test_after_install_report_to_all_includes_ours_when_a_target_is_set(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    install()
    trainer = trainer_reporting_to("all", tmp_path)
    assert "trackio" in trainer.args.report_to
    (callback,) = trackio_callbacks(trainer)
    assert type(callback) is ReportToTrackioCallback
    trainer.train()

    assert shared_server.wait_for_steps(project, "adopted", "train/loss", 2) == [2, 4]
    # transformers' own callback would have written a local SQLite copy under TRACKIO_DIR.
    local = Path(os.environ["TRACKIO_DIR"])
    assert not local.exists() or not list(local.glob("*.db"))


@pytest.mark.usefixtures("on_server")
def test_report_to_trackio_integrations_needs_no_install_and_shadows_nothing(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    assert not installed()
    assert INTEGRATION_TO_CALLBACK["trackio"] is BUILTIN_CALLBACK
    trainer = trainer_reporting_to("trackio-integrations", tmp_path)
    (callback,) = trackio_callbacks(trainer)
    assert type(callback) is ReportToTrackioCallback
    trainer.train()
    assert shared_server.wait_for_steps(project, "adopted", "train/loss", 2) == [2, 4]


def test_the_name_is_registered_when_trackio_integrations_is_imported_first() -> None:
    code = (
        "import sys, trackio_integrations\n"
        "assert 'transformers' not in sys.modules and 'accelerate' not in sys.modules\n"
        "from transformers.integrations import INTEGRATION_TO_CALLBACK as T\n"
        "from accelerate.tracking import LOGGER_TYPE_TO_CLASS as A\n"
        "print(T['trackio-integrations'].__name__, T['trackio'].__module__,"
        " A['trackio-integrations'].__name__, A['trackio'].__module__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == [
        "ReportToTrackioCallback",
        "transformers.integrations.integration_utils",  # "trackio" is still transformers' own
        "InitTrackersTracker",
        "accelerate.tracking",
    ]


IMPORT_ORDERS = {
    "our tracker first, then accelerate": (
        "from trackio_integrations import TrackioTracker, install\ninstall()\nimport accelerate\n"
    ),
    "our tracker first, no install": "from trackio_integrations import TrackioTracker\n",
    "our tracker module itself first": (
        "import trackio_integrations.integrations.accelerate\n"
        "import trackio_integrations\ntrackio_integrations.install()\n"
    ),
    "accelerate first": (
        "import accelerate\nfrom trackio_integrations import TrackioTracker, install\ninstall()\n"
    ),
    "the auto module, then our tracker": (
        "import trackio_integrations.auto\nfrom trackio_integrations import TrackioTracker\n"
    ),
}


@pytest.mark.parametrize("order", IMPORT_ORDERS)
def test_accelerate_names_work_in_any_import_order_with_no_traceback(order: str) -> None:
    code = IMPORT_ORDERS[order] + (
        "from accelerate import Accelerator\n"
        "from accelerate.tracking import LOGGER_TYPE_TO_CLASS as A\n"
        "Accelerator(cpu=True, log_with='trackio-integrations')\n"
        "print(A['trackio-integrations'].__name__, A['trackio'].__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", code],
        env={**os.environ, "PYTHONPATH": str(REPO), "TRACKIO_INTEGRATIONS": "0"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for wrong in ("Traceback", "could not adapt", "already registered"):
        assert wrong not in done.stderr, done.stderr[-3000:]
    ours = "TrackioTracker" if order == "our tracker first, no install" else "LogWithTrackioTracker"
    assert done.stdout.split() == ["InitTrackersTracker", ours]


@pytest.mark.usefixtures("on_server")
def test_a_callback_given_in_callbacks_wins_over_the_one_report_to_adds(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    install()
    given = trackio_integrations.TrackioCallback(name="given")
    trainer = trainer_reporting_to("trackio", tmp_path, callbacks=[given])
    assert trackio_callbacks(trainer) == [given]
    trainer.train()
    shared_server.wait_for_steps(project, "given", "train/loss", 2)
    assert [r["name"] for r in shared_server.runs(project)] == ["given"]


def test_install_is_idempotent_reversible_and_says_once_what_it_took_over(
    caplog: pytest.LogCaptureFixture,
) -> None:
    available_before = list(accelerate_tracking.get_available_trackers())
    with caplog.at_level(logging.WARNING, logger="trackio_integrations"), warnings.catch_warnings():
        warnings.simplefilter("error")  # nor does it warn (accelerate's "shadowing a built-in")
        install()
        install()
    said = [r.getMessage() for r in caplog.records]
    assert len([m for m in said if "report_to='trackio'" in m]) == 1
    # accelerate's is said when log_with="trackio" first builds the tracker (a Trainer's job
    # imports accelerate without using it)
    assert [m for m in said if "log_with='trackio'" in m] == []
    assert INTEGRATION_TO_CALLBACK["trackio"] is ReportToTrackioCallback
    assert issubclass(accelerate_tracking.LOGGER_TYPE_TO_CLASS["trackio"], TrackioTracker)

    uninstall()
    uninstall()
    assert INTEGRATION_TO_CALLBACK["trackio"] is BUILTIN_CALLBACK
    assert accelerate_tracking.LOGGER_TYPE_TO_CLASS["trackio"] is BUILTIN_TRACKER
    assert accelerate_tracking.get_available_trackers() == available_before
    assert INTEGRATION_TO_CALLBACK["trackio-integrations"] is ReportToTrackioCallback  # stays


# --- accelerate ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("log_with", "after_install", "accelerate_before_1_15"),
    [("trackio", True, False), ("trackio-integrations", False, False), ("trackio", True, True)],
)
def test_accelerate_log_with_builds_our_tracker_from_init_trackers_arguments(
    shared_server: TrackioServer,
    project: str,
    monkeypatch: pytest.MonkeyPatch,
    log_with: str,
    after_install: bool,
    accelerate_before_1_15: bool,
) -> None:
    if accelerate_before_1_15:  # no register_tracker_class: install() writes the table itself
        monkeypatch.delattr(accelerate_tracking, "register_tracker_class")
    if after_install:
        install()
    monkeypatch.setenv("TRACKIO_SERVER_URL", shared_server.url)
    monkeypatch.setenv("TRACKIO_WRITE_TOKEN", TOKEN)

    def no_frame_reading() -> None:
        raise AssertionError("the arguments come from accelerate, not from the caller's frame")

    monkeypatch.setattr(our_accelerate, "_init_trackers_arguments", no_frame_reading)
    accelerator = Accelerator(cpu=True, log_with=log_with)
    options = {"name": "from-init-kwargs", "group": "sweep-1", "embed": False}
    with pytest.warns(UserWarning, match="embed"):
        accelerator.init_trackers(project, config=MODEL, init_kwargs={log_with: options})
    tracker = accelerator.get_tracker(log_with)
    assert isinstance(tracker, TrackioTracker)
    losses = train(accelerator, steps=5)
    accelerator.end_training()

    assert [r["name"] for r in shared_server.runs(project)] == ["from-init-kwargs"]
    stored = shared_server.values(project, "from-init-kwargs", "train/loss")
    assert [v["value"] for v in stored] == pytest.approx(losses)
    run_id = accelerator.get_tracker(log_with, unwrap=True).run_id
    assert own(shared_server.configs(project)[run_id]) == {**MODEL, "_Group": "sweep-1"}


# --- the environment switch ------------------------------------------------------------------------


def venv_with_our_pth(tmp_path: Path) -> Path:
    """A fresh virtual environment that sees this one's packages and has our ``.pth`` installed
    as the wheel installs it (pyproject's force-include): start-up runs it as it would."""
    pyproject = (REPO / "pyproject.toml").read_text()
    section = pyproject.split("[tool.hatch.build.targets.wheel.force-include]")[1]
    assert (
        section.split("\n[")[0]
        .strip()
        .endswith('"trackio_integrations.pth" = "trackio_integrations.pth"')
    )
    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    (site,) = venv.glob("lib/python*/site-packages")
    (site / "0-this-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (site / "trackio_integrations.pth").write_bytes(
        (REPO / "trackio_integrations.pth").read_bytes()
    )
    return venv / "bin" / "python"


def test_the_environment_switch_needs_no_import_and_costs_nothing_when_unset(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    python = venv_with_our_pth(tmp_path)
    at_start = (
        "import sys; adopt = sys.modules.get('trackio_integrations.adopt.install');"
        "print('trackio_integrations' in sys.modules, bool(adopt and adopt.installed()))"
    )
    for value, loaded in (("", "False False"), ("0", "False False"), ("1", "True True")):
        env = {**os.environ, "PYTHONPATH": str(REPO), "TRACKIO_INTEGRATIONS": value}
        done = subprocess.run([python, "-c", at_start], env=env, capture_output=True, text=True)
        assert (done.returncode, done.stdout.strip(), done.stderr) == (0, loaded, "")

    # Set, but the package cannot be imported there: start-up goes on, silently.
    env = {**os.environ, "TRACKIO_INTEGRATIONS": "1", "PYTHONPATH": ""}
    done = subprocess.run([python, "-c", at_start], env=env, capture_output=True, text=True)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "False False", "")

    printed = run_script(str(python), tmp_path, shared_server, project, TRACKIO_INTEGRATIONS="1")
    assert_run_is_ours(shared_server, project, printed)


# --- Lightning -------------------------------------------------------------------------------------


def fit(logger: TrackioLogger, root: Path, regressor: Regressor | None = None) -> None:
    trainer = L.Trainer(max_epochs=1, logger=logger, default_root_dir=root, **QUIET)
    trainer.fit(regressor or Regressor(), *loaders())


def test_a_script_written_for_lightnings_trackio_logger_runs_on_ours(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    url = shared_server.write_url  # trackio.init's server_url, with its write token
    # Lightning's signature: project, name, resume="allow", **trackio.init options.
    with pytest.warns(UserWarning, match="embed"):
        first = TrackioLogger(project=project, name="lit", server_url=url, group="g", embed=False)
    fit(first, tmp_path)
    assert shared_server.configs(project)[first.run_id]["_Group"] == "g"  # as trackio keeps it
    again = TrackioLogger(project, "lit", "allow", server_url=url)
    fit(again, tmp_path)
    assert again.run_id == first.run_id  # "allow": the run of that name continues
    assert [r["name"] for r in shared_server.runs(project)] == ["lit"]

    fresh = TrackioLogger(project, "lit", resume="never", server_url=url)
    fit(fresh, tmp_path)
    assert fresh.run_id != first.run_id
    assert sorted(r["id"] for r in shared_server.runs(project)) == sorted(
        [first.run_id, fresh.run_id]
    )

    missing = TrackioLogger(project, "nowhere", resume="must", server_url=url)
    regressor = Regressor()
    with pytest.raises(TrackioConfigError, match="does not exist"):
        fit(missing, tmp_path, regressor)
    assert regressor.losses == []  # stopped before the first step
    with pytest.raises(TrackioConfigError, match="name"):
        TrackioLogger(project, resume="must", server_url=url)
    with pytest.raises(TrackioConfigError, match="resume"):
        TrackioLogger(project, "lit", resume="sometimes")  # type: ignore[arg-type]


def test_resume_finds_a_run_in_local_storage_before_and_after_the_server_imports_it(
    server: TrackioServer, project: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server.stop()
    monkeypatch.setenv("TRACKIO_DIR", str(server.data_dir))  # the embedded default
    first = TrackioLogger(project, "local")
    fit(first, tmp_path)
    assert list((server.data_dir / "inbox").glob("*/*.jsonl"))  # not imported yet
    from_inbox = TrackioLogger(project, "local", "must")
    fit(from_inbox, tmp_path)
    assert from_inbox.run_id == first.run_id

    server.start()  # imports the inbox into its SQLite file
    wait_until(lambda: not list((server.data_dir / "inbox").glob("*/*.jsonl")), timeout=60)
    from_database = TrackioLogger(project, "local", "must")
    fit(from_database, tmp_path)
    assert from_database.run_id == first.run_id
    wait_until(lambda: not list((server.data_dir / "inbox").glob("*/*.jsonl")), timeout=60)
    assert [r["id"] for r in server.runs(project)] == [first.run_id]


ANNOUNCE = """
import logging, sys
logging.basicConfig(level=logging.WARNING, format="%(message)s")
import trackio_integrations
from transformers import Trainer  # imports accelerate, as every Trainer job does
trackio_integrations.install()
print("-- a Trainer job's messages end here --", file=sys.stderr, flush=True)
from accelerate import Accelerator
accelerator = Accelerator(log_with="trackio", cpu=True)
accelerator.init_trackers("announce")
accelerator.end_training()
"""


@pytest.mark.parametrize("rank", ["0", "1"])
def test_install_speaks_once_per_job_and_only_of_what_the_job_uses(rank: str) -> None:
    """Under torchrun every rank runs install(): rank zero alone says what was taken over, and a
    Trainer's job hears nothing of accelerate's log_with until it uses it."""
    done = subprocess.run(
        [sys.executable, "-c", ANNOUNCE],
        env={**os.environ, "RANK": rank, "TRACKIO_PROVENANCE": "0"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    trainer, log_with = (
        [line for line in part.splitlines() if "uninstall() undoes" in line]
        for part in done.stderr.split("-- a Trainer job's messages end here --")
    )
    if rank != "0":
        assert trainer == log_with == []
        return
    assert len(trainer) == 1 and "report_to='trackio'" in trainer[0]
    assert len(log_with) == 1 and "log_with='trackio'" in log_with[0]
