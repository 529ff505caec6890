"""`make screenshot`: run the demo, open its runs in headless Chromium, save the pictures in docs/:
dashboard.png (the loss curves) and media.png (the Media & Tables tab).

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

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from examples.demo import DEMO_PROJECT, _free_port  # noqa: E402

OUT = REPO / "docs" / "dashboard.png"
MEDIA = REPO / "docs" / "media.png"


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
        shots = [
            (OUT, f"{base}/?project={DEMO_PROJECT}&metric_filter=train/loss&smoothing=0", 760),
            (MEDIA, f"{base}/media?project={DEMO_PROJECT}", 900),
        ]
        for picture, url, height in shots:
            _shoot(chromium, picture, url, height)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)
    for picture in (OUT, MEDIA):
        print(f"saved {picture} ({picture.stat().st_size} bytes)")
    return 0


def _shoot(chromium: str, picture: Path, url: str, height: int) -> None:
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
