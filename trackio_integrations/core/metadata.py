"""What a run records about itself besides its config, decided once for every entry point.

trackio's own client keeps three reserved keys in each run's config, and the dashboard reads them:
``_Group`` (its Group-by view), ``_Username`` and ``_Created`` (ISO 8601, UTC). ``TrackioClient``
records them the same way, so the three integrations and trackio's module API get them alike.
Here too: the run name of a hyperparameter-search trial, and whether an exception that ended a
run means it was pruned (Optuna's ``TrialPruned``) rather than failed.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "GROUP_ENV",
    "RESERVED_KEYS",
    "is_pruned",
    "resolve_group",
    "run_metadata",
    "search_name",
    "trial_fields",
    "trial_run",
    "trial_run_name",
]

GROUP_ENV = "TRACKIO_GROUP"
RESERVED_KEYS = ("_Username", "_Created", "_Group")


def resolve_group(group: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """The run's group: ``group``, else ``TRACKIO_GROUP``, else None (no group)."""
    env = os.environ if env is None else env
    return group or env.get(GROUP_ENV) or None


def run_metadata(group: str | None, config: Mapping[str, Any]) -> dict[str, Any]:
    """``_Username``, ``_Created`` and ``_Group`` for a run whose config is ``config``.

    A config that already holds them (a run reopened with the config it had) keeps its user and
    creation time; its group changes only when ``group`` is given.
    """
    return {
        "_Username": config.get("_Username") or _username(),
        "_Created": config.get("_Created") or datetime.now(timezone.utc).isoformat(),
        "_Group": group if group is not None else config.get("_Group"),
    }


def trial_run_name(base: str, number: int | str) -> str:
    """The run of trial ``number`` of a search named ``base``: ``<base>-trial-<number>``."""
    return f"{base}-trial-{number}"


def is_pruned(exc: BaseException | None) -> bool:
    """Whether ``exc`` is Optuna's ``TrialPruned`` (by name: Optuna need not be installed)."""
    return exc is not None and any(
        cls.__name__ == "TrialPruned" and cls.__module__.startswith("optuna")
        for cls in type(exc).__mro__
    )


def _username() -> str | None:
    # trackio asks the Hub who the token belongs to (a request at start); the login name needs
    # none and tells the users of a shared server apart as well.
    try:
        return getpass.getuser() or None
    except Exception:  # no login name (a container with an unknown uid)
        return None


def search_name(run_name: str | None, study_name: str | None) -> str:
    """The name a hyperparameter search's trials share (their group, their names' stem).

    The run name, else the Optuna study's name: the same in every process of a distributed
    search, and a new one for each new study. Optuna's generated ``no-name-<uuid>`` is shortened
    to ``search-<8 hex digits>``.
    """
    if run_name:
        return run_name
    study = study_name or "search"
    return f"search-{study[8:16]}" if study.startswith("no-name-") else study


def trial_fields(trial: Any) -> tuple[int | None, dict[str, Any], str | None]:
    """(number, parameters, study name) of an Optuna trial, read without importing Optuna.

    A ``FixedTrial`` (a distributed search's other ranks) has no study; a plain dict (another
    backend's trial) is its parameters.
    """
    if isinstance(trial, Mapping):
        return None, dict(trial), None
    number = getattr(trial, "number", None)
    params = getattr(trial, "params", None)
    study = getattr(getattr(trial, "study", None), "study_name", None)
    return (
        number if isinstance(number, int) else None,
        dict(params) if isinstance(params, Mapping) else {},
        study if isinstance(study, str) else None,
    )


def trial_run(
    trial: Any, run_name: str | None, group: str | None
) -> tuple[str, str, dict[str, Any]]:
    """(run name, group, config) of the run of an Optuna ``trial``.

    Named ``<run name>-trial-<number>`` (see ``search_name`` for a search with no run name), in
    the group ``group``, else ``TRACKIO_GROUP``, else the search's name; the config holds the
    trial's number and parameters.
    """
    number, params, study = trial_fields(trial)
    base = search_name(run_name, study)
    name = trial_run_name(base, number) if number is not None else base
    config = {"trial_number": number, "trial_params": params}
    return name, resolve_group(group) or base, config
