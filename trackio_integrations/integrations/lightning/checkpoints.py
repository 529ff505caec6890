"""What ``TrackioLogger`` reads from Lightning's ``ModelCheckpoint``: records, files, metadata.

Beside ``logger.py`` (Lightning's calls to client calls). These functions
only read a checkpoint callback's attributes (by name, so either Lightning package's
``ModelCheckpoint`` works) and the files' modification times; they import no Lightning.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any


def checkpoint_record(callback: Any) -> dict[str, Any]:
    """What ``ModelCheckpoint`` knows, under its own attribute names; the top k best first."""
    mode = getattr(callback, "mode", "min")
    top_k = sorted(
        (getattr(callback, "best_k_models", None) or {}).items(),
        key=lambda item: float(item[1]),
        reverse=mode == "max",
    )
    return {
        "best_model_path": getattr(callback, "best_model_path", "") or None,
        "best_model_score": getattr(callback, "best_model_score", None),
        "last_model_path": getattr(callback, "last_model_path", "") or None,
        "mode": mode,
        "top_k": [{"path": path, "score": score} for path, score in top_k],
    }


def checkpoints_to_log(
    callback: Any, every: bool, logged: dict[str, float]
) -> list[tuple[str, Any, list[str]]]:
    """(path, score, aliases) of the checkpoints to log: the last and the best, and with
    ``every`` the other top-k ones too; only files new or rewritten since ``logged`` saw them."""
    best = getattr(callback, "best_model_path", "") or ""
    scores: dict[str, Any] = {}
    if every:
        scores.update(getattr(callback, "best_k_models", None) or {})
    last = getattr(callback, "last_model_path", "") or ""
    if last:
        scores[last] = getattr(callback, "current_score", None)
    if best:
        scores[best] = getattr(callback, "best_model_score", None)
    found = []
    for path, score in scores.items():
        with contextlib.suppress(OSError):
            mtime = os.stat(path).st_mtime
            if logged.get(path) != mtime:
                found.append((mtime, path, score))
    found.sort()
    for mtime, path, _ in found:
        logged[path] = mtime
    return [(path, score, ["best"] if path == best else []) for _, path, score in found]


def checkpoint_metadata(callback: Any, path: str, score: Any) -> dict[str, Any]:
    """What an artifact version of a checkpoint records: its score, file name and the
    callback's settings."""
    settings = ("monitor", "mode", "save_last", "save_top_k", "save_weights_only")
    return {
        "score": score.item() if hasattr(score, "item") else score,
        "original_filename": os.path.basename(path),
        # a weakref proxy from Lightning: __class__ is the callback's own class
        callback.__class__.__name__: {
            k: getattr(callback, k) for k in settings if hasattr(callback, k)
        },
    }
