"""How many rows with no metric (``{"step": N}`` only) a run of each framework leaves on the server.

    python bench/phantom_rows.py        # about 30 s on 2 cores

Its own ``trackio show`` (free loopback port, temporary TRACKIO_DIR, known write token). Each
framework's example (``examples/``) runs in a fresh interpreter, and so does a Lightning run that
logs a score after ``fit()`` returned; then every row of each run is read back with
``get_logs`` and the rows that hold no metric are counted. Prints a Markdown table.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent)]  # tests.harness

from tests.harness import REPO, TOKEN, TrackioServer  # noqa: E402

RUNS = {
    "Trainer (40 steps, summary at the end)": (
        "from examples.transformers_trainer import main\nmain(PROJECT, NAME, steps=40)"
    ),
    "Lightning (5 epochs, checkpoints, status at the end)": (
        "from examples.lightning_logger import main\nmain(PROJECT, NAME, epochs=5)"
    ),
    "Accelerate (60 steps, end_training)": (
        "from examples.accelerate_tracker import main\nmain(PROJECT, NAME, steps=60)"
    ),
    "Lightning, a score logged after fit()": textwrap.dedent(
        """\
        import lightning as L
        from examples.lightning_logger import Regressor, loaders
        from trackio_integrations import TrackioLogger
        logger = TrackioLogger(PROJECT, NAME)
        trainer = L.Trainer(max_epochs=1, logger=logger, enable_progress_bar=False,
                            enable_checkpointing=False, enable_model_summary=False,
                            accelerator="cpu")
        trainer.fit(Regressor(), *loaders())
        logger.log_metrics({"test/score": 0.5})
        """
    ),
}
META = {"step", "timestamp"}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "trackio"
        server = TrackioServer(data)
        server.start()
        env = {
            **os.environ,
            "TRACKIO_DIR": str(data),
            "TRACKIO_SERVER_URL": server.url,
            "TRACKIO_WRITE_TOKEN": TOKEN,
            "TRACKIO_SPOOL_DIR": str(Path(tmp) / "spool"),
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        }
        print("| run | rows | rows with no metric |\n|---|---|---|")
        try:
            for index, (label, code) in enumerate(RUNS.items()):
                name = f"run-{index}"
                prelude = f"PROJECT, NAME = 'phantoms', {name!r}\n"
                subprocess.run(
                    [sys.executable, "-c", prelude + code],
                    env=env,
                    cwd=REPO,
                    check=True,
                    capture_output=True,
                )
                rows = server.logs("phantoms", name)
                empty = [row for row in rows if not row.keys() - META]
                print(f"| {label} | {len(rows)} | {len(empty)} |")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
