"""A job that holds every kind of secret the package knows, each given as a flag a user would
write: a write token read from a file (its newline kept), a gateway's header value and basic-auth
password, an alert webhook, and a Hugging Face token for a self-hosted server (never sent there).

``python secret_job.py --server URL --token-file F --access V --gw-pass V --notify URL
--hub-creds V --out DIR``; the project comes from ``TRACKIO_PROJECT``. Writes ``DIR/run.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from urllib.parse import quote, urlsplit

from trackio_integrations import TrackioClient


def main() -> None:
    parser = argparse.ArgumentParser()
    for flag in ("--server", "--token-file", "--access", "--gw-pass", "--notify", "--hub-creds"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--out", required=True)
    options = parser.parse_args()
    server = urlsplit(options.server)
    url = f"{server.scheme}://gwuser:{quote(options.gw_pass, safe='')}@{server.netloc}"
    with TrackioClient(
        server_url=url,
        write_token=Path(options.token_file).read_text(),  # "...\n", as a file holds it
        headers={"X-Access": options.access},
        alert_webhook=options.notify,
        hf_token=options.hub_creds,
        system_metrics=False,
    ) as run:
        run.log({"loss": 1.0}, step=0)
        run.alert("job finished", "posted to the webhook too", level="error")
    (Path(options.out) / "run.json").write_text(json.dumps({"run_id": run.run_id}))


if __name__ == "__main__":
    main()
