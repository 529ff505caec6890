"""`make screenshot`: run the demo, open its runs in headless Chromium, save docs/dashboard.png
and docs/artifacts.png (the Artifacts tab, on the demo's checkpoint artifact).

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
ARTIFACTS_OUT = REPO / "docs" / "artifacts.png"


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
        shoot(chromium, f"{base}/?project={DEMO_PROJECT}&metric_filter=train/loss&smoothing=0", OUT)
        model = _checkpoint_artifact(base)
        shoot(
            chromium,
            f"{base}/artifacts?project={DEMO_PROJECT}&selected_artifact={model['name']}"
            f"&selected_version=v{model['latest_version']}",
            ARTIFACTS_OUT,
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)
    for out in (OUT, ARTIFACTS_OUT):
        print(f"saved {out} ({out.stat().st_size} bytes)")
    return 0


def _checkpoint_artifact(base: str) -> dict[str, Any]:
    response = httpx.post(f"{base}/api/get_artifacts", json={"args": [DEMO_PROJECT]}, timeout=30)
    response.raise_for_status()
    return next(a for a in response.json()["data"] if a["type"] == "model")


def shoot(chromium: str, url: str, out: Path) -> None:
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
            "--window-size=1400,760",
            "--virtual-time-budget=15000",
            f"--screenshot={out}",
            url,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )


if __name__ == "__main__":
    sys.exit(main())
