"""Turning what users log into what the Trackio server stores.

Metrics (``clean_metrics``), the rules:

- Python, NumPy and torch scalars (0-d or one-element tensors/arrays) become plain numbers;
  bools, strings and None pass as they are.
- NaN, Infinity and -Infinity travel as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``,
  as trackio's own client sends them.
- Non-string keys become strings. trackio's reserved keys (``project, run, timestamp, step, time,
  metrics`` and any key starting with ``__``) are renamed to ``__<key>``, as trackio renames them.
- Nested mappings are flattened with ``/``: ``{"train": {"loss": 1}}`` is logged as ``train/loss``,
  the separator the dashboard groups by.
- Anything else (lists, multi-element tensors, objects) drops that key only, with one warning
  naming it, unless ``keep(value)`` says another encoder takes it (media values, see
  ``encoding``): then it is kept as it is. Cleaning never raises.

Config (``json_safe``) keeps nesting and makes every value JSON-safe instead of dropping it.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import math
import numbers
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any, overload

import orjson

from trackio_integrations.errors import warn_user

Warn = Callable[[str, str], None]
"""``warn(key, message)``: the caller decides how often a message with that key is shown."""

RESERVED_KEYS = frozenset({"project", "run", "timestamp", "step", "time", "metrics"})
_INF = math.inf
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # what JSON libraries round-trip exactly
_DROP = object()
_MAX_DEPTH = 32
_MAX_LIST_IN_CONFIG = 1000
_PLAIN_ONLY = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class Kept(dict[str, Any]):
    """A cleaned point holding values that ``keep`` kept for another encoder."""


def clean_metrics(
    metrics: Mapping[Any, Any], warn: Warn, keep: Callable[[Any], bool] | None = None
) -> dict[str, Any]:
    """Return a flat ``{str: JSON scalar}`` dict following the module rules."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if type(key) is not str:
            key = str(key)
        if key in RESERVED_KEYS or key.startswith("__"):
            warn(
                f"reserved:{key}",
                f"Metric key {key!r} is reserved by Trackio; it is logged as '__{key}'.",
            )
            key = "__" + key
        kind = type(value)
        # The common kinds are checked by exact type first: this loop is on the training hot path.
        if kind is float:
            if value != value or value == _INF or value == -_INF:
                value = _special_float(value)
        elif kind is int:
            if not _INT_MIN <= value <= _INT_MAX:
                value = float(value)
        elif kind is str or kind is bool or value is None:
            pass
        elif isinstance(value, Mapping):
            _flatten_into(out, key, value, warn, 1, keep)
            continue
        else:
            scalar = _scalar(value)
            if scalar is _DROP:
                if keep is None or not keep(value):
                    _warn_dropped(warn, key, value)
                    continue
            else:
                value = scalar
        out[key] = value
    return out


def _flatten_into(
    out: dict[str, Any],
    prefix: str,
    mapping: Mapping[Any, Any],
    warn: Warn,
    depth: int,
    keep: Callable[[Any], bool] | None = None,
) -> None:
    for key, value in mapping.items():
        name = f"{prefix}/{key}"
        if isinstance(value, Mapping) and depth < _MAX_DEPTH:
            _flatten_into(out, name, value, warn, depth + 1, keep)
            continue
        scalar = _scalar(value)
        if scalar is not _DROP:
            out[name] = scalar
        elif keep is not None and keep(value):
            out[name] = value
        else:
            _warn_dropped(warn, name, value)


