"""Traces and HTML pages, ours and trackio's own, reach the Traces and Media tabs of a real server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import trackio

from tests.harness import TrackioServer, wait_until
from trackio_integrations import Html, Trace, TrackioClient

MESSAGES = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]


def traces(server: TrackioServer, project: str, run: str) -> list[dict]:
    return list(server.api("get_traces", project, run) or [])


def media_file(server: TrackioServer, file_path: str) -> bytes:
    """A stored media file, read back as the dashboard reads it."""
    media = server.data_dir / "media" / file_path
    return media.read_bytes() if media.exists() else b""


def test_our_trace_lights_the_traces_tab(shared_server: TrackioServer, project: str) -> None:
    with TrackioClient(project, "ours", server_url=shared_server.write_url) as run:
        run.log({"loss": 1.0}, step=3)
        run.log({"rollout": Trace(MESSAGES, metadata={"reward": 1.0})})  # no step: 4
        run.log({"rollouts": [Trace(MESSAGES), Trace(MESSAGES[:1], spans=[{"id": "a"}])]}, step=9)
    found = wait_until(
        lambda: (
            len(traces(shared_server, project, "ours")) >= 3
            and traces(shared_server, project, "ours")
        )
    )
    by_step = sorted((t["step"], t["key"]) for t in found)
    assert by_step == [(4, "rollout"), (9, "rollouts"), (9, "rollouts")]
    first = next(t for t in found if t["key"] == "rollout")
    assert first["messages"] == MESSAGES and first["metadata"] == {"reward": 1.0}


def test_trackio_s_own_trace_html_and_dataframe_table(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    frame = pd.DataFrame(
        {
            "step": [1, 1],
            "prompt": ["a", "b"],
            "reward": [0.5, 1.5],
            "image": [trackio.Image(np.zeros((4, 4, 3), np.uint8)), None],
        }
    )
    page = tmp_path / "page.html"
    page.write_text("<h1>from a file</h1>")
    with TrackioClient(project, "theirs", server_url=shared_server.write_url) as run:
        run.log({"loss": 1.0}, step=5)
        run.log(
            {
                "completions": trackio.Table(dataframe=frame),
                "rollouts": [trackio.Trace(messages=MESSAGES, metadata={"v": 2})],
                "report": trackio.Html("<b>bold</b>"),
                "ours": Html(page),
            }
        )  # no step: 6
    wait_until(lambda: traces(shared_server, project, "theirs"))
    [trace] = traces(shared_server, project, "theirs")
    assert (trace["step"], trace["messages"]) == (6, MESSAGES)
    rows = shared_server.wait_for_logs(project, "theirs", 2)
    [row] = [r for r in rows if "completions" in r]
    assert row["step"] == 6
    table = row["completions"]["_value"]
    assert [r["prompt"] for r in table] == ["a", "b"] and table[0]["reward"] == 0.5
    assert table[0]["image"]["_type"] == "trackio.image" and "/6/" in table[0]["image"]["file_path"]
    assert row["report"]["_type"] == "trackio.html"
    assert b"<b>bold</b>" in media_file(shared_server, row["report"]["file_path"])
    assert media_file(shared_server, row["ours"]["file_path"]) == b"<h1>from a file</h1>"


def test_a_bad_trace_or_html_warns_and_loses_nothing_else(
    shared_server: TrackioServer, project: str
) -> None:
    with pytest.raises(TypeError):
        Trace("not a list")  # type: ignore[arg-type]
    with (
        TrackioClient(project, "bad", server_url=shared_server.write_url) as run,
        pytest.warns(UserWarning, match="page"),
    ):
        run.log({"page": Html(object()), "loss": 2.0}, step=1)
    [row] = shared_server.wait_for_logs(project, "bad", 1)
    assert row["loss"] == 2.0 and "page" not in row


def test_a_plotly_figure_in_our_html_or_trackio_s(
    shared_server: TrackioServer, project: str
) -> None:
    import plotly.graph_objects as go

    figure = go.Figure(go.Scatter(x=[1, 2, 3], y=[4, 5, 6]))
    with TrackioClient(project, "plotly", server_url=shared_server.write_url) as run:
        run.log({"ours": Html(figure), "theirs": trackio.Html(figure)}, step=2)
    [row] = shared_server.wait_for_logs(project, "plotly", 1)
    for key in ("ours", "theirs"):
        assert row[key]["_type"] == "trackio.html" and "/2/" in row[key]["file_path"]
        page = media_file(shared_server, row[key]["file_path"])
        assert b"cdn.plot.ly" in page and b'"type":"scatter"' in page
