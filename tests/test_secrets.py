"""No secret leaves the machine: every secret the package holds is masked in provenance and in
every message, and the diff is scanned before it is uploaded.

Distinctive fake secrets, given as a careless user would (flags, a token file with its newline,
``python -c`` code, LightningCLI flags, an uncommitted line), are then looked for in everything
the run leaves: its output, its spool, its checkpoints, the server's data folder (SQLite files
included) and what ``reproduce`` prints and rebuilds.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from tests.harness import REPO, TrackioServer, cli_process, wait_until
from trackio_integrations import TrackioClient, TrackioConfigError
from trackio_integrations.core.target import resolve_target
from trackio_integrations.provenance.diff import mask_diff, restore_old_side
from trackio_integrations.provenance.redact import REDACTED, environment_secrets, redact_command
from trackio_integrations.redaction import redact, remember

WRITE = "wtok-i34-5d7c1e9a"  # the server's write token, read from a file with its newline
ACCESS = "gwhdr-i34-8b2f6a1c"  # a gateway's header value, given as --access
GW_PASS = "gw/p@ss-i34-3e9d"  # a basic-auth password with / and @ in it, given as --gw-pass
HOOK_KEY = "whk-i34-6a1f0c2e9d7b"  # the webhook URL's key, given as --notify URL
HUB = "hf_i34selfhosted7c2d9e1f"  # an HF token given for a self-hosted server: never sent there
DIFF_KEY = "sk-live-i34-0a9b8c7d6e5f4a3b"  # an uncommitted API_KEY = "..." line
COMMITTED = "committed-pw-i34-77aa"  # a committed password on a context line of the diff
SECRETS = (WRITE, ACCESS, GW_PASS, HOOK_KEY, HUB, DIFF_KEY, COMMITTED)
HOOK = f"http://127.0.0.1:9/services/T0I34/B0I34/{HOOK_KEY}"


def leaks(text: str | bytes) -> list[str]:
    """The secrets found in ``text``, in any form: as written, percent-encoded, or their
    distinctive tail alone (a secret cut in two is a leak too)."""
    data = text if isinstance(text, bytes) else text.encode(errors="surrogateescape")
    found = []
    for secret in SECRETS:
        forms = {secret, quote(secret, safe=""), secret[-8:]}
        if any(form.encode() in data for form in forms):
            found.append(secret)
    return found


def folder_leaks(root: Path) -> dict[str, list[str]]:
    """Every file under ``root`` (SQLite databases, their WAL, checkpoints) that holds one."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and (found := leaks(path.read_bytes())):
            out[str(path.relative_to(root))] = found
    return out


# --- the command-line rule, from a table of cases ----------------------------------------------

# Each case is a command line with the secret V in it, as the issue found them and as they passed.
CASES = [
    lambda v: ["--hftoken", v],
    lambda v: ["--pass", v],
    lambda v: [f"--pw={v}"],
    lambda v: ["-p", v],
    lambda v: ["--password", f"-{v}"],
    lambda v: ["--bearer", v],
    lambda v: ["--authorization", f"Bearer {v}"],
    lambda v: [f"wandb_api_key:{v}"],
    lambda v: [f'--json={{"token": "{v}"}}'],
    lambda v: [f"postgres://u:p@ss-{v}@db"],
    lambda v: ["--db", f"postgres://u:{v}@db:5432/runs"],
    lambda v: ["--token", v],
    lambda v: [f"--token={v}"],
    lambda v: [f"--api-key={v}"],
    lambda v: [f"https://user:{v}@host/x"],
    lambda v: [f"https://host/x?access_token={v}&page=2"],
    lambda v: ["--client-secret", v],
    lambda v: ["--hub-creds", v],
    lambda v: ["-c", f"from x import C; C(write_token={v!r}, project='p')"],
    lambda v: [f"db.password={v}"],
]
# What is no secret and must come through unchanged: paths above all.
KEPT = [
    ["--max-new-tokens", "64", "--tokenizer", "gpt2", "--lr", "0.0005", "-m", "pkg"],
    [str(REPO / "tests" / "scripts" / "secret_job.py"), "--output-dir", str(REPO)],
    ["--key-file", str(REPO / "pyproject.toml"), "--token", str(REPO / "README.md")],
    ["--token-path", "/not/yet/there/token.txt", "model.name=gpt2", "--seed=3"],
    ["--url", "https://host/a@b", "git+https://github.com/o/r@v1.0"],
    [f"--config={REPO}/conf/token:v1.yaml"],
]
_VALUE = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~+/=@%:!*", max_size=30
)


