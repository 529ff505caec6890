"""What the ``Trainer``'s arguments and state mean for a Trackio run.

Beside ``callback.py`` (Trainer events to client calls): the settings a
``TrackioCallback`` resolves from itself, ``TrainingArguments`` and the environment, the run's
config, the metric names transformers' integrations use, ``log_checkpoints`` and which
checkpoint it logs, the run saved in a checkpoint, and the secrets that are not saved there.
No client and no network here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from transformers import TrainerState, TrainingArguments

from trackio_integrations.core.target import resolve_target
from trackio_integrations.errors import TrackioConfigError

# What ``Trainer`` logs once, at the end of ``train()``: a run summary, not a time series.
SUMMARY_KEYS = frozenset(
    {
        "train_runtime",
        "train_samples_per_second",
        "train_steps_per_second",
        "train_loss",
        "total_flos",
    }
)
# The keys that only that summary carries together: ``Trainer._finalize_training`` (5.x, and
# ``_inner_training_loop`` in 4.x) adds ``total_flos`` and ``train_loss`` to it and to no other
# log. A step's log may hold ``train_runtime`` and ``train_tokens_per_second`` too
# (``include_num_input_tokens_seen``), and a user's ``trainer.log({"train_loss": x})`` is a point.
_SUMMARY_MARK = frozenset({"train_loss", "total_flos"})


def is_summary(logs: Mapping[str, Any]) -> bool:
    """True for the end-of-training aggregates ``Trainer`` logs once; any other log is a point."""
    return logs.keys() >= _SUMMARY_MARK


def resolve_settings(
    args: TrainingArguments,
    project: str | None,
    name: str | None,
    space_id: str | None,
    server_url: str | None,
) -> tuple[str, str | None, str | None]:
    """(project, run name, space id) from the callback's own settings, then ``TrainingArguments``, then env.

    Raises ``TrackioConfigError`` for what cannot work, without touching the network.
    """
    project = (
        project
        or non_default(args, "project")
        or os.environ.get("TRACKIO_PROJECT")
        or getattr(args, "project", None)
    )
    if not project:
        raise TrackioConfigError(
            "No Trackio project: pass TrackioCallback(project=...), set "
            "TrainingArguments(project=...) or set TRACKIO_PROJECT."
        )
    name = name or getattr(args, "run_name", None) or None
    if name is not None and name == getattr(args, "output_dir", None):
        name = None  # transformers 4.x defaults run_name to output_dir: not a run name
    space_id = space_id or non_default(args, "trackio_space_id") or None
    if space_id and "/" not in space_id:
        raise TrackioConfigError(
            f"Trackio Space id {space_id!r} has no owner: use 'owner/name' "
            "(TrackioCallback(space_id=...), TrainingArguments.trackio_space_id or "
            "TRACKIO_SPACE_ID)."
        )
    resolve_target(server_url=server_url, space_id=space_id)
    return project, name, space_id


# Secrets given to a callback (tokens, a webhook URL, the URL with its password, a gateway's
# headers and client certificate), in memory only, for the copy that transformers rebuilds
# (``_restored=True``) from a checkpoint's secret-free state() when
# ``restore_callback_states_from_checkpoint`` is set. Keyed by (project, name, URL, Space id).
_secrets: dict[tuple[Any, ...], dict[str, Any]] = {}


def kept_secrets(key: tuple[Any, ...], restored: bool, given: dict[str, Any]) -> dict[str, Any]:
    """A callback's secrets: kept in memory for the copy restored from a checkpoint, and given
    back to that copy; never written in checkpoints."""
    if restored:
        return dict(_secrets.get(key, {}))
    kept = {name: value for name, value in given.items() if value}
    if kept:
        _secrets[key] = kept
    return kept


def log_checkpoints_setting(value: str | None) -> str | None:
    """``log_checkpoints``, else ``TRACKIO_LOG_MODEL`` (W&B's words are understood too)."""
    given = value if value is not None else os.environ.get("TRACKIO_LOG_MODEL", "")
    word = str(given).strip().lower()
    if word in ("all", "checkpoint", "checkpoints"):
        return "all"
    if word in ("end", "true", "1", "yes"):
        return "end"
    if word not in ("", "none", "false", "0", "no"):
        raise TrackioConfigError(
            f"log_checkpoints / TRACKIO_LOG_MODEL is {given!r}: use 'all', 'end' or none."
        )
    return None


def final_checkpoint(args: TrainingArguments, state: TrainerState, last: str | None) -> str | None:
    """The checkpoint ``log_checkpoints="end"`` logs: the best one when
    ``load_best_model_at_end``, else the last one saved; None if there is no such folder."""
    best = state.best_model_checkpoint if args.load_best_model_at_end else None
    final = best or last
    return final if final and os.path.isdir(final) else None


def checkpoint_metadata(state: TrainerState, folder: str) -> dict[str, Any]:
    """What a checkpoint's artifact version records about the training state."""
    return {
        "global_step": state.global_step,
        "epoch": state.epoch,
        "best_metric": state.best_metric,
        "checkpoint": os.path.basename(folder),
    }


def metric_names(logs: Mapping[str, Any]) -> dict[str, Any]:
    """Name metrics as transformers' integrations do: ``eval_x`` -> ``eval/x``,
    ``test_x`` -> ``test/x``, anything else ``x`` -> ``train/x``."""
    named = {}
    for key, value in logs.items():
        if key.startswith("eval_"):
            named["eval/" + key[5:]] = value
        elif key.startswith("test_"):
            named["test/" + key[5:]] = value
        else:
            named["train/" + key] = value
    return named


def run_config(args: TrainingArguments, state: TrainerState, model: Any) -> dict[str, Any]:
    """The run's config as the built-in callback records it: model config, then the
    ``TrainingArguments`` (tokens masked by ``to_dict``), the PEFT config and the parameter count;
    plus the hyperparameter-search trial, when there is one."""
    config: dict[str, Any] = {}
    model_config: Any = getattr(model, "config", None)
    if isinstance(model_config, dict):
        config.update(model_config)
    elif hasattr(model_config, "to_dict"):
        config.update(model_config.to_dict())
    config.update(args.to_dict())
    peft_config = getattr(model, "peft_config", None)
    if peft_config is not None:
        config["peft_config"] = peft_config
    with contextlib.suppress(AttributeError, TypeError):
        config["model/num_parameters"] = model.num_parameters()
    if getattr(state, "trial_params", None):
        config["trial_params"] = state.trial_params
        config["trial_name"] = state.trial_name
    return config


def non_default(args: Any, field_name: str) -> Any:
    """``args.<field_name>`` if the user changed it from its dataclass default, else None."""
    value = getattr(args, field_name, None)
    if dataclasses.is_dataclass(args):
        for field in dataclasses.fields(args):
            if field.name == field_name and field.default == value:
                return None
    return value


def saved_run(state: TrainerState, class_name: str) -> dict[str, str] | None:
    """The run saved by ``state()`` in the checkpoint that ``state`` was loaded from, by this
    class or the other (a script may move between ``report_to`` and ``callbacks``)."""
    stateful = getattr(state, "stateful_callbacks", None) or {}
    for name in (class_name, "TrackioCallback", "ReportToTrackioCallback"):
        saved = stateful.get(name)
        for entry in saved if isinstance(saved, list) else [saved]:
            run = entry.get("attributes", {}).get("_run") if isinstance(entry, dict) else None
            if isinstance(run, dict) and run.get("run_id"):
                return run
    return None
