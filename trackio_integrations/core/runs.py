"""Runs that already exist on a target, and trackio's ``resume`` rule for continuing one by name.

``trackio.init(name=..., resume=...)`` (and the loggers built on it, such as Lightning's
``TrackioLogger``) continue a run by its name: ``"never"`` always starts a new run, ``"allow"``
continues the latest run of that name if there is one, ``"must"`` fails unless there is one. A
server or Space is asked through its HTTP API (``get_runs_for_project``). The embedded default
has no server to ask: its runs are in the project's SQLite file under ``TRACKIO_DIR`` (read
only, never locked for writing) and, not yet imported, in the inbox fragments.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import orjson

from trackio_integrations.core.target import Target, resolve_target
from trackio_integrations.core.transport import Transport
from trackio_integrations.errors import TrackioConfigError, TrackioServerError, warn_user

__all__ = [
    "RESUME_MODES",
    "Resume",
    "check_resume",
    "find_run",
    "last_step",
    "run_name",
    "run_to_resume",
]

Resume = Literal["never", "allow", "must"]
RESUME_MODES: tuple[str, ...] = ("never", "allow", "must")


def check_resume(resume: str, name: str | None) -> None:
    """Raise ``TrackioConfigError`` for a ``resume`` that cannot work, before anything starts."""
    if resume not in RESUME_MODES:
        raise TrackioConfigError(f"resume must be 'never', 'allow' or 'must', not {resume!r}.")
    if resume == "must" and not name:
        raise TrackioConfigError("resume='must' continues a run by its name: pass name=... too.")


def run_to_resume(
    project: str,
    name: str | None,
    resume: str,
    **target_options: Any,
) -> str | None:
    """The id of the run that ``resume`` continues, or None for a new run.

    With ``"allow"``, a target that cannot be asked means a new run (with a warning); with
    ``"must"`` it raises ``TrackioServerError``, and a run that does not exist raises
    ``TrackioConfigError``.
    """
    check_resume(resume, name)
    if resume == "never" or not name:
        return None
    target = resolve_target(**target_options)  # TARGET_OPTIONS, as the integrations hold them
    try:
        run_id = find_run(target, project, name)
    except (httpx.HTTPError, OSError, sqlite3.Error, TrackioServerError, ValueError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        if resume == "must":
            raise TrackioServerError(
                f"Cannot tell whether run {name!r} exists in project {project!r} on {target} "
                f"({reason}), and resume='must' continues an existing run only."
            ) from exc
        warn_user(
            f"Cannot look up run {name!r} in project {project!r} on {target} ({reason}): a new "
            "run of that name is started (resume='allow')."
        )
        return None
    if run_id is None and resume == "must":
        raise TrackioConfigError(
            f"Run {name!r} does not exist in project {project!r} on {target}; resume='must' "
            "continues an existing run only (use resume='allow' to start it if it is missing)."
        )
    return run_id


def find_run(target: Target, project: str, name: str) -> str | None:
    """The id of the latest run named ``name`` in ``project`` on ``target``, or None."""
    if target.url:
        transport = Transport(target, timeout=10.0)
        try:
            records = transport.read("get_runs_for_project", project=project)
        finally:
            transport.close()
        return _latest(records if isinstance(records, list) else [], name)
    assert target.trackio_dir is not None
    folder = Path(target.trackio_dir)
    return _in_inbox(folder / "inbox", project, name) or _in_database(
        folder / f"{_file_name(project)}.db", name
    )


def run_name(project: str, run_id: str, **target_options: Any) -> str | None:
    """The name of the run ``run_id`` on the target, so that a run continued by its id alone
    keeps its name (else the server would list it twice, under two names); None when there is no
    such run or the target cannot be asked (with a warning)."""
    target = resolve_target(**target_options)  # TARGET_OPTIONS, as the integrations hold them
    try:
        if target.url:
            transport = Transport(target, timeout=10.0)
            try:
                records = transport.read("get_runs_for_project", project=project)
            finally:
                transport.close()
            names = [
                r.get("name")
                for r in (records if isinstance(records, list) else [])
                if isinstance(r, dict) and r.get("id") == run_id
            ]
            return str(names[0]) if names and names[0] else None
        assert target.trackio_dir is not None
        folder = Path(target.trackio_dir)
        return _name_in_database(folder / f"{_file_name(project)}.db", run_id) or _name_in_inbox(
            folder / "inbox", project, run_id
        )
    except (httpx.HTTPError, OSError, sqlite3.Error, TrackioServerError, ValueError) as exc:
        warn_user(
            f"Cannot look up the name of run {run_id!r} in project {project!r} on {target} "
            f"({type(exc).__name__}): it continues under a new name."
        )
        return None


def last_step(target: Target, project: str, run_id: str) -> int | None:
    """The last step the run ``run_id`` stored on ``target`` (None: none, or cannot tell), so that
    a resumed run's points without a step continue after it, as ``trackio.init`` does."""
    try:
        if target.url:
            transport = Transport(target, timeout=10.0)
            try:
                summary = transport.read("get_run_summary", project=project, run_id=run_id)
            finally:
                transport.close()
            step = summary.get("last_step") if isinstance(summary, dict) else None
            return step if type(step) is int else None
        assert target.trackio_dir is not None
        path = Path(target.trackio_dir) / f"{_file_name(project)}.db"
        if not path.exists():
            return None
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
        try:
            row = connection.execute(
                "SELECT MAX(step) FROM metrics WHERE run_id = ?", (run_id,)
            ).fetchone()
        finally:
            connection.close()
        return int(row[0]) if row and row[0] is not None else None
    except (httpx.HTTPError, OSError, sqlite3.Error, TrackioServerError, ValueError) as exc:
        warn_user(
            f"Cannot read the last step of the resumed run ({type(exc).__name__}): a point "
            "logged without a step starts at 0."
        )
        return None