@given(
    st.builds(
        lambda first, rest: first + rest,
        st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
        _VALUE.filter(lambda s: len(s) >= 7),
    )
)
@example("Sx9-zz81kq")
@example("ab@cd/ef12")
@settings(deadline=None)  # an example takes ~10 ms; a loaded CI machine must not fail it on time
def test_every_secret_flag_shape_is_masked_and_nothing_else(value: str) -> None:
    assume(not os.path.exists(value))
    for case in CASES:
        argv = ["train.py", *case(value), "--lr", "0.1"]
        recorded = shlex.join(redact_command(argv))
        assert value not in recorded, (argv, recorded)
        assert recorded.startswith("train.py ") and recorded.endswith(" --lr 0.1"), recorded
        assert recorded != shlex.join(argv)
    for argv in KEPT:
        assert redact_command(argv) == argv


def test_a_path_in_the_environment_is_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """PWD has "pwd" in its name: the working directory once became *** everywhere."""
    secrets = environment_secrets({"PWD": str(REPO), "OLDPWD": "/tmp", "SSH_AUTH_SOCK": "/tmp"})
    assert secrets == set()
    assert environment_secrets({"DB_PWD": "hunter2-i34"}) == {"hunter2-i34"}
    script = str(REPO / "tests" / "scripts" / "secret_job.py")
    assert redact_command([script], {str(REPO)}) == [script]  # a known value that is a path


# --- the one redaction: every form, every URL, every token where it is read --------------------


def test_a_secret_is_masked_in_each_form_a_message_can_show() -> None:
    remember("p@ss/wörd-i34\n")
    for shown in (
        repr(b"p@ss/w\xc3\xb6rd-i34\n"),  # httpx's "Illegal header value b'...\n'"
        repr("p@ss/wörd-i34\n"),
        quote("p@ss/wörd-i34", safe=""),
        json.dumps("p@ss/wörd-i34\n"),
        quote("p@ss/wörd-i34"),
    ):
        assert "rd-i34" not in redact(f"failed ({shown})"), shown


def test_a_token_or_header_read_from_a_file_loses_its_newline(server: TrackioServer) -> None:
    target = resolve_target(
        server_url=server.url, write_token=server.token + "\n", headers={"X-Access": ACCESS + "\n"}
    )
    assert target.write_token == server.token
    assert target.headers()["X-Access"] == ACCESS
    with TrackioClient("p-newline", server_url=server.url, write_token=server.token + "\n") as run:
        run.log({"loss": 1.0}, step=0)
    assert server.wait_for_steps("p-newline", run.name, "loss", 1) == [0]


def test_a_password_with_a_slash_is_never_printed(server: TrackioServer) -> None:
    url = f"http://gwuser:{GW_PASS}@127.0.0.1:{server.port}"
    with pytest.raises(TrackioConfigError) as raised:
        resolve_target(server_url=url)
    assert not leaks(str(raised.value)) and "p@ss" not in str(raised.value)
    assert "percent-encode" in str(raised.value)
    doctor = cli_process(["doctor"], {"TRACKIO_SERVER_URL": url})
    assert not leaks(doctor.stdout + doctor.stderr), doctor.stdout + doctor.stderr
    assert "gw/p" not in doctor.stdout + doctor.stderr


def test_the_hf_token_goes_to_https_hugging_face_hosts_only_and_is_masked_everywhere() -> None:
    assert (
        "Authorization"
        not in resolve_target(server_url="http://x.hf.space", hf_token=HUB).headers()
    )
    assert (
        resolve_target(server_url="https://x.hf.space", hf_token=HUB).headers()["Authorization"]
        == f"Bearer {HUB}"
    )
    self_hosted = resolve_target(server_url="http://127.0.0.1:9", hf_token=HUB)
    assert self_hosted.hf_token is None
    assert redact(f"--hub {HUB}") == f"--hub {REDACTED}"  # known though never sent


# --- the diff: scanned, masked on its lines only, put back by reproduce -------------------------


def git(cwd: Path, *args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True).stdout


