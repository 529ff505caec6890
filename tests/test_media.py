"""Images, audio, video, tables, histograms and reports get the guarantees of a scalar point."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import torch
from PIL import Image as PILImage

from tests.harness import (
    REPO,
    TOKEN,
    TrackioServer,
    cli_process,
    free_port,
    run_python,
    wait_until,
)
from trackio_integrations import Audio, Histogram, Image, Markdown, Table, TrackioClient, Video
from trackio_integrations.core.media_files import upload_files
from trackio_integrations.core.records import RunFields
from trackio_integrations.core.spool import Spool
from trackio_integrations.core.target import resolve_target
from trackio_integrations.core.transport import Outcome, Transport
from trackio_integrations.media.encode import audio_bytes, video_bytes


def _pixels(seed: int, shape: tuple[int, ...] = (24, 32, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def fetch(server: TrackioServer, file_path: str) -> bytes:
    """A stored file, through the dashboard's own ``GET /file``."""
    absolute = server.data_dir / "media" / file_path
    response = httpx.get(f"{server.url}/file", params={"path": str(absolute)}, timeout=30)
    assert response.status_code == 200, (file_path, response.status_code)
    return response.content


def decoded(data: bytes) -> list[Any]:
    return np.asarray(PILImage.open(io.BytesIO(data))).tolist()


def media_rows(server: TrackioServer, project: str, run: str, key: str) -> list[dict[str, Any]]:
    return [row for row in server.logs(project, run) if key in row]


