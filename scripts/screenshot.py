"""`make screenshot`: run the demo, open its runs in headless Chromium, save the docs' pictures.

docs/dashboard.png (the loss curves), docs/media.png (the Media & Tables tab),
docs/system-metrics.png (the System Metrics tab), docs/alerts.png (the Alerts & Reports tab),
docs/artifacts.png (the Artifacts tab, on the demo's checkpoint artifact) and docs/traces.png (the
Traces tab, the rollouts logged through trackio's module API as TRL's GRPO logs them).

Needs Debian's `chromium` package (`apt-get install chromium`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from examples.demo import DEMO_PROJECT, _free_port  # noqa: E402

OUT = REPO / "docs" / "dashboard.png"
MEDIA = REPO / "docs" / "media.png"
SYSTEM, ALERTS = REPO / "docs" / "system-metrics.png", REPO / "docs" / "alerts.png"
ARTIFACTS_OUT = REPO / "docs" / "artifacts.png"
TRACES = REPO / "docs" / "traces.png"


def main() -> int:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("error: no chromium on PATH: `apt-get install chromium`", file=sys.stderr)
        return 2
    data = REPO / ".demo" / "trackio"
    env = {k: v for k, v in os.environ.items() if k != "TRACKIO_SERVER_URL"}
    env["TRACKIO_DIR"] = str(data)
    subprocess.run([sys.executable, "-m", "examples.demo"], cwd=REPO, env=env, check=True)

    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "trackio"), "show"],
        env={**env, "GRADIO_SERVER_PORT": str(port), "BROWSER": "true"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{base}/version", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        OUT.parent.mkdir(exist_ok=True)
        runs = httpx.post(
            f"{base}/api/get_runs_for_project", json={"args": [DEMO_PROJECT]}, timeout=30
        ).json()["data"]
        # The System Metrics tab of the run that samples every 0.5 s (the others have a sample
        # or two each); the Alerts tab of the whole project.
        health = next(run["name"] for run in runs if run["name"].startswith("health-"))
        project = f"{base}/{{}}?project={DEMO_PROJECT}"
        pages = [
            (OUT, project.format("") + "&metric_filter=train/loss&smoothing=0", 760),
            (MEDIA, project.format("media"), 900),
            (SYSTEM, project.format("system") + f"&runs={health}&smoothing=0", 1100),
            (ALERTS, project.format("reports"), 520),
            (TRACES, project.format("traces"), 900),
        ]
        model = _checkpoint_artifact(base)
        pages.append(
            (
                ARTIFACTS_OUT,
                project.format("artifacts")
                + f"&selected_artifact={model['name']}&selected_version=v{model['latest_version']}",
                760,
            )
        )
        for picture, url, height in pages:
            shoot(chromium, url, picture, height)
            print(f"saved {picture} ({picture.stat().st_size} bytes)")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)
    return 0


def _checkpoint_artifact(base: str) -> dict[str, Any]:
    response = httpx.post(f"{base}/api/get_artifacts", json={"args": [DEMO_PROJECT]}, timeout=30)
    response.raise_for_status()
    return next(a for a in response.json()["data"] if a["type"] == "model")


def shoot(chromium: str, url: str, picture: Path, height: int) -> None:
    """One page, after its scripts have settled, as a PNG."""
    profile = REPO / ".demo" / "chromium-profile"
    shutil.rmtree(profile, ignore_errors=True)
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size=1400,{height}",
            "--virtual-time-budget=15000",
            f"--screenshot={picture}",
            url,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )


if __name__ == "__main__":
    sys.exit(main())
