"""A run you can reproduce: its commit, diff, packages and command are recorded by default, with
no secret, and ``trackio-integrations reproduce`` rebuilds its working tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import REPO, TOKEN, TrackioServer, cli_process, own, run_python, wait_until
from trackio_integrations import TrackioClient
from trackio_integrations.provenance.redact import REDACTED, clean_url, redact_command

SCRIPT = REPO / "tests" / "scripts" / "provenance_train.py"
API_KEY = "sk-live-4f9a1c77e0b2d3aa"  # on the command line as --api-key=...
CLI_TOKEN = "hf_cmdline_8d1e5b0c9a7f"  # on the command line as --token VALUE
ENV_SECRET = "envsecret-77c1d9e2b4"  # in the environment only, and as a plain argument


@pytest.fixture(autouse=True)
def provenance_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACKIO_PROVENANCE", raising=False)  # the default: on


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout


def new_repo(tmp_path: Path) -> tuple[Path, Path]:
    """A checkout with one commit pushed to a bare ``origin`` (a folder), as a clone would be."""
    origin, repo = tmp_path / "origin.git", tmp_path / "work"
    git(tmp_path, "init", "--quiet", "--bare", str(origin))
    git(tmp_path, "init", "--quiet", "-b", "main", str(repo))
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "T")
    shutil.copy(SCRIPT, repo / "train.py")
    (repo / "conf").mkdir()
    (repo / "conf" / "model.yaml").write_text("layers: 2\nwidth: 8\n")
    (repo / "weights.bin").write_bytes(bytes(range(256)) * 4)
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "first")
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "--quiet", "origin", "main")
    return repo, origin


def tree(root: Path, skip: set[str] = frozenset()) -> dict[str, bytes]:  # type: ignore[assignment]
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
        if p.relative_to(root).as_posix() not in skip
    }


def project_files(server: TrackioServer, project: str) -> dict[str, bytes]:
    """Every project file, by its name in the Files tab, read back through ``GET /file``."""
    out = {}
    for entry in server.api("get_project_files", project) or []:
        response = httpx.get(f"{server.url}/file", params={"path": entry["path"]}, timeout=30)
        response.raise_for_status()
        out[entry["name"]] = response.content
    return out


def provenance_file(files: dict[str, bytes], name: str) -> bytes:
    (content,) = [data for shown, data in files.items() if shown.startswith(name + "/")]
    return content


def test_redaction_of_a_command_line() -> None:
    argv = ["train.py", "--api-key=abc123def", "--token", "tok123456", "--hf_token=hf_zzzzzz"]
    argv += ["--max-new-tokens", "64", "--tokenizer", "gpt2", "db.password=hunter22"]
    argv += ["--push-url", "https://me:pw123456@hub.example/x?write_token=wt999999&a=1"]
    argv += ["--seed", "3", "--note", "x-envsecret-77c1d9e2b4-y"]
    assert redact_command(argv, {ENV_SECRET}) == [
        "train.py",
        "--api-key=***",
        "--token",
        "***",
        "--hf_token=***",
        "--max-new-tokens",
        "64",
        "--tokenizer",
        "gpt2",
        "db.password=***",
        "--push-url",
        "https://hub.example/x?write_token=***&a=1",
        "--seed",
        "3",
        "--note",
        f"x-{REDACTED}-y",
    ]
    assert clean_url("https://user:ghp_abc@github.com/o/r.git") == "https://github.com/o/r.git"


@pytest.mark.timeout(300)
def test_a_trainer_run_from_a_dirty_checkout_is_recorded_and_rebuilt_byte_for_byte(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    repo, origin = new_repo(tmp_path)
    # Uncommitted: an edited script, an edited binary file, a new file staged, one untracked.
    with open(repo / "train.py", "a") as script:
        script.write("\n# tried a smaller learning rate\n")
    (repo / "weights.bin").write_bytes(bytes(range(255, -1, -1)) * 4)
    (repo / "conf" / "extra.yaml").write_text("dropout: 0.1\n")
    git(repo, "add", "conf/extra.yaml")
    (repo / "scratch.py").write_text("print('not committed, not added')\n")
    head = git(repo, "rev-parse", "HEAD").strip()
    expected_diff = subprocess.run(
        ["git", "diff", "--binary", "--no-color", "HEAD", "--"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout

    out = tmp_path / "out"
    out.mkdir()
    env = shared_server.job_env(project, MY_SERVICE_TOKEN=ENV_SECRET, OMP_NUM_THREADS="1")
    command = [sys.executable, "train.py", "--output-dir", str(out), f"--api-key={API_KEY}"]
    command += ["--token", CLI_TOKEN, "--lr", "0.0005"]
    done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    run = json.loads((out / "run.json").read_text())

    config = shared_server.wait_for_config(
        project, run["run_id"], **{"provenance/git/commit": head}
    )
    assert config["provenance/git/branch"] == "main"
    assert config["provenance/git/remote"] == str(origin)
    assert config["provenance/git/dirty"] is True
    assert config["provenance/git/untracked"] == 1
    assert (
        config["provenance/versions/torch"].split("+")[0]
        == __import__("torch").__version__.split("+")[0]
    )
    assert config["provenance/versions/transformers"] == __import__("transformers").__version__
    assert "provenance/versions/trackio-integrations" in config
    assert config["provenance/python"] == ".".join(map(str, sys.version_info[:3]))
    assert config["provenance/command"].endswith(
        f"train.py --output-dir {out} '--api-key=***' --token '***' --lr 0.0005"
    )
    assert config["learning_rate"] == 0.0005  # the Trainer's own config is still there

    wanted = [config[f"provenance/files/{k}"] for k in ("diff", "untracked", "requirements")]
    files = wait_until(
        lambda: (
            (f := project_files(shared_server, project))
            and all(any(s.startswith(w + "/") for s in f) for w in wanted)
            and f
        ),
        60.0,
    )
    assert provenance_file(files, config["provenance/files/diff"]) == expected_diff
    assert provenance_file(files, config["provenance/files/untracked"]) == b"scratch.py\n"
    packages = provenance_file(files, config["provenance/files/requirements"]).decode()
    assert f"transformers=={__import__('transformers').__version__}\n" in packages
    assert "httpx==" in packages

    into = tmp_path / "rebuilt"
    rebuilt = cli_process(
        ["reproduce", project, run["run_name"], "--into", str(into)],
        {"TRACKIO_SERVER_URL": shared_server.url, "TRACKIO_WRITE_TOKEN": TOKEN},
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert tree(into) == tree(repo, skip={"scratch.py"})  # every tracked file, byte for byte
    assert f"git checkout --detach {head}" in rebuilt.stdout
    assert "git apply --binary .git/trackio/diff.patch" in rebuilt.stdout
    assert "scratch.py" in rebuilt.stdout  # named as not recorded
    assert (into / ".git" / "trackio" / "requirements.txt").read_text() == packages
    assert "'--api-key=***' --token '***' --lr 0.0005" in rebuilt.stdout

    # No secret anywhere: config, files, the run's output, the command's output.
    recorded = json.dumps(shared_server.configs(project)) + "".join(
        data.decode(errors="replace") for data in files.values()
    )
    recorded += done.stdout + done.stderr + rebuilt.stdout + rebuilt.stderr
    for secret in (API_KEY, CLI_TOKEN, ENV_SECRET, TOKEN):
        assert secret not in recorded
    assert "MY_SERVICE_TOKEN" not in recorded


def test_a_run_outside_any_git_checkout_records_that(
    shared_server: TrackioServer, project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # no checkout above either
    with TrackioClient(project, server_url=shared_server.write_url, system_metrics=False) as run:
        run.log({"loss": 1.0}, step=0)
    config = shared_server.wait_for_config(
        project, run.run_id, **{"provenance/git/checkout": False}
    )
    assert "provenance/git/commit" not in config
    assert config["provenance/files/requirements"].startswith("provenance/")
    assert "provenance/files/diff" not in config

    shown = cli_process(
        ["reproduce", project, run.run_id], {"TRACKIO_SERVER_URL": shared_server.url}
    )
    assert shown.returncode == 0, shown.stderr
    assert "not started in a git checkout" in shown.stdout
    assert "python -m pip install -r requirements.txt" in shown.stdout


@pytest.mark.timeout(180)
def test_reproduce_from_the_embedded_local_storage(
    project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _ = new_repo(tmp_path)
    with open(repo / "conf" / "model.yaml", "a") as conf:
        conf.write("heads: 4\n")
    monkeypatch.chdir(repo)
    with TrackioClient(project, system_metrics=False) as run:  # no target: local storage
        run.log({"loss": 1.0}, step=0)
    trackio_dir = Path(os.environ["TRACKIO_DIR"])
    viewer = TrackioServer(trackio_dir)  # `trackio show` imports the run from the inbox
    viewer.start()
    try:
        viewer.wait_for_config(project, run.run_id, **{"provenance/git/dirty": True})
    finally:
        viewer.stop()

    into = tmp_path / "rebuilt"
    rebuilt = cli_process(["reproduce", project, run.name, "--into", str(into)])
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert tree(into) == tree(repo)
    assert (into / "conf" / "model.yaml").read_text().endswith("heads: 4\n")


@pytest.mark.parametrize("off", ["argument", "environment"])
def test_provenance_switched_off_records_nothing(
    shared_server: TrackioServer,
    project: str,
    monkeypatch: pytest.MonkeyPatch,
    off: str,
) -> None:
    options: dict[str, Any] = {"provenance": False} if off == "argument" else {}
    if off == "environment":
        monkeypatch.setenv("TRACKIO_PROVENANCE", "0")
    with TrackioClient(
        project,
        server_url=shared_server.write_url,
        system_metrics=False,
        config={"a": 1},
        **options,
    ) as run:
        run.log({"loss": 1.0}, step=0)
    assert own(shared_server.wait_for_config(project, run.run_id, a=1)) == {"a": 1, "_Group": None}
    assert shared_server.api("get_project_files", project) in (None, [])
    shown = cli_process(["reproduce", project, run.name], {"TRACKIO_SERVER_URL": shared_server.url})
    assert shown.returncode == 2 and "has no provenance" in shown.stderr
    assert os.environ.get("TRACKIO_PROVENANCE") == ("0" if off == "environment" else None)


@pytest.mark.parametrize("setting", [None, False])
def test_each_integration_passes_the_setting_to_its_client(
    shared_server: TrackioServer, project: str, setting: bool | None
) -> None:
    """Default on in TrackioTracker and TrackioLogger as in TrackioCallback (the Trainer test
    above); ``provenance=False`` reaches the client they open."""
    from accelerate.state import AcceleratorState, GradientState

    from trackio_integrations import TrackioLogger, TrackioTracker

    tracker = TrackioTracker(
        project, server_url=shared_server.write_url, system_metrics=False, provenance=setting
    )
    try:
        tracker.start()
        logger = TrackioLogger(
            project, server_url=shared_server.write_url, system_metrics=False, provenance=setting
        )
        clients = [tracker.tracker, logger.experiment]
        for client in clients:
            assert client is not None
            client.update_config({"marker": 1})
            client.log({"loss": 1.0}, step=0)
            client.finish()
        for client in clients:
            assert client is not None
            config = shared_server.wait_for_config(project, client.run_id, marker=1)
            recorded = any(key.startswith("provenance/") for key in config)
            assert recorded is (setting is None)
    finally:
        AcceleratorState._reset_state(True)
        GradientState._reset_state()


def test_gpu_and_slurm_facts_where_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No GPU here: a stand-in ``nvidia-smi`` answers the query as the real one does (its CSV)."""
    from trackio_integrations.provenance.facts import machine

    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text("#!/bin/sh\necho 'NVIDIA H200, 570.86.15'\necho 'NVIDIA H200, 570.86.15'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{smi.parent}{os.pathsep}{os.environ['PATH']}")
    facts = machine({"SLURM_JOB_ID": "4242", "SECRET_TOKEN": "never-recorded-1"})
    assert facts["provenance/gpu/model"] == "NVIDIA H200"
    assert facts["provenance/gpu/driver"] == "570.86.15"
    assert facts["provenance/gpu/count"] == 2
    assert facts["provenance/slurm_job_id"] == "4242"
    assert "never-recorded-1" not in json.dumps(facts)