def test_the_diff_is_masked_on_its_lines_only_and_still_applies(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    git(tmp_path, "init", "--quiet", "-b", "main", str(repo))
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "T")
    odd = "keys/api_key=abc123def456.txt"  # a path that looks like an assignment: kept
    (repo / "keys").mkdir()
    (repo / odd).write_text("a\n")
    (repo / "conf.py").write_text(f'DB_PASSWORD = "{COMMITTED}"\nretries = 3\n')
    (repo / "blob.bin").write_bytes(bytes(range(256)))
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "first")
    (repo / "conf.py").write_text(f'DB_PASSWORD = "{COMMITTED}"\nretries = 5\n')
    (repo / odd).write_text(f"a\nAPI_KEY = '{DIFF_KEY}'\ntoken = tokenizer.eos_token\n")
    (repo / "blob.bin").write_bytes(bytes(range(255, -1, -1)) + DIFF_KEY.encode())
    (repo / "new.yaml").write_text(f"password: hunter2-i34x\nsecret: '{ACCESS}'\nlayers: 12\n")
    git(repo, "add", "new.yaml")
    diff = git(repo, "diff", "--binary", "--no-color", "HEAD", "--")

    masked, lines = mask_diff(diff, {WRITE})
    assert lines == 4  # DB_PASSWORD (context), API_KEY, password:, secret:
    assert COMMITTED.encode() not in masked and b"hunter2-i34x" not in masked
    assert not leaks(masked.replace(b"GIT binary patch", b"")[: masked.find(b"GIT binary")])
    old, new = diff.splitlines(), masked.splitlines()
    assert len(old) == len(new)
    for before, after in zip(old, new, strict=True):  # headers, paths, binary data: untouched
        if before != after:
            assert before[:1] in b"+- " and not before.startswith((b"+++", b"---"))
    assert b"token = tokenizer.eos_token" in masked and b"layers: 12" in masked

    expected = {p: (repo / p).read_bytes() for p in ("conf.py", odd, "blob.bin", "new.yaml")}
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(repo), str(clone))
    restored = restore_old_side(masked, lambda name: git(clone, "show", f"HEAD:{name}"))
    (tmp_path / "p.patch").write_bytes(restored)
    git(clone, "apply", "--binary", str(tmp_path / "p.patch"))
    for name, data in expected.items():
        wanted = data.replace(DIFF_KEY.encode(), b"***").replace(ACCESS.encode(), b"***")
        wanted = wanted.replace(b"hunter2-i34x", b"***")
        if name == "blob.bin":
            wanted = data  # a binary patch is not scanned (see docs/security.md)
        assert (clone / name).read_bytes() == wanted, name


# --- a real run, three entry points, everything it leaves grepped ------------------------------


@pytest.mark.timeout(300)
def test_no_secret_leaves_the_machine(tmp_path: Path, project: str) -> None:
    server = TrackioServer(tmp_path / "server-data", token=WRITE)
    server.start()
    try:
        _three_entry_points(server, tmp_path, project)
    finally:
        server.stop()
    assert folder_leaks(tmp_path / "server-data") == {}  # SQLite files and media included


