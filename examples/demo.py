"""`make demo`: run every example, then read the runs back from a real `trackio show`.

With no TRACKIO_SERVER_URL the examples use the embedded default (local storage in TRACKIO_DIR,
here `.demo/trackio`), and a `trackio show` is started on it only afterwards, to read them back.
With TRACKIO_SERVER_URL set, the same examples log to that server and are read back from it.
Exit status 0 only if every run arrived whole.
"""

from __future__ import annotations

import importlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
DEMO_PROJECT = "trackio-integrations-demo"  # one project: the dashboard shows the runs together
TABS = ("metrics", "media", "reports", "system", "files", "artifacts", "traces")
EXAMPLES = [
    "examples.client_quickstart",
    "examples.transformers_trainer",
    "examples.lightning_logger",
    "examples.accelerate_tracker",
    "examples.media_samples",  # a grid of samples, a predictions table, weight histograms
    "examples.health_alerts",  # system metrics, and alerts from a loop that goes wrong
    "examples.trackio_api",  # trackio's module style: rewards and rollouts (the Traces tab)
]


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def main() -> int:
    server_url = os.environ.get("TRACKIO_SERVER_URL")
    if not server_url:
        data = Path(os.environ.get("TRACKIO_DIR") or REPO / ".demo" / "trackio")
        shutil.rmtree(data, ignore_errors=True)
        os.environ["TRACKIO_DIR"] = str(data)
        say(f"no TRACKIO_SERVER_URL: logging to the embedded default in {data}")
    else:
        say("logging to the server in TRACKIO_SERVER_URL")
    os.environ.setdefault("TRACKIO_SPOOL_DIR", str(REPO / ".demo" / "spool"))

    summaries = []
    for name in EXAMPLES:
        say(f"running {name} ...")
        started = time.monotonic()
        run_name = f"{name.split('.')[-1].split('_')[0]}-{secrets.token_hex(2)}"
        summaries.append(importlib.import_module(name).main(project=DEMO_PROJECT, name=run_name))
        say(f"  done in {time.monotonic() - started:.1f}s")

    server = None
    if server_url:
        base = server_url.split("?")[0].rstrip("/")
    else:
        port = _free_port()
        say(f"starting `trackio show` on 127.0.0.1:{port} to read the runs back ...")
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "trackio"), "show"],
            env={**os.environ, "GRADIO_SERVER_PORT": str(port), "BROWSER": "true"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
    try:
        return _report(base, summaries)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(10)


def _report(base: str, summaries: list[dict[str, Any]]) -> int:
    def call(name: str, *args: Any) -> Any:
        response = httpx.post(f"{base}/api/{name}", json={"args": list(args)}, timeout=30)
        response.raise_for_status()
        return response.json()["data"]

    deadline = time.monotonic() + 60
    rows, whole = [], True
    for s in summaries:
        expected = len(s["values"])
        got: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            try:
                got = call("get_metric_values", s["project"], s["run"], s["metric"]) or []
            except httpx.HTTPError:
                got = []
            if len(got) >= expected:
                break
            time.sleep(0.5)
        ok = len(got) == expected and _media_arrived(call, s) and _traces_arrived(call, s)
        whole &= ok
        first = got[0]["value"] if got else float("nan")
        last = got[-1]["value"] if got else float("nan")
        rows.append(
            (s["framework"], s["project"], s["run"], f"{len(got)}/{expected}", first, last, ok)
        )

    print()
    row = "{:<14} {:<26} {:<20} {:>9} {:>11} {:>10}"
    print(row.format("framework", "project", "run", "points", "first loss", "last loss"))
    for framework, project, run, points, first, last, ok in rows:
        mark = "" if ok else "  <-- INCOMPLETE"
        print(row.format(framework, project, run, points, f"{first:.4f}", f"{last:.4f}") + mark)
    whole &= _report_system_and_alerts(call, summaries)
    print()
    for s in summaries:
        if "artifact" in s:
            found = _artifact(call, s["project"], s["artifact"])
            whole &= found is not None
            print(f"artifact {s['artifact']}: {found or 'MISSING'}")
    # Every tab: traces come from the rollouts of examples/trackio_api.py (as TRL's GRPO logs).
    tabs = call("get_tab_availability", DEMO_PROJECT) or {}
    grey = [tab for tab in TABS if not tabs.get(tab)]
    whole &= not grey
    print(
        f"dashboard tabs lit: {', '.join(t for t in TABS if tabs.get(t))}"
        + (f"; NOT lit: {', '.join(grey)}" if grey else "")
    )
    print()
    if os.environ.get("TRACKIO_SERVER_URL"):
        print(f"Open the dashboard: {base}")
    else:
        print("Open the dashboard: make dashboard   (serves .demo/trackio until Ctrl+C)")
    print("Every run arrived whole." if whole else "Some runs are INCOMPLETE.")
    return 0 if whole else 1


def _media_arrived(call: Any, summary: dict[str, Any]) -> bool:
    """Each media key an example logged is in as many rows as it was logged (none: True)."""
    wanted = summary.get("media") or {}
    if not wanted:
        return True
    rows = call("get_logs", summary["project"], summary["run"]) or []
    found = {key: sum(key in row for row in rows) for key in wanted}
    say(f"  {summary['run']}: " + ", ".join(f"{k} {found[k]}/{n}" for k, n in wanted.items()))
    return found == wanted


def _traces_arrived(call: Any, summary: dict[str, Any]) -> bool:
    """As many traces as the example logged (none promised: True)."""
    wanted = summary.get("traces")
    if not wanted:
        return True
    found = len(call("get_traces", summary["project"], summary["run"]) or [])
    say(f"  {summary['run']}: traces {found}/{wanted}")
    return found == wanted


def _report_system_and_alerts(call: Any, summaries: list[dict[str, Any]]) -> bool:
    """System samples and alerts per run; True if the runs that promise them have them."""
    print()
    row = "{:<14} {:<20} {:>14}  {}"
    print(row.format("framework", "run", "system samples", "alerts"))
    whole = True
    for s in summaries:
        samples = len(call("get_system_logs", s["project"], s["run"]) or [])
        alerts = sorted(call("get_alerts", s["project"], s["run"]) or [], key=lambda a: a["step"])
        titles = [a["title"] for a in alerts]
        ok = (samples > 0 or not s.get("system")) and titles == s.get("alerts", titles)
        whole &= ok
        shown = ", ".join(f"{a['level']}: {a['title']} (step {a['step']})" for a in alerts)
        print(row.format(s["framework"], s["run"], samples, shown or "-") + ("" if ok else "  <--"))
    return whole


def _artifact(call: Any, project: str, name: str) -> str | None:
    """The artifact as the Artifacts tab lists it, or None (waiting a little for the server)."""
    for _ in range(20):
        for artifact in call("get_artifacts", project) or []:
            if artifact["name"] == name:
                return (
                    f"{artifact['num_versions']} version(s), aliases "
                    f"{', '.join(artifact['aliases'])}, {artifact['size_bytes']} bytes"
                )
        time.sleep(0.5)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