def test_a_spool_folder_that_cannot_be_written_is_one_warning_and_no_traceback(
    tmp_path: Path,
) -> None:
    """The spool's warning says what to do; provenance keeps its config and says nothing more."""
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    result = run_python(
        "from trackio_integrations import TrackioClient\n"
        "with TrackioClient('unwritable-spool') as run:\n"
        "    run.log({'loss': 1.0}, step=0)\n",
        env={"TRACKIO_SPOOL_DIR": str(not_a_folder), "TRACKIO_DIR": str(tmp_path / "trackio")},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("Cannot write the trackio-integrations spool") == 1
    assert "Traceback" not in result.stderr and "provenance" not in result.stderr, result.stderr


def test_a_short_local_run_saves_its_provenance_without_starting_trackio(
    project: str, tmp_path: Path
) -> None:
    # A run that ends right after it starts waits for its provenance in finish(): that must not
    # start an interpreter importing trackio (0.4 s) nor import httpx (a local run sends nothing),
    # nor go through an uploader: the files are written straight into the project's Files.
    repo, _ = new_repo(tmp_path)
    (repo / "train.py").write_text("print('changed')\n")
    code = (
        "import json, sys\n"
        "import trackio_integrations.artifacts.local as local\n"
        "from trackio_integrations import TrackioClient\n"
        "asked = []\n"
        "helper = local.LocalStore._helper\n"
        "def spy(self, op, **request):\n"
        "    asked.append(op)\n"
        "    return helper(self, op, **request)\n"
        "local.LocalStore._helper = spy\n"
        "uploads = []\n"
        "start_uploads = TrackioClient._uploads\n"
        "TrackioClient._uploads = lambda self: uploads.append(1) or start_uploads(self)\n"
        f"run = TrackioClient({project!r}, system_metrics=False)\n"
        "run.log({'loss': 1.0}, step=0)\n"
        "ok = run.finish()\n"
        "print(json.dumps({'ok': ok, 'name': run.name, 'helper': asked,"
        " 'httpx': 'httpx' in sys.modules, 'uploads': len(uploads)}))\n"
    )
    spool = tmp_path / "spool"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TRACKIO_SPOOL_DIR": str(spool)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["ok"], result["helper"], result["httpx"]) == (True, [], False)
    assert result["uploads"] == 0
    assert [p for p in spool.rglob("*") if p.is_file()] == []  # nothing left behind
    files = Path(os.environ["TRACKIO_DIR"]) / "media" / project / "files" / "provenance"
    saved = files / result["name"]
    assert {p.name for p in saved.iterdir()} == {"diff.patch", "requirements.txt"}
    assert b"changed" in (saved / "diff.patch").read_bytes()


def test_the_platform_is_named_as_python_names_it_without_starting_a_process() -> None:
    import platform

    from trackio_integrations.provenance.facts import platform_name

    assert platform_name() == platform.platform()


def test_a_checkout_without_origin_records_its_first_remote(tmp_path: Path) -> None:
    from trackio_integrations.provenance.git import read_checkout

    repo, _ = new_repo(tmp_path)
    git(repo, "remote", "rename", "origin", "upstream")
    git(repo, "remote", "add", "fork", "https://user:pw@example.com/fork.git")
    assert read_checkout(repo).remote == "https://example.com/fork.git"  # as `git remote` sorts
    git(repo, "remote", "add", "origin", "https://example.com/main.git")
    assert read_checkout(repo).remote == "https://example.com/main.git"
