"""Every kind of value a training loop logs becomes what the server stores; nothing raises."""

from __future__ import annotations

import argparse
import dataclasses
import enum
import math
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from trackio_integrations.core.values import _MAX_DEPTH, clean_metrics, encode_metrics, json_safe


def clean(metrics: dict[Any, Any]) -> tuple[dict[str, Any], list[str]]:
    warned: list[str] = []
    return clean_metrics(metrics, lambda key, message: warned.append(message)), warned


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.5, 1.5),
        (3, 3),
        (True, True),
        ("text", "text"),
        (None, None),
        (np.float32(0.5), 0.5),
        (np.float64(2.25), 2.25),
        (np.int64(7), 7),
        (np.bool_(True), True),
        (np.array(4.0), 4.0),
        (np.array([5]), 5),
        (torch.tensor(1.25), 1.25),
        (torch.tensor([2]), 2),
        (torch.tensor(3.0, dtype=torch.bfloat16), 3.0),
        (torch.tensor(True), True),
        (Decimal("0.5"), 0.5),
        (Fraction(1, 4), 0.25),
        (2**70, float(2**70)),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        (np.float32("nan"), "NaN"),
        (torch.tensor(float("inf")), "Infinity"),
    ],
)
def test_scalars_become_plain_values(value: Any, expected: Any) -> None:
    out, warned = clean({"v": value})
    assert out == {"v": expected} and type(out["v"]) is type(expected)
    assert warned == []


@pytest.mark.parametrize(
    "bad", [[1, 2], torch.ones(3), np.zeros((2, 2)), object(), {1, 2}, b"bytes", 1 + 2j]
)
def test_a_bad_value_drops_that_key_only_with_a_warning_naming_it(bad: Any) -> None:
    out, warned = clean({"good": 1.0, "bad": bad})
    assert out == {"good": 1.0}
    assert len(warned) == 1 and "'bad'" in warned[0]


def test_keys_become_strings_and_reserved_keys_are_renamed_like_trackio() -> None:
    out, warned = clean({1: 1, ("a", 2): 2, "step": 3, "time": 4, "__x": 5, "ok": 6})
    assert out == {"1": 1, "('a', 2)": 2, "__step": 3, "__time": 4, "____x": 5, "ok": 6}
    assert len(warned) == 3  # one per reserved key


def test_nested_mappings_flatten_with_a_slash() -> None:
    out, _ = clean({"train": {"loss": torch.tensor(0.5), "lr": {"group0": 1e-3}}, "eval/acc": 0.9})
    assert out == {"train/loss": 0.5, "train/lr/group0": 1e-3, "eval/acc": 0.9}


def test_the_fast_path_gives_the_same_bytes_as_the_slow_path() -> None:
    import orjson

    seen: set[tuple[Any, ...]] = set()
    cases: list[dict[Any, Any]] = [
        {"a": 1.0, "b": 2},
        {"a": float("nan")},
        {"step": 1},
        {"a": None, "b": "null"},
        {"n": {"x": 1}},
        {1: 2},
        {"t": torch.tensor(1.0)},
        {"a": 1.0, "b": 2},  # second time: served from the known-key cache
    ]
    for case in cases:
        fast = encode_metrics(case, lambda k, m: None, seen)
        slow = orjson.dumps(clean(case)[0])
        assert fast == slow, case


def test_a_lone_surrogate_string_drops_only_that_key() -> None:
    warned: list[str] = []
    body = encode_metrics({"ok": 1, "bad": "\ud800"}, lambda k, m: warned.append(m), set())
    assert body == b'{"ok":1}'
    assert warned and "'bad'" in warned[0]


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Args:
    lr: float = 1e-3
    path: Path = Path("/data/x")
    color: Color = Color.RED


def test_config_values_are_made_json_safe_and_keep_nesting() -> None:
    ns = argparse.Namespace(batch=8, inner=Args())
    out = json_safe(
        {
            "args": Args(),
            "ns": ns,
            "tensor": torch.tensor([1.0, 2.0]),
            "big": torch.zeros(10_000),
            "scalar": np.float32(0.5),
            "nan": float("nan"),
            "tuple": (1, Path("a")),
            "obj": object,
        }
    )
    assert out["args"] == {"lr": 1e-3, "path": "/data/x", "color": "red"}
    assert out["ns"] == {"batch": 8, "inner": {"lr": 1e-3, "path": "/data/x", "color": "red"}}
    assert out["tensor"] == [1.0, 2.0]
    assert out["big"].startswith("Tensor(shape=[10000]")
    assert out["scalar"] == 0.5 and out["nan"] == "NaN"
    assert out["tuple"] == [1, "a"]
    assert isinstance(out["obj"], str)
    import orjson

    orjson.dumps(out)  # everything serialises


def test_objects_with_to_dict_and_omegaconf() -> None:
    from omegaconf import OmegaConf

    class WithToDict:
        def to_dict(self) -> dict[str, Any]:
            return {"hidden": 32}

    conf = OmegaConf.create({"model": {"dim": 4}, "ref": "${model.dim}"})
    assert json_safe({"c": WithToDict(), "o": conf}) == {
        "c": {"hidden": 32},
        "o": {"model": {"dim": 4}, "ref": 4},
    }


def test_json_safe_cuts_a_cycle_at_a_bounded_depth_and_keeps_what_is_beside_it() -> None:
    loop: dict[str, Any] = {"lr": 0.1}
    loop["self"] = loop
    out = json_safe(loop)
    import orjson

    orjson.dumps(out)  # serialises: no cycle left
    levels = []
    node: Any = out
    while isinstance(node, dict):
        levels.append(node)
        node = node["self"]
    assert len(levels) == _MAX_DEPTH + 1  # bounded: the recursion stopped at the limit
    assert all(level["lr"] == 0.1 for level in levels[:-1])  # values beside the cycle kept
    assert node == repr(loop)  # where it stopped, the object is shown as Python prints it


def test_nan_check_is_not_fooled_by_float_equality() -> None:
    out, _ = clean({"x": -0.0, "y": 1e308, "z": math.pi})
    assert out == {"x": -0.0, "y": 1e308, "z": math.pi}


def test_an_omegaconf_config_with_missing_or_unresolvable_values_is_kept() -> None:
    from omegaconf import OmegaConf

    conf = OmegaConf.create({"a": "???", "b": "${nowhere.x}", "c": {"d": 1}})
    out = json_safe({"cfg": conf})
    assert out == {"cfg": {"a": "???", "b": "${nowhere.x}", "c": {"d": 1}}}
