"""The oracle: what a framework recorded that it logged, against what the server holds.

Each framework keeps its own record of what it logged (``trainer.state.log_history``, a
``CSVLogger``'s ``metrics.csv``, the calls a script made to ``accelerator.log``). A test turns that
record into points (name, step, value) and ``assert_run_holds`` compares them with the run's metric
rows, read back through the server's HTTP API: every point there, at its step, once, with its value
as trackio stores it, and nothing else. Reads poll until the server has caught up (the last points
may still be in flight), then the differences are reported in full.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tests.harness import TrackioServer

# What every metric row has that no framework logged: the row's step and its time.
ROW_FIELDS = frozenset({"step", "timestamp"})


@dataclass(frozen=True)
class Point:
    name: str
    step: int
    value: Any


# trackio's reserved metric keys; it stores them (and any key starting with ``__``) as ``__<key>``.
RESERVED = frozenset({"project", "run", "timestamp", "step", "time", "metrics"})


def stored_name(key: str) -> str:
    return f"__{key}" if key in RESERVED or key.startswith("__") else key


def stored(value: Any) -> Any:
    """A value as trackio stores it and reads it back: NaN and infinities become null, numpy and
    tensor scalars plain numbers."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def same(expected: Any, actual: Any) -> bool:
    expected = stored(expected)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected == actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return math.isclose(expected, actual, rel_tol=1e-6, abs_tol=1e-12)
    return bool(expected == actual)


def server_points(server: TrackioServer, project: str, run_id: str) -> list[Point]:
    rows = server.api("get_logs", project, None, run_id) or []
    return [
        Point(name, int(row["step"]), value)
        for row in rows
        for name, value in row.items()
        if name not in ROW_FIELDS
    ]


def no_extra(name: str) -> bool:
    return False


def differences(
    expected: Iterable[Point], actual: Iterable[Point], extra: Callable[[str], bool] = no_extra
) -> list[str]:
    """What is wrong with ``actual`` against ``expected``: missing, duplicated, misvalued or
    unexpected (name, step) points; ``extra`` names the metrics that are there by design beside
    the framework's record (e.g. what TRL logs through trackio itself). The same (name, step) may
    be expected more than once (an ``evaluate()`` after training at the step the last evaluation
    ran): the server may hold it once per time it was logged, each time with one of the logged
    values."""
    wanted: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for point in expected:
        wanted[(point.name, point.step)].append(point.value)
    held: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for point in actual:
        held[(point.name, point.step)].append(point.value)
    problems = []
    for key, values in sorted(wanted.items()):
        got = held.get(key, [])
        if not got:
            problems.append(f"missing {key[0]!r} at step {key[1]} (logged {values!r})")
            continue
        if len(got) > len(values):
            problems.append(f"{key[0]!r} at step {key[1]} stored {len(got)} times: {got!r}")
        for value in got:
            if not any(same(v, value) for v in values):
                problems.append(f"{key[0]!r} at step {key[1]} is {value!r}, logged {values!r}")
    for key in sorted(held.keys() - wanted.keys()):
        if extra(key[0]):
            continue
        problems.append(f"unexpected {key[0]!r} at step {key[1]}: {held[key]!r}")
    return problems


def assert_run_holds(
    server: TrackioServer,
    project: str,
    run_id: str,
    expected: Iterable[Point],
    timeout: float = 15.0,
    extra: Callable[[str], bool] = no_extra,
) -> None:
    """The run's metric rows are exactly ``expected`` (waiting up to ``timeout`` for the points
    still in flight); else an AssertionError that lists every difference."""
    expected = list(expected)
    deadline = time.monotonic() + timeout
    while True:
        problems = differences(expected, server_points(server, project, run_id), extra)
        if not any(p.startswith("missing") for p in problems) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert not problems, f"{len(problems)} differences in run {run_id}:\n" + "\n".join(problems)


def run_ids(server: TrackioServer, project: str) -> list[str]:
    return [str(r["id"]) for r in server.api("get_runs_for_project", project) or []]


# --- transformers ---------------------------------------------------------------------------

# The end-of-training log of ``train()``: the run's summary (config "summary"), not points.
TRAIN_END_KEYS = frozenset({"train_loss", "total_flos"})


def transformers_name(key: str) -> str:
    """docs/transformers.md: ``eval_x`` -> ``eval/x``, ``test_x`` -> ``test/x``, else ``train/x``."""
    for split in ("eval", "test"):
        if key.startswith(split + "_"):
            return f"{split}/{key[len(split) + 1 :]}"
    return f"train/{key}"


def is_train_end(entry: Mapping[str, Any]) -> bool:
    return entry.keys() >= TRAIN_END_KEYS


def log_history_points(log_history: Iterable[Mapping[str, Any]]) -> list[Point]:
    """Every (key, step, value) of ``trainer.state.log_history`` but its end-of-training summary."""
    return [
        Point(transformers_name(key), int(entry["step"]), value)
        for entry in log_history
        if not is_train_end(entry)
        for key, value in entry.items()
        if key != "step"
    ]


def train_end_summary(log_history: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    ends = [entry for entry in log_history if is_train_end(entry)]
    if not ends:
        return None
    return {key: value for key, value in ends[-1].items() if key != "step"}


def in_config(value: Any) -> Any:
    """A value nested in a run's config as trackio stores it: ``serialize_values`` writes NaN and
    the infinities as strings at every depth and ``deserialize_values`` reads back only the top
    level, so under ``"summary"`` they stay ``"NaN"``, ``"Infinity"``, ``"-Infinity"``."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def summary_differences(expected: Mapping[str, Any], held: Mapping[str, Any] | None) -> list[str]:
    if held is None:
        return ["no summary in the run's config"]
    problems = [f"summary lacks {key!r}" for key in expected if key not in held]
    problems += [
        f"summary {key!r} is {held[key]!r}, logged {value!r}"
        for key, value in expected.items()
        if key in held and not same(in_config(value), held[key])
    ]
    return problems


def count(points: Iterable[Point]) -> Counter[tuple[str, int]]:
    return Counter((p.name, p.step) for p in points)