def _latest(records: list[Any], name: str) -> str | None:
    matches = [r for r in records if isinstance(r, dict) and r.get("name") == name and r.get("id")]
    matches.sort(key=lambda r: str(r.get("created_at") or ""))
    return str(matches[-1]["id"]) if matches else None


def _file_name(project: str) -> str:
    """trackio's on-disk name of a project: only ``[A-Za-z0-9_-]`` are kept."""
    return "".join(c for c in project if c.isalnum() or c in "-_").rstrip() or "default"


def _inbox_records(fragments: Iterable[Path], needle: bytes, newest_first: bool) -> Iterator[Any]:
    """The records of inbox fragments whose line holds ``needle`` (one parse per such line)."""
    for fragment in fragments:
        try:
            lines = fragment.read_bytes().splitlines()
        except OSError:
            continue  # imported (and deleted) while we looked
        for line in reversed(lines) if newest_first else lines:
            if needle not in line:
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict):
                yield record


def _in_inbox(inbox: Path, project: str, name: str) -> str | None:
    """A run still waiting in the inbox (written, not yet imported): newer than the database."""
    if not inbox.is_dir():
        return None
    fragments = sorted(inbox.glob("*/*.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True)
    for record in _inbox_records(fragments, orjson.dumps(name), newest_first=True):
        if record.get("project") == project and record.get("run") == name and record.get("run_id"):
            return str(record["run_id"])
    return None


def _name_in_database(path: Path, run_id: str) -> str | None:
    row = _first_row(path, "SELECT run_name FROM metrics WHERE run_id = ? LIMIT 1", run_id)
    return str(row[0]) if row and row[0] else None


def _name_in_inbox(inbox: Path, project: str, run_id: str) -> str | None:
    """The name of the run ``run_id`` among the points still waiting in the inbox."""
    if not inbox.is_dir():
        return None
    records = _inbox_records(inbox.glob("*/*.jsonl"), orjson.dumps(run_id), newest_first=False)
    for record in records:
        if (
            record.get("project") == project
            and record.get("run_id") == run_id
            and record.get("run")
        ):
            return str(record["run"])
    return None


def _in_database(path: Path, name: str) -> str | None:
    row = _first_row(
        path,
        "SELECT run_id, MIN(timestamp) AS created FROM metrics WHERE run_name = ? "
        "GROUP BY run_id ORDER BY created DESC LIMIT 1",
        name,
    )
    return str(row[0]) if row else None


def _first_row(path: Path, query: str, value: str) -> tuple[Any, ...] | None:
    """The first row ``query`` finds in a project's database, read-only; None where there is no
    database, or one from before run ids (nothing this client can continue)."""
    if not path.exists():
        return None
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        columns = {row[1] for row in connection.execute("PRAGMA table_info(metrics)")}
        if "run_id" not in columns:
            return None
        row: tuple[Any, ...] | None = connection.execute(query, (value,)).fetchone()
        return row
    finally:
        connection.close()