def _scalar(value: Any) -> Any:
    """A JSON scalar for ``value``, or ``_DROP``."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, float):
        value = float(value)
        return value if math.isfinite(value) else _special_float(value)
    if isinstance(value, int):
        value = int(value)
        return value if _INT_MIN <= value <= _INT_MAX else float(value)
    # NumPy scalars and arrays, torch tensors: one element only, found by duck typing so that
    # neither library is imported here.
    item = getattr(value, "item", None)
    if callable(item) and _one_element(value):
        try:
            inner = item()
        except Exception:
            return _DROP
        return _DROP if inner is value else _scalar(inner)
    if isinstance(value, numbers.Integral):
        return _scalar(int(value))
    if isinstance(value, numbers.Number):  # Fraction, Decimal; complex numbers are dropped
        try:
            return _scalar(float(value))  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            return _DROP
    return _DROP


def _one_element(value: Any) -> bool:
    numel = getattr(value, "numel", None)
    if callable(numel):
        try:
            return bool(numel() == 1)
        except Exception:
            return False
    size = getattr(value, "size", None)
    return isinstance(size, int) and size == 1


def _special_float(value: float) -> str:
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _warn_dropped(warn: Warn, key: str, value: Any) -> None:
    warn(
        f"drop:{key}",
        f"Metric {key!r} was not logged: a {type(value).__name__} is not a scalar "
        "(log numbers, bools, strings, one-element tensors, or wrap it in Image, Table, "
        "Histogram, ... from trackio_integrations). The rest of the point is kept.",
    )


@overload
def encode_metrics(
    metrics: Mapping[Any, Any], warn: Warn, plain_keys: set[tuple[Any, ...]]
) -> bytes: ...


@overload
def encode_metrics(
    metrics: Mapping[Any, Any],
    warn: Warn,
    plain_keys: set[tuple[Any, ...]],
    keep: Callable[[Any], bool] | None,
) -> bytes | Kept: ...


def encode_metrics(
    metrics: Mapping[Any, Any],
    warn: Warn,
    plain_keys: set[tuple[Any, ...]],
    keep: Callable[[Any], bool] | None = None,
) -> bytes | Kept:
    """``clean_metrics`` then JSON, with a fast path for the usual flat dict of plain numbers.

    The fast path lets the JSON encoder do the type checks in C: it refuses non-native types and
    non-string keys, and any ``null`` or nested object in its output sends the point down the
    slow path, and so does a list: lists are not scalars (see the module's rules). ``plain_keys``
    remembers key sets already seen to need no renaming. When ``keep``
    kept a value, the cleaned point is returned unencoded, as ``Kept``, for its encoder.
    """
    try:
        # Dates and dataclasses refused too: only JSON's own scalars may skip the cleaning.
        body = orjson.dumps(metrics, option=_PLAIN_ONLY)
    except (TypeError, orjson.JSONEncodeError):
        body = b""
    # A nested object, a list (``[4, 5]`` is no scalar) or a NaN (``null``): the slow path decides.
    if body and b"null" not in body and b"{" not in body[1:] and b"[" not in body:
        keys = tuple(metrics)
        if keys in plain_keys:
            return body
        if not any(key in RESERVED_KEYS or key.startswith("__") for key in keys):
            if len(plain_keys) < 64:
                plain_keys.add(keys)
            return body
    clean = clean_metrics(metrics, warn, keep)
    if keep is not None and any(keep(value) for value in clean.values()):
        return Kept(clean)
    try:
        return orjson.dumps(clean)
    except (TypeError, orjson.JSONEncodeError):
        return orjson.dumps(drop_unserialisable(clean, warn))


def drop_unserialisable(metrics: dict[str, Any], warn: Warn) -> dict[str, Any]:
    """Slow path for the rare value the JSON encoder still refuses (e.g. a lone surrogate)."""
    kept: dict[str, Any] = {}
    for key, value in metrics.items():
        try:
            orjson.dumps({key: value})
        except (TypeError, orjson.JSONEncodeError):
            _warn_dropped(warn, key, value)
            continue
        kept[key] = value
    return kept


def json_safe(obj: Any, _depth: int = 0) -> Any:
    """A JSON-safe copy of a config value: nesting kept, nothing raised, nothing silently lost.

    Dataclasses, ``argparse.Namespace`` and objects with ``to_dict()`` become dicts; paths,
    enums, dates and unknown objects become strings; tensors and arrays become lists (small)
    or a short description (large).

    >>> json_safe({"lr": 1e-3, "path": PurePath("/data"), "nan": float("nan")})
    {'lr': 0.001, 'path': '/data', 'nan': 'NaN'}
    """
    if _depth > _MAX_DEPTH:
        return repr(obj)
    depth = _depth + 1
    if obj is None or type(obj) is str or type(obj) is bool:
        return obj
    if isinstance(obj, enum.Enum):
        return json_safe(obj.value, depth)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, (int, float)) or _is_scalar_array(obj):
        scalar = _scalar(obj)
        return repr(obj) if scalar is _DROP else scalar
    if type(obj).__module__.startswith("omegaconf"):  # before Mapping: DictConfig is one
        return json_safe(_omegaconf_container(obj), depth)
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v, depth) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [json_safe(v, depth) for v in obj]
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
        return obj.isoformat()
    if isinstance(obj, _dt.timedelta):
        return obj.total_seconds()
    if isinstance(obj, bytes):
        return obj.decode("utf-8", errors="replace")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        return json_safe(fields, depth)
    tolist = getattr(obj, "tolist", None)
    if callable(tolist) and hasattr(obj, "shape"):
        return _array_summary(obj, tolist, depth)
    for method in ("to_dict", "to_container"):
        fn = getattr(obj, method, None)
        if callable(fn):
            try:
                return json_safe(fn(), depth)
            except Exception:
                break
    if type(obj).__module__ == "argparse" and hasattr(obj, "__dict__"):
        return json_safe(vars(obj), depth)  # argparse.Namespace
    return str(obj)


def _omegaconf_container(obj: Any) -> Any:
    """Resolved where it can be; ``???`` and unresolvable ``${...}`` kept as written."""
    from omegaconf import OmegaConf

    for resolve in (True, False):
        try:
            return OmegaConf.to_container(obj, resolve=resolve, throw_on_missing=False)
        except Exception:
            continue
    return str(obj)


def _is_scalar_array(obj: Any) -> bool:
    return hasattr(obj, "shape") and callable(getattr(obj, "item", None)) and _one_element(obj)


def _array_summary(obj: Any, tolist: Callable[[], Any], depth: int) -> Any:
    try:
        size = int(obj.numel()) if callable(getattr(obj, "numel", None)) else int(obj.size)
    except Exception:
        size = _MAX_LIST_IN_CONFIG + 1
    if size <= _MAX_LIST_IN_CONFIG:
        try:
            return json_safe(tolist(), depth)
        except Exception:
            pass
    return f"{type(obj).__name__}(shape={list(obj.shape)}, dtype={getattr(obj, 'dtype', '?')})"


def as_config(value: Any) -> dict[str, Any]:
    """``value`` as a run config: a JSON-safe dict (anything else under the key ``value``)."""
    if value is None:
        return {}
    safe = json_safe(value)
    if isinstance(safe, dict):
        return safe
    warn_user(
        f"config must be a mapping (or dataclass, Namespace, ...), got {type(value).__name__}; "
        "it is stored under the key 'value'."
    )
    return {"value": safe}
