"""Turning media values into the bytes and JSON the Trackio server stores.

Each ``encode_*`` function takes one of the public values of ``media`` and returns the JSON object
trackio 0.43 writes for it (``{"_type": "trackio.image", ...}``). Files (images, audio, video) are
handed to ``store(key, data, extension)``, which keeps the bytes somewhere and returns the
``file_path`` to put in the JSON: this module knows nothing of spools, HTTP or server folders.

NumPy, PIL and torch are imported here, on first use, never at import time: a program that logs
only scalars never loads them.

This module keeps the dispatch, tables and histograms; the kinds stored as files (images, audio,
video) are encoded in ``codecs`` (re-exported here). Images are written as PNG by a small
encoder of our own (the "Sub" filter and zlib's run-length strategy): about ten times faster than
PIL's default settings, for files about as small.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from trackio_integrations.core.values import Warn, drop_unserialisable, json_safe
from trackio_integrations.media.codecs import as_numpy, is_torch
from trackio_integrations.media.codecs import audio_bytes as audio_bytes
from trackio_integrations.media.codecs import image_array as image_array
from trackio_integrations.media.codecs import image_bytes as image_bytes
from trackio_integrations.media.codecs import pcm16 as pcm16
from trackio_integrations.media.codecs import png as png
from trackio_integrations.media.codecs import video_bytes as video_bytes
from trackio_integrations.media.codecs import video_frames as video_frames
from trackio_integrations.media.kinds import (
    Audio,
    Histogram,
    Html,
    Image,
    Markdown,
    Table,
    Trace,
    Video,
    as_ours,
    is_media,
)

Store = Callable[[str, bytes, str], str]
"""``store(key, data, extension) -> file_path``; raises ``OSError`` when it cannot keep them."""

IMAGE, AUDIO, VIDEO = "trackio.image", "trackio.audio", "trackio.video"
TABLE, HISTOGRAM, MARKDOWN = "trackio.table", "trackio.histogram", "trackio.markdown"
HTML, TRACE = "trackio.html", "trackio.trace"
MAX_BINS = 512  # as trackio


def encode_point(kept: Mapping[str, Any], store: Store, warn: Warn) -> bytes:
    """The JSON of a cleaned point whose media values were kept for us (``values.Kept``).

    A list of media values under one key becomes ``key/0``, ``key/1``, ... A value that cannot be
    encoded drops only itself, with one warning naming its key.
    """
    out: dict[str, Any] = {}
    for key, value in kept.items():
        if not is_media(value):
            out[key] = value
            continue
        if isinstance(value, (list, tuple)) and all(isinstance(as_ours(v), Trace) for v in value):
            try:  # traces stay one list under their key, as trackio logs TRL's rollouts
                out[key] = [encode_value(key, v, store) for v in value]
            except Exception as exc:
                warn(f"media:{key}", f"Metric {key!r} was not logged: {exc}. The rest is kept.")
            continue
        items = (
            [(f"{key}/{i}", v) for i, v in enumerate(value)]
            if isinstance(value, (list, tuple))
            else [(key, value)]
        )
        for name, item in items:
            try:
                out[name] = encode_value(name, item, store)
            except Exception as exc:
                warn(
                    f"media:{name}",
                    f"Metric {name!r} was not logged: {exc or type(exc).__name__}. "
                    "The rest of the point is kept.",
                )
    try:
        return orjson.dumps(out)
    except (TypeError, orjson.JSONEncodeError):
        return orjson.dumps(drop_unserialisable(out, warn))


def encode_value(key: str, value: Any, store: Store) -> dict[str, Any]:
    """The stored JSON of one media value (ours, or trackio's own object of the same kind)."""
    value = as_ours(value)
    if isinstance(value, Image):
        data, ext = image_bytes(value)
        return {"_type": IMAGE, "file_path": store(key, data, ext), "caption": value.caption}
    if isinstance(value, Histogram):
        return encode_histogram(value)
    if isinstance(value, Table):
        return {"_type": TABLE, "_value": table_rows(key, value, store)}
    if isinstance(value, Markdown):
        return {"_type": MARKDOWN, "_value": value.text}
    if isinstance(value, Audio):
        data, ext = audio_bytes(value)
        return {"_type": AUDIO, "file_path": store(key, data, ext), "caption": value.caption}
    if isinstance(value, Video):
        data, ext = video_bytes(value)
        return {"_type": VIDEO, "file_path": store(key, data, ext), "caption": value.caption}
    if isinstance(value, Trace):
        return {
            "_type": TRACE,
            "messages": _nested(key, value.messages, store),
            "metadata": _nested(key, value.metadata, store),
            "spans": _nested(key, value.spans, store),
        }
    if isinstance(value, Html):
        page = html_text(value.data).encode("utf-8")
        return {"_type": HTML, "file_path": store(key, page, "html"), "caption": value.caption}
    raise TypeError(f"a {type(value).__name__} is not a media value")


def _nested(key: str, value: Any, store: Store) -> Any:
    """A trace's messages, metadata or spans: media inside are encoded, the rest made JSON-safe."""
    if isinstance(value, Mapping):
        return {str(k): _nested(key, v, store) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nested(key, v, store) for v in value]
    if is_media(value):
        return encode_value(key, value, store)
    return json_safe(value)


def html_text(data: Any) -> str:
    """The page an ``Html`` stands for: its text, an ``.html`` file's, a file-like object's, or a
    Plotly figure's (its JavaScript from the CDN, as trackio writes it)."""
    from pathlib import Path

    if hasattr(data, "to_html") and type(data).__module__.startswith("plotly"):
        return str(data.to_html(full_html=True, include_plotlyjs="cdn"))
    if hasattr(data, "read"):
        content = data.read()
        return content.decode("utf-8") if isinstance(content, bytes) else str(content)
    if isinstance(data, Path) or (
        isinstance(data, str) and data.lower().endswith((".html", ".htm")) and "<" not in data
    ):
        return Path(data).read_text(encoding="utf-8")
    if isinstance(data, str):
        return data
    raise TypeError(f"Html takes HTML text, a file, or a Plotly figure, not {type(data).__name__}")


# --- histograms ----------------------------------------------------------------------------------


def encode_histogram(histogram: Histogram) -> dict[str, Any]:
    """``{"_type": "trackio.histogram", "bins": edges, "values": counts}``."""
    if histogram.np_histogram is not None:
        counts, edges = histogram.np_histogram
        return {"_type": HISTOGRAM, "bins": _floats(edges), "values": _floats(counts)}
    bins = max(1, min(int(histogram.num_bins), MAX_BINS))
    value: Any = histogram.sequence
    if is_torch(value) and value.device.type != "cpu":
        counts, edges = torch_histogram(value, bins)
    else:
        counts, edges = numpy_histogram(as_numpy(value), bins)
    return {"_type": HISTOGRAM, "bins": edges, "values": counts}


def numpy_histogram(array: Any, bins: int) -> tuple[list[int], list[float]]:
    """Counts and edges of the finite values, as ``numpy.histogram(x, bins)`` would give them.

    Bins are equal-width, so each value's bin is one multiply away: faster than
    ``numpy.histogram`` and without its copy of the whole array when every value is finite.
    """
    import numpy as np

    data = np.asarray(array).reshape(-1)
    if data.dtype.kind not in "fiub":
        data = data.astype(np.float64)
    if data.size == 0:
        return [], []
    if data.dtype.kind == "f":
        low, high = float(data.min()), float(data.max())
        if not (math.isfinite(low) and math.isfinite(high)):
            data = data[np.isfinite(data)]
            if data.size == 0:
                return [], []
            low, high = float(data.min()), float(data.max())
    else:
        low, high = float(data.min()), float(data.max())
    low, high = _range(low, high)
    exact = np.float32 if data.dtype.kind == "f" and data.dtype.itemsize <= 4 else np.float64
    position = np.subtract(data, low, dtype=exact)
    position *= bins / (high - low)
    index = position.astype(np.uint8 if bins < 255 else np.uint16)
    counts = np.bincount(index, minlength=bins + 1)
    counts[bins - 1] += counts[bins:].sum()  # the maximum, and rounding just past it
    return counts[:bins].tolist(), _edges(low, high, bins)


def torch_histogram(tensor: Any, bins: int) -> tuple[list[int], list[float]]:
    """Counts and edges computed on the tensor's own device; only the counts are copied back."""
    import torch

    data = tensor.detach().reshape(-1)
    if data.dtype not in (torch.float32, torch.float64):
        data = data.float()
    if data.numel() == 0:
        return [], []
    low, high = torch.aminmax(data)
    low_f, high_f = torch.stack([low, high]).tolist()
    if not (math.isfinite(low_f) and math.isfinite(high_f)):
        data = data[torch.isfinite(data)]
        if data.numel() == 0:
            return [], []
        low_f, high_f = torch.stack(list(torch.aminmax(data))).tolist()
    low_f, high_f = _range(low_f, high_f)
    counts = torch.histc(data, bins=bins, min=low_f, max=high_f)
    return [int(c) for c in counts.tolist()], _edges(low_f, high_f, bins)


def _range(low: float, high: float) -> tuple[float, float]:
    return (low - 0.5, high + 0.5) if low == high else (low, high)  # as numpy does


def _edges(low: float, high: float, bins: int) -> list[float]:
    width = (high - low) / bins
    return [low + i * width for i in range(bins)] + [high]


def _floats(values: Any) -> list[Any]:
    import numpy as np

    return [json_safe(v) for v in np.asarray(values).reshape(-1).tolist()]


# --- tables --------------------------------------------------------------------------------------


def table_rows(key: str, table: Table, store: Store) -> list[dict[str, Any]]:
    """The table's rows as trackio stores them: one object per row, keyed by column name
    (or position). Cells that are images are stored as files, each in its own image object."""
    if table.dataframe is not None:
        return _dataframe_rows(key, table.dataframe, store)
    data = table.data if table.data is not None else table.rows
    if not data:
        return []
    rows: list[dict[str, Any]] = []
    columns = [str(c) for c in table.columns] if table.columns is not None else None
    for row in data:
        if isinstance(row, Mapping):
            items = [(str(k), v) for k, v in row.items()]
        elif columns is None:
            items = [(str(i), v) for i, v in enumerate(row)]
        else:
            values = list(row)
            values += [None] * (len(columns) - len(values))
            items = list(zip(columns, values, strict=False))  # extra cells by position
            items += [(str(i), v) for i, v in enumerate(values[len(columns) :], len(columns))]
        rows.append({name: _cell(key, v, store) for name, v in items})
    return rows


def _dataframe_rows(key: str, frame: Any, store: Store) -> list[dict[str, Any]]:
    """Column by column: a numeric column converts in one call, not cell by cell."""
    import numpy as np

    if not hasattr(frame, "columns") or not hasattr(frame, "iloc"):
        raise TypeError(f"dataframe= takes a pandas DataFrame, got {type(frame).__name__}")
    names = [str(c) for c in frame.columns]
    columns: list[list[Any]] = []
    for i in range(len(names)):
        series = frame.iloc[:, i]
        dtype = series.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "iub":
            columns.append(series.tolist())
        elif isinstance(dtype, np.dtype) and dtype.kind == "f":
            array = series.to_numpy()
            cells = array.tolist()
            columns.append(cells if np.isfinite(array).all() else [json_safe(c) for c in cells])
        else:
            columns.append([_cell(key, c, store) for c in series.tolist()])
    return [dict(zip(names, cells, strict=True)) for cells in zip(*columns, strict=True)]


def _cell(key: str, value: Any, store: Store) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else json_safe(value)
    if is_media(value) and not isinstance(value, (list, tuple)):  # an image, audio, a trace...
        return encode_value(key, value, store)
    if isinstance(value, (list, tuple)) and value and all(is_media(v) for v in value):
        return [encode_value(key, v, store) for v in value]
    return json_safe(value)
