"""`make screenshot`: run the demo, open its runs in headless Chromium, save the docs' pictures.

docs/dashboard.png (the loss curves), docs/media.png (the Media & Tables tab),
docs/system-metrics.png (the System Metrics tab), docs/alerts.png (the Alerts & Reports tab),
docs/artifacts.png (the Artifacts tab, on the demo's checkpoint artifact), docs/traces.png (the
Traces tab, the rollouts logged through trackio's module API as TRL's GRPO logs them) and
docs/hyperparameter-search.png (examples/hyperparameter_search.py's trials, Group by: Group: a
dropdown no URL sets, so that page is driven through Chromium's DevTools protocol).

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
from websockets.sync.client import connect

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from examples.demo import DEMO_PROJECT, _free_port  # noqa: E402

OUT = REPO / "docs" / "dashboard.png"
MEDIA = REPO / "docs" / "media.png"
SYSTEM, ALERTS = REPO / "docs" / "system-metrics.png", REPO / "docs" / "alerts.png"
ARTIFACTS_OUT = REPO / "docs" / "artifacts.png"
TRACES = REPO / "docs" / "traces.png"
SEARCH = REPO / "docs" / "hyperparameter-search.png"
SEARCH_PROJECT = "demo-search"
# Headless chromium on a machine with no network beyond the loopback: without the background
# networking flags it tries Google's hosts at every start.
HEADLESS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def main() -> int:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("error: no chromium on PATH: `apt-get install chromium`", file=sys.stderr)
        return 2
    data = REPO / ".demo" / "trackio"
    env = {k: v for k, v in os.environ.items() if k != "TRACKIO_SERVER_URL"}
    env["TRACKIO_DIR"] = str(data)
    subprocess.run([sys.executable, "-m", "examples.demo"], cwd=REPO, env=env, check=True)
    search = [sys.executable, "-m", "examples.hyperparameter_search"]
    subprocess.run(search, cwd=REPO, env=env, check=True)

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
        grouped = f"{base}/?project={SEARCH_PROJECT}&metric_filter=eval/loss&smoothing=0"
        shoot_grouped(chromium, grouped, SEARCH, 820, "Group by", "Group")
        print(f"saved {SEARCH} ({SEARCH.stat().st_size} bytes)")
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
            *HEADLESS,
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


# Opens the dropdown labelled %(label)s and picks the option %(option)s, as a click would;
# returns true, or what it found instead (the runs and their configs may still be loading).
_PICK = """(async () => {
  const box = [...document.querySelectorAll('.dropdown-container')]
    .find(d => d.querySelector('.label')?.textContent.trim() === %(label)s);
  const input = box?.querySelector('input');
  if (!input) return [...document.querySelectorAll('.dropdown-container .label')]
    .map(l => l.textContent.trim()).join(', ') || 'no dropdowns yet';
  input.focus();  // the list opens on focus (a mousedown on an open list closes it)
  input.dispatchEvent(new FocusEvent('focus'));  // a page in the background gets no focus event
  await new Promise(done => setTimeout(done, 300));  // the options list renders
  const items = [...box.querySelectorAll('li.item')];
  const item = items.find(li => li.textContent.replace('\\u2713', '').trim() === %(option)s);
  if (!item) {
    input.blur();
    return 'options: ' + items.map(li => li.textContent.trim()).join(', ');
  }
  item.dispatchEvent(new MouseEvent('mousedown', {bubbles: true}));
  return true;
})()"""


def shoot_grouped(
    chromium: str, url: str, picture: Path, height: int, label: str, option: str
) -> None:
    """A page after choosing ``option`` in its dropdown ``label``, through the DevTools protocol
    (a URL cannot choose it), as a PNG."""
    import base64
    import json

    port = _free_port()
    profile = REPO / ".demo" / "chromium-profile"
    shutil.rmtree(profile, ignore_errors=True)
    browser = subprocess.Popen(
        [
            chromium,
            *HEADLESS,
            f"--user-data-dir={profile}",
            f"--window-size=1400,{height}",
            f"--remote-debugging-port={port}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        target = None
        for _ in range(300):
            try:
                pages = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=1).json()
                target = next(p for p in pages if p.get("type") == "page")
                break
            except (httpx.HTTPError, StopIteration, ValueError):
                time.sleep(0.1)
        if target is None:
            raise RuntimeError("Chromium's DevTools did not answer")
        with connect(target["webSocketDebuggerUrl"], max_size=None) as socket:
            ids = iter(range(1, 1_000_000))

            def call(method: str, **params: Any) -> dict[str, Any]:
                number = next(ids)
                socket.send(json.dumps({"id": number, "method": method, "params": params}))
                while True:
                    message = json.loads(socket.recv(timeout=60))
                    if message.get("id") == number:
                        return dict(message.get("result") or {})

            call("Page.navigate", url=url)
            pick = _PICK % {"label": json.dumps(label), "option": json.dumps(option)}
            deadline = time.monotonic() + 60
            while True:
                result = call(
                    "Runtime.evaluate", expression=pick, returnByValue=True, awaitPromise=True
                )
                if result.get("result", {}).get("value") is True:
                    break
                if time.monotonic() > deadline:
                    found = result.get("result", {}).get("value")
                    raise RuntimeError(
                        f"no {option!r} in the dropdown {label!r} ({found}) at {url}"
                    )
                time.sleep(0.5)
            time.sleep(4)  # the grouped list and the plots redraw
            shot = call("Page.captureScreenshot", format="png")
        picture.write_bytes(base64.b64decode(shot["data"]))
    finally:
        browser.terminate()
        browser.wait(10)


if __name__ == "__main__":
    sys.exit(main())
