"""The measurements: each runs one ``workload.py`` process per client and reads the server back.

``Child`` is a workload process in its own process group (killed on exit or Ctrl+C) with its own
``TRACKIO_DIR`` and spool; ``Server`` reads what arrived through the server's HTTP API; ``Bench``
holds one method per measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx
from proxy import LatencyProxy
from workload import READY, RESULT

from tests.harness import TrackioServer, free_port

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
TOKEN = "bench-write-token-5c1e"
CLIENTS = ("ours", "trackio")
_CLEARED_ENV = (
    "TRACKIO_SERVER_URL",
    "TRACKIO_SPACE_ID",
    "TRACKIO_WRITE_TOKEN",
    "TRACKIO_PROJECT",
    "HF_TOKEN",
)


class BenchError(RuntimeError):
    pass


# --- child processes -------------------------------------------------------------------------


class Child:
    """One ``workload.py`` run in its own process group, with its own storage folders."""

    live: ClassVar[set[Child]] = set()  # killed on Ctrl+C

    def __init__(self, spec: dict[str, Any], home: Path) -> None:
        self.home = home
        home.mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if k not in _CLEARED_ENV}
        env.update(
            TRACKIO_DIR=str(home / "trackio"),  # trackio's local buffer; our embedded default
            TRACKIO_SPOOL_DIR=str(home / "spool"),
            HF_HOME=str(home / "hf"),
            HF_HUB_OFFLINE="1",
            PYTHONUNBUFFERED="1",
        )
        self.stderr_path = home / "stderr.log"
        with self.stderr_path.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, str(BENCH / "workload.py"), json.dumps(spec)],
                cwd=REPO,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,
            )
        self.started = time.monotonic()
        Child.live.add(self)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self.lines.put(None)

    def expect(self, prefix: str, deadline: float) -> dict[str, Any]:
        """The JSON after the next stdout line starting with ``prefix``."""
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise BenchError(f"no {prefix.strip()} in time; {self.tail()}") from None
            if line is None:
                self.proc.wait(5)
                raise BenchError(f"exited ({self.proc.returncode}) early; {self.tail()}")
            if line.startswith(prefix):
                return dict(json.loads(line[len(prefix) :]))

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def wait(self, deadline: float) -> float:
        """Wait for exit; seconds since the process was started."""
        try:
            self.proc.wait(max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            raise BenchError(f"did not exit in time; {self.tail()}") from None
        return time.monotonic() - self.started

    def tail(self) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace").strip()
        except OSError:
            text = ""
        return "stderr: " + (text[-600:] if text else "(empty)")

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        Child.live.discard(self)

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


# --- the server, read back through its HTTP API ----------------------------------------------


@dataclass
class Server:
    server: TrackioServer
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    @property
    def url(self) -> str:
        return self.server.url

    def api(self, name: str, *args: Any) -> Any:
        response = self.http.post(f"{self.url}/api/{name}", json={"args": list(args)})
        response.raise_for_status()
        return response.json()["data"]

    def count(self, project: str, run: str) -> int:
        """Rows stored for the run (a COUNT on the server: cheap enough to poll)."""
        try:
            return int((self.api("get_run_summary", project, run) or {}).get("num_logs") or 0)
        except (httpx.HTTPError, ValueError, TypeError):
            return 0

    def check(self, project: str, run: str, expected: int, settle: float = 10.0) -> dict[str, Any]:
        """What reached the server: rows of one metric, distinct steps, duplicates, missing.

        Counted right away, then again for up to ``settle`` s if points are still missing (a
        client may deliver after its ``finish()`` returned, or the server may still be writing).
        """
        at_exit = self.count(project, run)
        deadline = time.monotonic() + settle
        while self.count(project, run) < expected and time.monotonic() < deadline:
            time.sleep(0.25)
        rows = self.api("get_metric_values", project, run, "train/loss") or []
        steps = [row["step"] for row in rows]
        distinct = set(steps)
        return {
            "expected": expected,
            "at_exit": at_exit,
            "rows": len(rows),
            "distinct_steps": len(distinct),
            "duplicates": len(steps) - len(distinct),
            "missing": len(set(range(expected)) - distinct),
        }


# --- the measurements ------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    server: Server
    root: Path
    counter: int = 0

    def spec(self, client: str, scenario: str, url: str | None, **extra: Any) -> dict[str, Any]:
        self.counter += 1
        tag = f"{scenario}-{client}-{self.counter:03d}"
        return {
            "client": client,
            "scenario": scenario,
            "url": url,
            "token": TOKEN if url else None,
            "project": f"bench-{tag}",
            "name": f"run-{tag}",
            **extra,
        }

    def child(self, spec: dict[str, Any]) -> Child:
        return Child(spec, self.root / "clients" / f"{spec['project']}")

    def cost(self, client: str) -> dict[str, Any]:
        """1. log() per-call cost against a responsive server, logging as fast as possible."""
        n = self.args.points
        spec = self.spec(client, "cost", self.server.url, points=n)
        with self.child(spec) as child:
            deadline = time.monotonic() + 120
            result = child.expect(RESULT, deadline)
            child.wait(deadline)
        result["server"] = self.server.check(spec["project"], spec["name"], n)
        return result

    def paced(self, client: str) -> dict[str, Any]:
        """2a. log() cost at ``--slow-rate`` points/s, responsive server: the baseline for 2b."""
        return self.slow(client, delay=0.0)

    def slow(self, client: str, delay: float | None = None) -> dict[str, Any]:
        """2b. log() cost at ``--slow-rate`` points/s while every request is ``--delay`` s late."""
        n, rate = self.args.slow_points, self.args.slow_rate
        proxy = LatencyProxy(self.server.server.port, self.args.delay if delay is None else delay)
        try:
            spec = self.spec(client, "cost", proxy.url, points=n, rate=rate)
            with self.child(spec) as child:
                deadline = time.monotonic() + 120 + n / rate
                result = child.expect(RESULT, deadline)
                child.wait(deadline)
        finally:
            proxy.close()
        result["server"] = self.server.check(spec["project"], spec["name"], n)
        return result

    def deliver(self, client: str) -> dict[str, Any]:
        """3. From the first log() until the server holds all ``--points`` points."""
        n = self.args.points
        spec = self.spec(client, "deliver", self.server.url, points=n)
        seen_at = None
        with self.child(spec) as child:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if self.server.count(spec["project"], spec["name"]) >= n:
                    seen_at = time.time()
                    break
                if child.proc.poll() is not None and child.lines.empty():
                    # Exited: one more look (the last batch may have landed since), then stop.
                    if self.server.count(spec["project"], spec["name"]) >= n:
                        seen_at = time.time()
                    break
                time.sleep(self.args.poll)
            result = child.expect(RESULT, deadline)
            child.wait(deadline)
        result["delivered_s"] = None if seen_at is None else seen_at - result["first_log_wall"]
        result["server"] = self.server.check(spec["project"], spec["name"], n)
        return result

    def outage(self, client: str, at_start: bool = False) -> dict[str, Any]:
        """4. Resident memory while logging ``--outage-points`` points with the server gone.

        The run starts against a live server (through a proxy), delivers a warm-up, then the
        proxy is cut: connections are refused from then on, as if the server had died. With
        ``at_start`` the server is unreachable from the start (nothing listens on the port).
        """
        n = self.args.outage_points
        proxy = LatencyProxy(self.server.server.port)
        url = f"http://127.0.0.1:{free_port()}" if at_start else proxy.url
        warmup = 0 if at_start else 1000
        try:
            spec = self.spec(client, "outage", url, points=n, warmup=warmup, settle=2.0)
            with self.child(spec) as child:
                ready = child.expect(READY, time.monotonic() + 90)
                warm = self.server.count(spec["project"], spec["name"])
                proxy.cut()
                child.send("go")
                result = child.expect(RESULT, time.monotonic() + 60 + n * 200e-6)
                child.wait(time.monotonic() + 30)
                result.update(kept_on_disk(child.home))
        finally:
            proxy.close()
        result["warmup_flushed"] = ready.get("flushed")
        result["warmup_on_server"] = warm
        return result

    def outage_start(self, client: str) -> dict[str, Any]:
        return self.outage(client, at_start=True)

    def cold(self, client: str, local: bool = False) -> dict[str, Any]:
        """5. Import, open a run, log one point, finish: the wall time of a fresh process."""
        url = None if local else self.server.url
        spec = self.spec(client, "cold", url, default_monitors=True)
        spec["name"] = None  # let each library name the run, as a user would
        with self.child(spec) as child:
            deadline = time.monotonic() + 120
            result = child.expect(RESULT, deadline)
            result["wall_s"] = child.wait(deadline)
        if not local:
            result["server"] = self.server.check(spec["project"], result["run"], 1, settle=2.0)
        return result

    def cold_local(self, client: str) -> dict[str, Any]:
        return self.cold(client, local=True)

    def rates(self, client: str) -> dict[str, Any]:
        """6. What delivery costs the server: API requests and server CPU seconds per 1,000 points,
        logging at 100, 1,000 and 10,000 points/s for ``--rate-seconds`` each (through a proxy
        that counts the requests; the server's CPU time read from /proc)."""
        out: dict[str, Any] = {}
        for rate in RATES:
            n = int(rate * self.args.rate_seconds)
            proxy = LatencyProxy(self.server.server.port)
            try:
                cpu = server_cpu_s(self.server.server)
                spec = self.spec(client, "cost", proxy.url, points=n, rate=rate)
                with self.child(spec) as child:
                    deadline = time.monotonic() + 120 + n / rate
                    result = child.expect(RESULT, deadline)
                    child.wait(deadline)
                check = self.server.check(spec["project"], spec["name"], n)
                cpu = server_cpu_s(self.server.server) - cpu
            finally:
                proxy.close()
            out[f"r{rate}"] = {
                "points": n,
                "requests": proxy.requests,
                "requests_per_1k": proxy.requests * 1000 / n,
                "server_cpu_s_per_1k": cpu * 1000 / n,
                "finish_ok": result.get("finish_ok"),
            }
            out.setdefault("server", check)  # the first rate's check stands for all in notes
            if check["missing"] or check["duplicates"]:
                out["server"] = check
        return out

    def trainer(self, client: str) -> dict[str, Any]:
        """7. A tiny Trainer's train_runtime (600 steps, a log every step) with this client's
        reporting and with none, back to back in alternating order: ours is TrackioCallback,
        trackio's is ``report_to="trackio"`` (transformers' built-in callback)."""
        mode = "ours" if client == "ours" else "builtin"
        variants = (mode, "none") if self.counter % 2 else ("none", mode)
        out: dict[str, Any] = {}
        for variant in variants:
            spec = self.spec(
                client, "trainer", self.server.url, mode=variant, steps=self.args.trainer_steps
            )
            with self.child(spec) as child:
                deadline = time.monotonic() + 300
                result = child.expect(RESULT, deadline)
                child.wait(deadline)
            out["none_s" if variant == "none" else "runtime_s"] = result["train_runtime"]
        out["over_none"] = out["runtime_s"] / out["none_s"]
        return out


RATES = (100, 1_000, 10_000)


def server_cpu_s(server: TrackioServer) -> float:
    """User + system CPU seconds the ``trackio show`` process has used so far."""
    assert server.proc is not None
    with open(f"/proc/{server.proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kept_on_disk(home: Path) -> dict[str, Any]:
    """What a client keeps on local disk for later delivery (read after it exited).

    Ours: spool lines past the acknowledged position. trackio: rows of its local SQLite buffer
    (``TRACKIO_DIR/<project>.db``, written when a send fails).
    """
    files = [p for p in home.rglob("*") if p.is_file() and p.name != "stderr.log"]
    disk = 0
    for path in files:
        with contextlib.suppress(OSError):
            disk += path.stat().st_size
    points = 0
    for folder in {p.parent for p in files if p.name == "meta.json"}:  # spool writer folders
        try:
            segment, offset = (int(x) for x in (folder / "ack").read_text().split()[:2])
        except (OSError, ValueError):
            segment, offset = 0, 0
        for path in folder.glob("*.jsonl"):
            number = int(path.stem)
            if number >= segment:
                data = path.read_bytes()
                points += data.count(b"\n", offset if number == segment else 0)
    for db in (p for p in files if p.suffix == ".db"):
        with contextlib.closing(sqlite3.connect(db)) as conn:
            points += conn.execute(
                "SELECT COUNT(*) FROM metrics WHERE space_id IS NOT NULL"
            ).fetchone()[0]
    return {"disk_mib": disk / 2**20, "kept_points": points}


MEASUREMENTS: dict[str, Callable[[Bench, str], dict[str, Any]]] = {
    "cost": Bench.cost,
    "paced": Bench.paced,
    "slow": Bench.slow,
    "deliver": Bench.deliver,
    "outage": Bench.outage,
    "cold": Bench.cold,
    "cold_local": Bench.cold_local,
    "rates": Bench.rates,
    "trainer": Bench.trainer,
    "outage_start": Bench.outage_start,  # not in the default set: see --only
}
DEFAULT = [m for m in MEASUREMENTS if m != "outage_start"]
