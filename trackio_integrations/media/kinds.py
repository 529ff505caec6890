"""Media values: ``Image``, ``Audio``, ``Video``, ``Table``, ``Histogram``, ``Markdown``, ``Html``,
``Trace``.

The same constructors as trackio's classes of the same names, so migrating is a change of import:

>>> from trackio_integrations import Histogram, Image, Table
>>> run.log({"samples": Image(batch[0], caption="epoch 3"),  # doctest: +SKIP
...          "preds": Table(dataframe=df), "weights": Histogram(model.fc.weight)}, step=step)

Constructing one only keeps its input (nothing is imported, copied or encoded); ``log()`` encodes
it (``encoding``) and writes its bytes beside the spool before returning. A value that cannot be
encoded then drops only itself, with one warning naming its key. trackio's own objects
(``trackio.Image(...)`` ...) may be logged too: they are read without importing trackio.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["Audio", "Histogram", "Html", "Image", "Markdown", "Table", "Trace", "Video"]


class Media:
    """What every value with a file (image, audio, video) keeps: its input and caption."""

    def __init__(self, value: Any, caption: str | None = None) -> None:
        self.value = value
        self.caption = None if caption is None else str(caption)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({_describe(self.value)}, caption={self.caption!r})"


class Image(Media):
    """An image: a file path, a uint8 NumPy array (HxW or HxWxC), a PIL image, or a torch tensor
    (CxHxW, float in [0, 1] or uint8, on any device). Stored as PNG unless given as a file.

    >>> Image(torch.rand(3, 64, 64), caption="sample 0")  # doctest: +SKIP
    """


class Audio(Media):
    """Sound: a file path, or samples (NumPy array or tensor, ``(samples,)`` or
    ``(samples, channels)``) with ``sample_rate``. Float samples are peak-normalised to 16-bit
    PCM, as trackio does. ``format`` is ``"wav"`` (default) or ``"mp3"`` (needs ffmpeg).

    >>> Audio(np.sin(np.linspace(0, 880 * np.pi, 16000)), sample_rate=16000)  # doctest: +SKIP
    """

    def __init__(
        self,
        value: Any,
        caption: str | None = None,
        sample_rate: int | None = None,
        format: str | None = None,
    ) -> None:
        super().__init__(value, caption)
        if not isinstance(value, (str, Path)) and sample_rate is None:
            raise ValueError("Audio samples need sample_rate=...")
        self.sample_rate = sample_rate
        self.format = format


class Video(Media):
    """A video: a file path, or uint8 frames TxCxHxW (a batch BxTxCxHxW is tiled into a grid)
    with ``fps`` (default 24). ``format`` is ``"gif"`` (default), ``"mp4"`` or ``"webm"`` (these
    two need ffmpeg).

    >>> Video(frames, fps=8, caption="rollout")  # doctest: +SKIP
    """

    def __init__(
        self,
        value: Any,
        caption: str | None = None,
        fps: int | None = None,
        format: str | None = None,
    ) -> None:
        super().__init__(value, caption)
        self.fps = fps
        self.format = format


class Table:
    """Rows of numbers, strings and images: a pandas ``dataframe``, or ``data`` (rows as lists,
    with ``columns``, or as dicts). ``rows`` is read as ``data`` when ``data`` is not given (as
    W&B does); ``optional``, ``allow_mixed_types`` and ``log_mode`` are accepted and ignored, as
    trackio ignores them.

    >>> Table(columns=["input", "prediction"], data=[["2+2", "4"], ["3*3", "9"]])  # doctest: +SKIP
    """

    def __init__(
        self,
        columns: Sequence[Any] | None = None,
        data: Sequence[Any] | None = None,
        dataframe: Any | None = None,
        rows: Sequence[Any] | None = None,
        optional: bool | list[bool] = True,
        allow_mixed_types: bool = False,
        log_mode: str | None = "IMMUTABLE",
    ) -> None:
        self.columns = columns
        self.data = data
        self.dataframe = dataframe
        self.rows = rows

    def __repr__(self) -> str:
        if self.dataframe is not None:
            return f"Table(dataframe={_describe(self.dataframe)})"
        return f"Table(columns={self.columns!r}, rows={len(self.data or self.rows or [])})"


class Histogram:
    """The distribution of a sequence, array or tensor (``num_bins`` equal bins, at most 512,
    over the finite values), or a precomputed ``np_histogram=(counts, edges)``.

    A tensor's histogram is computed on its own device; only the counts are copied back.

    >>> Histogram(model.fc.weight)  # doctest: +SKIP
    """

    def __init__(
        self,
        sequence: Any | None = None,
        np_histogram: tuple[Any, Any] | None = None,
        num_bins: int = 64,
    ) -> None:
        if sequence is None and np_histogram is None:
            raise ValueError("Histogram needs a sequence or np_histogram=(counts, edges)")
        if sequence is not None and np_histogram is not None:
            raise ValueError("Histogram takes a sequence or np_histogram, not both")
        self.sequence = sequence
        self.np_histogram = np_histogram
        self.num_bins = num_bins

    def __repr__(self) -> str:
        return f"Histogram({_describe(self.sequence)}, num_bins={self.num_bins})"


class Markdown:
    """A Markdown report, shown in the dashboard's Reports tab.

    >>> Markdown("## Epoch 3\\nValidation accuracy went **up**.")  # doctest: +SKIP
    """

    def __init__(self, text: str = "") -> None:
        if not isinstance(text, str):
            raise ValueError("Markdown text must be a string")
        self.text = text

    def __repr__(self) -> str:
        return f"Markdown({self.text[:40]!r})"


class Html:
    """An HTML page, shown in the dashboard's Media tab: raw HTML, a path to an ``.html`` file,
    a file-like object, or a Plotly figure (drawn with Plotly's JavaScript from its CDN).

    >>> Html("<h1>Results</h1><p>accuracy <b>0.93</b></p>")  # doctest: +SKIP
    >>> Html(plotly.express.line(x=[1, 2, 3], y=[4, 5, 6]))  # doctest: +SKIP
    """

    def __init__(self, data: Any, caption: str | None = None) -> None:
        self.data = data
        self.caption = None if caption is None else str(caption)

    def __repr__(self) -> str:
        return f"Html({_describe(self.data)}, caption={self.caption!r})"


class Trace:
    """A conversation or an agent's request, shown in the dashboard's Traces tab: OpenAI-style
    ``messages`` (``{"role": ..., "content": ...}``), optional ``metadata`` and execution
    ``spans`` (dicts with ``id``, ``name``, ``kind``...), as trackio's ``Trace``. Images in them
    are stored as files.

    >>> Trace(messages=[{"role": "user", "content": "2+2?"},  # doctest: +SKIP
    ...                 {"role": "assistant", "content": "4"}], metadata={"reward": 1.0})
    """

    def __init__(
        self,
        messages: Sequence[Mapping[str, Any]],
        metadata: Mapping[str, Any] | None = None,
        spans: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        if not isinstance(messages, (list, tuple)) or not all(
            isinstance(m, Mapping) for m in messages
        ):
            raise TypeError("Trace messages must be a list of dicts")
        if spans is not None and (
            not isinstance(spans, (list, tuple)) or not all(isinstance(s, Mapping) for s in spans)
        ):
            raise TypeError("Trace spans must be a list of dicts")
        self.messages = [dict(m) for m in messages]
        self.metadata = dict(metadata) if metadata is not None else {}
        self.spans = [dict(s) for s in spans] if spans is not None else []

    def __repr__(self) -> str:
        return f"Trace(messages={len(self.messages)}, spans={len(self.spans)})"


MEDIA_TYPES = (Media, Table, Histogram, Markdown, Html, Trace)
_TRACKIO_CLASSES = {
    "TrackioImage",
    "TrackioAudio",
    "TrackioVideo",
    "TrackioHtml",
    "Table",
    "Histogram",
    "Markdown",
    "Trace",
}


def is_media(value: Any) -> bool:
    """A value of this module, trackio's own, or a non-empty list of them."""
    if isinstance(value, MEDIA_TYPES) or _is_trackio(value):
        return True
    if isinstance(value, (list, tuple)) and value:
        return all(isinstance(v, MEDIA_TYPES) or _is_trackio(v) for v in value)
    return False


def as_ours(value: Any) -> Any:
    """trackio's object as the value of this module it stands for; anything else unchanged.

    Read through the attributes trackio 0.43 keeps them in; trackio is never imported here.
    """
    if not _is_trackio(value):
        return value
    name = type(value).__name__
    if name == "TrackioImage":
        return Image(value._value, value.caption)
    if name == "TrackioAudio":
        return Audio(value._value, value.caption, value._sample_rate, value._format)
    if name == "TrackioVideo":
        return Video(value._value, value.caption, value._fps, value._format)
    if name == "Table":  # rows as dicts (trackio reads a dataframe= into them)
        return Table(data=value.data)
    if name == "TrackioHtml":  # the page trackio already rendered (a figure, a file...)
        return Html(value._html, value.caption)
    if name == "Trace":
        return Trace(value.messages, value.metadata, value.spans)
    if name == "Histogram":
        return Histogram(np_histogram=(value.histogram, value.bins))
    return Markdown(value.text)


def _is_trackio(value: Any) -> bool:
    kind = type(value)
    return kind.__name__ in _TRACKIO_CLASSES and kind.__module__.startswith("trackio.")


def _describe(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"<{type(value).__name__} {tuple(shape)}>"
    if isinstance(value, (str, Path)):
        return repr(str(value))
    return f"<{type(value).__name__}>"


def each(
    kind: type[Media], values: Any, options: Mapping[str, Any], batch: bool = False
) -> list[Media]:
    """``[kind(value, **its options), ...]``, the way W&B's loggers take several values: a list
    (or, with ``batch``, anything iterable such as an NxCxHxW tensor). An option given as a list
    has one item per value; any other is shared by all. Never raises: an option ``kind`` does
    not take, or a value it refuses, is left out with a warning."""
    from trackio_integrations.errors import warn_user

    iterable = batch and hasattr(values, "__iter__") and not isinstance(values, (str, Path))
    items = list(values) if isinstance(values, (list, tuple)) or iterable else [values]
    accepted = set(inspect.signature(kind).parameters) - {"value"}
    ignored = sorted(set(options) - accepted)
    if ignored:
        warn_user(f"{kind.__name__} ignores the option(s) {ignored}.")
    out: list[Media] = []
    for i, value in enumerate(items):
        own = {}
        for name, option in options.items():
            if name not in accepted:
                continue
            if isinstance(option, (list, tuple)):
                if len(option) != len(items):
                    warn_user(f"{name}= has {len(option)} items for {len(items)} values: ignored.")
                    continue
                option = option[i]
            own[name] = option
        try:
            out.append(kind(value, **own))
        except Exception as exc:
            warn_user(f"{kind.__name__} #{i} was not logged: {exc}")
    return out