def test_every_kind_of_value_is_stored_and_each_file_comes_back_byte_for_byte(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    import pandas as pd

    photo = tmp_path / "photo.png"
    PILImage.fromarray(_pixels(9)).save(photo)
    samples = np.sin(np.linspace(0, 100 * np.pi, 4000))
    frames = _pixels(3, (4, 3, 16, 16))
    table = pd.DataFrame(
        {"text": ["a", "b"], "score": [0.25, 0.75], "image": [Image(_pixels(4)), None]}
    )
    weights = torch.randn(10_000)
    with TrackioClient(project, server_url=shared_server.write_url) as run:
        run.log(
            {
                "train/loss": 0.5,
                "samples": Image(_pixels(1), caption="epoch 3"),
                "tensor": Image(torch.from_numpy(_pixels(2)).permute(2, 0, 1).float() / 255),
                "photo": Image(photo),
                "sound": Audio(samples, caption="tone", sample_rate=8000),
                "clip": Video(frames, fps=4),
                "preds": Table(dataframe=table),
                "weights": Histogram(weights),
                "report": Markdown("# Epoch 3\nBetter."),
                "grid": [Image(_pixels(5)), Image(_pixels(6))],
            },
            step=3,
        )
        run.log({"train/loss": 0.25}, step=4)
        assert run.flush(timeout=60)
    (row,) = media_rows(shared_server, project, run.name, "samples")
    assert row["step"] == 3 and row["train/loss"] == 0.5
    assert row["samples"]["caption"] == "epoch 3"
    assert all(row[k]["_type"] == "trackio.image" for k in ("samples", "tensor", "photo", "grid/0"))
    assert row["samples"]["file_path"].startswith(f"{project}/{run.name}/3/")
    assert decoded(fetch(shared_server, row["samples"]["file_path"])) == _pixels(1).tolist()
    assert decoded(fetch(shared_server, row["tensor"]["file_path"])) == _pixels(2).tolist()
    assert decoded(fetch(shared_server, row["grid/1"]["file_path"])) == _pixels(6).tolist()
    assert fetch(shared_server, row["photo"]["file_path"]) == photo.read_bytes()
    expected_sound = audio_bytes(Audio(samples, sample_rate=8000))[0]
    assert fetch(shared_server, row["sound"]["file_path"]) == expected_sound
    assert fetch(shared_server, row["clip"]["file_path"]) == video_bytes(Video(frames, fps=4))[0]
    preds = row["preds"]["_value"]
    assert [(r["text"], r["score"]) for r in preds] == [("a", 0.25), ("b", 0.75)]
    assert decoded(fetch(shared_server, preds[0]["image"]["file_path"])) == _pixels(4).tolist()
    histogram = row["weights"]
    assert histogram["_type"] == "trackio.histogram" and sum(histogram["values"]) == 10_000
    assert histogram["bins"][0] == pytest.approx(weights.min().item())
    assert row["report"] == {"_type": "trackio.markdown", "_value": "# Epoch 3\nBetter."}
    values = shared_server.values(project, run.name, "preds")
    assert [v["step"] for v in values] == [3] and values[0]["value"]["_type"] == "trackio.table"
    assert shared_server.steps(project, run.name, "train/loss") == [3, 4]
    tabs = shared_server.api("get_tab_availability", project)
    assert tabs["media"] and tabs["reports"] and tabs["metrics"]


def test_log_never_raises_and_a_bad_value_drops_only_itself(
    shared_server: TrackioServer, project: str, recwarn: pytest.WarningsRecorder
) -> None:
    with TrackioClient(project, server_url=shared_server.write_url) as run:
        for step in range(2):
            run.log(
                {"loss": 1.0, "gone": Image("/no/such.png"), "kept": Image(_pixels(0))}, step=step
            )
    rows = shared_server.logs(project, run.name)
    assert [sorted(k for k in r if k not in ("step", "timestamp")) for r in rows] == [
        ["kept", "loss"],
        ["kept", "loss"],
    ]
    warned = [str(w.message) for w in recwarn if "'gone'" in str(w.message)]
    assert len(warned) == 1 and "file not found" in warned[0]


def test_a_point_without_a_step_files_its_media_under_the_step_it_will_get(
    shared_server: TrackioServer, project: str
) -> None:
    with TrackioClient(project, server_url=shared_server.write_url) as run:
        run.log({"loss": 1.0}, step=7)
        assert run.flush(timeout=30)
        run.log({"img": Image(_pixels(0))})
    (row,) = media_rows(shared_server, project, run.name, "img")
    assert row["step"] == 8 and row["img"]["file_path"].startswith(f"{project}/{run.name}/8/")


KILLED = textwrap.dedent(
    """
    import time, numpy as np
    from trackio_integrations import Image, TrackioClient
    # No system samples: the test counts the point it logged (a sample falls due 1 s after start)
    run = TrackioClient(
        {project!r}, "killed-run", server_url={url!r}, flush_interval=600, system_metrics=False
    )
    pixels = np.random.default_rng(1).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    run.log({{"loss": 0.5, "samples": Image(pixels)}}, step=0)
    print("LOGGED", flush=True)  # log() has returned: the image must survive what comes next
    time.sleep(60)
    """
)


def test_an_image_logged_before_a_sigkill_is_stored_once_by_sync(
    server: TrackioServer, project: str, spool_dir: Path
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED.format(project=project, url=server.write_url)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={
            **os.environ,
            "TRACKIO_WATCHER": "0",
        },  # a whole job killed: its watcher too
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "LOGGED"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    status = cli_process(["status"])
    assert "1 point(s) waiting, with 1 file(s)" in status.stdout, status.stdout
    result = cli_process(["sync"], env={"TRACKIO_WRITE_TOKEN": TOKEN})
    assert "Sent 1 of 1 point(s) and 1 of 1 file(s)" in result.stdout, result.stdout + result.stderr
    again = cli_process(["sync"], env={"TRACKIO_WRITE_TOKEN": TOKEN})
    assert again.returncode == 0 and "No points to send." in again.stdout
    (row,) = media_rows(server, project, "killed-run", "samples")
    assert decoded(fetch(server, row["samples"]["file_path"])) == _pixels(1).tolist()
    assert not list(spool_dir.glob("*/blobs/*"))  # delivered files leave the spool


def test_an_image_logged_while_the_server_is_down_arrives_when_it_is_up(
    server: TrackioServer, project: str, spool_dir: Path
) -> None:
    server.stop()
    with pytest.warns(UserWarning, match="not reachable"):
        run = TrackioClient(project, server_url=server.write_url)
    run.log({"samples": Image(_pixels(2))}, step=0)
    (blob,) = list(spool_dir.glob("*/blobs/*"))  # on disk before log() returned
    assert blob.stat().st_size > 0
    server.start()
    assert run.finish(timeout=60)
    (row,) = media_rows(server, project, run.name, "samples")
    assert decoded(fetch(server, row["samples"]["file_path"])) == _pixels(2).tolist()
    assert not blob.exists()


def test_files_past_the_spool_limit_wait_in_memory_and_still_arrive(
    server: TrackioServer, project: str, monkeypatch: pytest.MonkeyPatch, spool_dir: Path
) -> None:
    monkeypatch.setenv("TRACKIO_SPOOL_MAX_MB", "10")  # 8 MB for a segment, 2 MB for files
    server.stop()
    with pytest.warns(UserWarning, match="not reachable"):
        run = TrackioClient(project, server_url=server.write_url)
    for step in range(8):  # about 400 kB of noise each
        run.log({"noise": Image(_pixels(step, (360, 360, 3)))}, step=step)
    on_disk = sum(p.stat().st_size for p in spool_dir.glob("*/blobs/*"))
    assert 0 < on_disk <= 2 << 20
    assert run._spool is not None and run._spool.write_error is not None
    server.start()
    assert run.finish(timeout=120)
    rows = media_rows(server, project, run.name, "noise")
    assert [r["step"] for r in rows] == list(range(8))
    assert (
        decoded(fetch(server, rows[7]["noise"]["file_path"])) == _pixels(7, (360, 360, 3)).tolist()
    )


def test_the_embedded_default_stores_files_where_trackio_show_finds_them(project: str) -> None:
    with TrackioClient(project) as run:
        run.log({"samples": Image(_pixels(3), caption="local"), "md": Markdown("hi")}, step=0)
        run.log({"preds": Table(columns=["img"], data=[[Image(_pixels(4))]])}, step=1)
    viewer = TrackioServer(Path(os.environ["TRACKIO_DIR"]))
    viewer.start()
    try:
        wait_until(lambda: len(viewer.logs(project, run.name)) >= 2, 30)
        first, second = viewer.logs(project, run.name)
        assert decoded(fetch(viewer, first["samples"]["file_path"])) == _pixels(3).tolist()
        cell = second["preds"]["_value"][0]["img"]
        assert decoded(fetch(viewer, cell["file_path"])) == _pixels(4).tolist()
        tabs = viewer.api("get_tab_availability", project)
        assert tabs["media"] and tabs["reports"]
    finally:
        viewer.stop()


def _media_line(spool: Spool, project: str, step: int | None, name: str, seq: int) -> bytes:
    """A point whose image has the file ``name`` in the media folder of ``step``."""
    blob = spool.write_blob(b"\x89PNG not really", ".png")
    files = orjson.dumps([{"blob": blob, "step": step, "name": name}])
    body = orjson.dumps(
        {"img": {"_type": "trackio.image", "file_path": f"{project}/r/{step}/{name}"}}
    )
    return RunFields(project, "r", "rid").media(body, step, b"media-%d" % seq, 1.0, files)


def test_a_file_the_server_refuses_is_set_aside_alone_with_its_point(
    server: TrackioServer, project: str, spool_dir: Path
) -> None:
    # A file stored with no step folder is named "3" in the run's folder: the server then cannot
    # make the folder of step 3, and refuses (500) every file of that step, every time.
    meta = {"writer": "orphan0002", "target": {"kind": "server", "url": server.url}}
    spool = Spool.create(spool_dir, "orphan0002", meta)
    fields = RunFields(project, "r", "rid")
    for step in range(4):
        spool.append(fields.metric(b'{"loss":%d}' % step, step, b"scalar-%d" % step, 1.0))
    spool.append(_media_line(spool, project, None, "3", 1))
    spool.append(_media_line(spool, project, 3, "x.png", 2))
    spool.append(fields.metric(b'{"loss":9}', 9, b"scalar-9", 1.0))
    spool.close()
    result = cli_process(["sync"], env={"TRACKIO_WRITE_TOKEN": TOKEN})
    assert result.returncode == 0, result.stdout + result.stderr
    assert server.steps(project, "r", "loss") == [0, 1, 2, 3, 9]
    assert len(media_rows(server, project, "r", "img")) == 1
    (dead,) = list((spool_dir / "dead-letter").glob("*.jsonl"))
    (entry,) = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    assert entry["entry"]["log_id"] == "media-2"
    assert list((spool_dir / "dead-letter" / "orphan0002.files").iterdir())  # its file, kept
    assert "Dead-lettered: 1 point(s)" in cli_process(["status"]).stdout


class ForgetfulServer(Transport):
    """The real server, but the first ``forget`` uploads come back as paths it never made:
    what it answers after a restart between the two steps of an upload."""

    forget = 1

    def upload(self, files: Any) -> Any:
        reply, paths = super().upload(files)
        if self.forget > 0 and reply.outcome is Outcome.OK:
            self.forget -= 1
            paths = [f"/tmp/trackio-upload-forgotten-{i}.png" for i in range(len(paths))]
        return reply, paths


def test_an_upload_the_server_forgot_is_uploaded_again_not_refused(
    server: TrackioServer, project: str, spool_dir: Path
) -> None:
    spool = Spool.create(spool_dir, "writer0003", {"writer": "writer0003"})
    line = _media_line(spool, project, 0, "a.png", 1)
    transport = ForgetfulServer(resolve_target(server_url=server.write_url, env={}))
    try:
        assert upload_files(transport, [line], spool.read_blob).outcome is Outcome.OK
        stored = server.data_dir / "media" / project / "r" / "0" / "a.png"
        assert stored.read_bytes() == b"\x89PNG not really"
        transport.forget = 5  # a server that forgets every time: try again later, not poison
        reply = upload_files(transport, [line], spool.read_blob)
        assert (
            reply.outcome is Outcome.RETRY and "not created by this Trackio server" in reply.message
        )
    finally:
        transport.close()
        spool.close()


def test_importing_the_media_classes_loads_no_media_library() -> None:
    heavy = ["numpy", "PIL", "torch", "pandas", "httpx", "trackio"]
    code = (
        "import sys\nfrom trackio_integrations import Image, Audio, Video, Table, Histogram, "
        "Markdown\nImage('x.png'); Table(columns=['a'], data=[[1]]); Histogram([1, 2]); "
        f"Markdown('m')\nprint([m for m in {heavy!r} if m in sys.modules])"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_logging_a_table_and_a_report_needs_no_numpy_or_pil() -> None:
    code = textwrap.dedent(
        f"""
        import sys
        from trackio_integrations import Markdown, Table, TrackioClient
        with TrackioClient("p", server_url="http://127.0.0.1:{free_port()}", check=False) as run:
            run.log({{"t": Table(columns=["a"], data=[[1]]), "m": Markdown("x")}}, step=0)
            print([m for m in ("numpy", "PIL", "torch", "pandas") if m in sys.modules])
            run.finish(timeout=0.1)
        """
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[0] == "[]"
