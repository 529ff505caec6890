"""Property-based: whatever mapping a user hands ``log()``, it never raises, and every finite
scalar arrives as given (renamed only where trackio renames a reserved key)."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import TOKEN, TrackioServer
from trackio_integrations import TrackioClient
from trackio_integrations.core.values import RESERVED_KEYS, encode_metrics

# Each dropped value warns once, by design: thousands of examples would print thousands of lines.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SCALARS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(),  # NaN and the infinities included
    st.booleans(),
    st.none(),
    st.text(max_size=20),
)
ODD = st.one_of(
    st.lists(st.integers(), max_size=3),
    st.tuples(st.floats(), st.floats()),
    st.binary(max_size=4),
    st.complex_numbers(),
    st.sets(st.integers(), max_size=2),
    st.integers(min_value=2**64),  # beyond what JSON keeps exactly
    st.builds(object),
)
VALUES = st.recursive(
    st.one_of(SCALARS, ODD),
    lambda inner: st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
KEYS = st.text(max_size=12).filter(lambda k: "/" not in k)  # "/" is the nesting separator
POINTS = st.dictionaries(KEYS, VALUES, max_size=8)


def _is_finite_scalar(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    if kind is int:
        return -(2**63) <= value <= 2**64 - 1
    return kind is bool or kind is str


def _name(key: str, point: dict[str, Any]) -> str | None:
    """The key a value is stored under, or None where two keys would share a name."""
    if key in RESERVED_KEYS or key.startswith("__"):
        renamed = "__" + key
        return None if renamed in point else renamed
    return key


@settings(max_examples=400, deadline=None)
@given(POINTS)
def test_every_finite_scalar_is_encoded_as_given(point: dict[str, Any]) -> None:
    body = encode_metrics(point, lambda key, message: None, set())
    stored = orjson.loads(body)
    assert isinstance(stored, dict)
    for key, value in point.items():
        name = _name(key, point)
        if name is not None and _is_finite_scalar(value):
            assert name in stored
            assert stored[name] == value and type(stored[name]) is type(value)
    for value in stored.values():  # nothing else: no list, no object, no raw non-scalar
        assert value is None or type(value) in (int, float, bool, str)


def test_log_never_raises_whatever_it_is_given() -> None:
    run = TrackioClient("property", "p", system_metrics=False)  # the embedded default

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.one_of(POINTS, st.dictionaries(st.integers(), SCALARS, max_size=3)), st.integers())
    def log(point: dict[Any, Any], step: int) -> None:
        run.log(point, step=step)  # never raises: a bad value drops itself only

    log()
    assert run.finish(timeout=30) is True


FLAT = st.dictionaries(
    st.from_regex(r"\Am_[a-z0-9]{1,6}\Z"),
    st.one_of(
        st.integers(min_value=-(2**53), max_value=2**53),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
        st.text(max_size=12),
        st.lists(st.integers(), max_size=2),  # dropped, the rest of the point kept
    ),
    min_size=1,
    max_size=6,
)


def test_every_finite_scalar_arrives_at_a_real_server(
    shared_server: TrackioServer, project: str
) -> None:
    runs = iter(range(1000))

    @settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(FLAT, min_size=3, max_size=6))
    def roundtrip(points: list[dict[str, Any]]) -> None:
        name = f"run-{next(runs)}"
        run = TrackioClient(
            project, name, server_url=shared_server.url, write_token=TOKEN, system_metrics=False
        )
        for step, point in enumerate(points):
            run.log(point, step=step)
        assert run.finish(timeout=60) is True
        rows = {row["step"]: row for row in shared_server.wait_for_logs(project, name, 1)}
        for step, point in enumerate(points):
            for key, value in point.items():
                if _is_finite_scalar(value):
                    assert rows[step][key] == value and type(rows[step][key]) is type(value)
                else:
                    assert key not in rows.get(step, {})

    roundtrip()