def _three_entry_points(server: TrackioServer, tmp_path: Path, project: str) -> None:
    repo = tmp_path / "work"
    git(tmp_path, "init", "--quiet", "-b", "main", str(repo))
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "T")
    for name in ("secret_job.py", "secret_lightning_cli.py"):
        shutil.copy(REPO / "tests" / "scripts" / name, repo / name)
    (repo / "conf.py").write_text(f'DB_PASSWORD = "{COMMITTED}"\nretries = 3\n')
    git(repo, "add", ".")
    git(repo, "commit", "--quiet", "-m", "first")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(repo), str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    # Uncommitted: a tried-out key and the token in the job script, a changed line in conf.py.
    with open(repo / "secret_job.py", "a") as script:
        script.write(f'\nAPI_KEY = "{DIFF_KEY}"  # the paid endpoint\n# write token: {WRITE}\n')
    (repo / "conf.py").write_text(f'DB_PASSWORD = "{COMMITTED}"\nretries = 5\n')
    original = {p.name: p.read_bytes() for p in repo.iterdir() if p.is_file()}

    token_file = tmp_path / "token.txt"
    token_file.write_text(WRITE + "\n")
    out = tmp_path / "out"
    out.mkdir()
    env = {**server.job_env(project), "TRACKIO_PROVENANCE": "1", "OMP_NUM_THREADS": "1"}
    for name in ("TRACKIO_WRITE_TOKEN", "TRACKIO_SERVER_URL", "TRACKIO_PROVENANCE_DIFF"):
        env.pop(name, None)
    gateway = f"http://gwuser:{quote(GW_PASS, safe='')}@127.0.0.1:{server.port}"
    script = str(repo / "secret_job.py")
    plain = [sys.executable, script, "--server", server.url, "--token-file", str(token_file)]
    plain += ["--access", ACCESS, "--gw-pass", GW_PASS, "--notify", HOOK, "--hub-creds", HUB]
    plain += ["--out", str(out)]
    code = (
        "from trackio_integrations import TrackioClient\n"
        f"with TrackioClient(server_url={gateway!r}, write_token={WRITE + chr(10)!r}, "
        f"headers={{'X-Access': {ACCESS!r}}}, alert_webhook={HOOK!r}, hf_token={HUB!r}, "
        "system_metrics=False) as run:\n"
        "    run.log({'loss': 2.0}, step=0)\n"
    )
    lightning = [sys.executable, "secret_lightning_cli.py", "fit", "--trainer.max_steps=2"]
    lightning += ["--trainer.limit_val_batches=0", "--trainer.enable_progress_bar=false"]
    lightning += [f"--trainer.default_root_dir={out / 'lightning'}"]
    lightning += ["--trainer.logger=trackio_integrations.TrackioLogger"]
    lightning += [f"--trainer.logger.project={project}", "--trainer.logger.system_metrics=false"]
    lightning += [f"--trainer.logger.server_url={gateway}", f"--trainer.logger.write_token={WRITE}"]
    lightning += [f'--trainer.logger.headers={{"X-Access": "{ACCESS}"}}']
    lightning += [f"--trainer.logger.alert_webhook={HOOK}", f"--trainer.logger.hf_token={HUB}"]
    outputs = ""
    for command in (plain, [sys.executable, "-c", code], lightning):
        done = subprocess.run(
            command, cwd=repo, env=env, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, done.stderr[-3000:]
        outputs += done.stdout + done.stderr
        if command is plain:  # one warning, naming the setting that keeps the diff home
            assert done.stderr.count("TRACKIO_PROVENANCE_DIFF=0") == 1, done.stderr

    run_id = json.loads((out / "run.json").read_text())["run_id"]
    configs = wait_until(
        lambda: (
            (c := server.configs(project))
            and len([r for r in c.values() if "provenance/files/diff" in (r or {})]) == 3
            and c
        ),
        90.0,
    )
    for config in configs.values():
        assert config["provenance/git/diff_masked_lines"] == 3  # API_KEY, token, DB_PASSWORD
    command = configs[run_id]["provenance/command"]
    assert shlex.split(command)[1] == script  # the real path, no ***/secret_job.py
    assert f"--token-file {token_file}" in command and f"--out {out}" in command
    assert "--access '***'" in command and "--notify '***'" in command

    # The recorded command reruns (the secrets are the user's to give again).
    rerun = shlex.split(command)
    rerun[0] = sys.executable
    again = subprocess.run(
        rerun, cwd=repo, env={**env, "TRACKIO_MODE": "disabled"}, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr[-2000:]

    # reproduce --into: the tree byte for byte, the masked values as ***.
    into = tmp_path / "rebuilt"
    rebuilt = cli_process(
        ["reproduce", project, run_id, "--into", str(into)],
        {"TRACKIO_SERVER_URL": server.url, "TRACKIO_WRITE_TOKEN": WRITE},
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    for name, data in original.items():
        wanted = data.replace(DIFF_KEY.encode(), b"***").replace(WRITE.encode(), b"***")
        assert (into / name).read_bytes() == wanted, name
    assert "3 line(s) of the diff hold ***" in rebuilt.stdout

    files = server.api("get_project_files", project) or []
    uploaded = b"".join(
        httpx.get(f"{server.url}/file", params={"path": f["path"]}, timeout=30).content
        for f in files
    )
    assert len(files) == 6  # diff.patch and requirements.txt of each run
    assert not leaks(uploaded)
    assert not leaks(json.dumps(configs))
    assert not leaks(outputs), outputs[-3000:]
    assert not leaks(rebuilt.stdout + rebuilt.stderr)
    assert folder_leaks(Path(os.environ["TRACKIO_SPOOL_DIR"])) == {}
    assert folder_leaks(out) == {}  # run.json and Lightning's checkpoint
