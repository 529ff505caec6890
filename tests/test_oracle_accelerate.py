"""The oracle for Accelerate: every ``accelerator.log(values, step)`` a script made is on the
server, each value at its step (a point without a step follows the run's highest, as trackio
numbers it), nested keys joined with ``/``, and nothing else."""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.harness import TrackioServer
from tests.oracle import Point, assert_run_holds, run_ids, stored_name
from trackio_integrations import TrackioTracker

EXAMPLES = int(os.environ.get("ORACLE_EXAMPLES", "5"))


@pytest.fixture(autouse=True)
def fresh_accelerate_state() -> Iterator[None]:
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def flat(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested keys joined with ``/``, after trackio's renaming of the reserved top-level keys."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}/{key}" if prefix else stored_name(key)
        if isinstance(value, Mapping):
            out.update(flat(value, name))
        else:
            out[name] = value.item() if isinstance(value, torch.Tensor) else value
    return out


NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.integers(-1000, 1000),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
VALUE = st.one_of(NUMBER, NUMBER.map(lambda v: torch.tensor(float(v))))
NAME = st.sampled_from(["loss", "lr", "grad norm", "step", "time", "__private"])  # some reserved
VALUES = st.dictionaries(
    NAME, st.one_of(VALUE, st.dictionaries(NAME, VALUE, min_size=1, max_size=2)), min_size=1
)
CALLS = st.lists(
    st.tuples(VALUES, st.one_of(st.none(), st.integers(0, 12))), min_size=1, max_size=8
)


@pytest.mark.timeout(120 + 60 * EXAMPLES)  # each example is a short training run
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(calls=CALLS)
def test_the_server_holds_every_accelerator_log_the_script_made(
    calls: list[tuple[dict[str, Any], int | None]], shared_server: TrackioServer
) -> None:
    project = f"oracle-{uuid.uuid4().hex[:10]}"
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    accelerator = Accelerator(cpu=True, log_with=TrackioTracker(server_url=shared_server.write_url))
    accelerator.init_trackers(project, config={"lr": 0.1})
    expected: list[Point] = []
    highest: int | None = None
    for values, step in calls:
        accelerator.log(values, step=step)
        at = step if step is not None else (0 if highest is None else highest + 1)
        highest = at if highest is None else max(highest, at)
        expected += [Point(k, at, v) for k, v in flat(values).items()]
    accelerator.end_training()
    (run_id,) = run_ids(shared_server, project)
    assert_run_holds(shared_server, project, run_id, expected)
