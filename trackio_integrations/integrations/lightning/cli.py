"""``LightningCLI``: what a ``TrackioLogger`` named in its YAML needs from the CLI building it.

Beside ``logger.py`` (Lightning events to client calls). A logger named as
``trainer.logger: {class_path: trackio_integrations.TrackioLogger, init_args: {...}}`` is built
by the CLI, which hands it nothing but its init arguments; the CLI's full configuration (and
``default_root_dir``, where its ``SaveConfigCallback`` writes ``config.yaml``) is read from the
``LightningCLI`` instance a few frames up, as accelerate's ``init_trackers`` arguments are.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from types import FrameType
from typing import Any

import orjson

from trackio_integrations.provenance.redact import secret_name
from trackio_integrations.redaction import MASK, strip_credentials

_SECRET_KEYS = {"headers", "alert_webhook", "client_cert"}  # secrets not named like one


def building_cli() -> Any:
    """The ``LightningCLI`` (of either Lightning package) instantiating classes now, or None."""
    frame: FrameType | None = sys._getframe(1)
    for _ in range(64):  # jsonargparse instantiates a few dozen frames below the CLI
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if owner is not None and any(c.__name__ == "LightningCLI" for c in type(owner).__mro__):
            return owner
        frame = frame.f_back
    return None


def cli_config(cli: Any) -> dict[str, Any] | None:
    """The CLI's whole configuration of the subcommand being run (``fit``, ...), as the
    ``config.yaml`` it saves, with secrets masked (a token given in the YAML or on the command
    line is no more stored in the run than on disk). None if it cannot be read."""
    try:
        subcommand = getattr(cli, "subcommand", None)
        config = cli.config.get(str(subcommand), cli.config) if subcommand else cli.config
        parser = cli._parser(subcommand)
        dumped = orjson.loads(parser.dump(config, format="json", skip_none=False))
    except Exception:
        return None
    return _masked(dumped) if isinstance(dumped, dict) else None


def cli_root(cli: Any) -> str:
    """Where the CLI's Trainer keeps its files: ``trainer.default_root_dir``, else the working
    directory (the Trainer's own default)."""
    try:
        subcommand = getattr(cli, "subcommand", None)
        config = cli.config.get(str(subcommand), cli.config) if subcommand else cli.config
        root = config.get("trainer", {}).get("default_root_dir")
    except Exception:
        root = None
    return os.fspath(root) if root else os.getcwd()


def save_config_in_run_folder(cli: Any, root: str, project: str, run: str) -> None:
    """Have the CLI's ``SaveConfigCallback`` write ``config.yaml`` in the run's folder
    (``<root>/<project>/<run>``, beside its checkpoints), not in ``root`` itself, where it would
    replace the ``config.yaml`` the user passed with ``--config`` (the working directory is the
    root unless ``default_root_dir`` is set) or another run's. A run continued under its name
    replaces its own. What the script set in ``save_config_kwargs`` is kept."""
    kwargs = getattr(cli, "save_config_kwargs", None)
    if not isinstance(kwargs, dict):
        return
    kwargs = {"overwrite": True, **kwargs}
    if "config_filename" not in kwargs:
        folder = os.path.join(project, run)
        try:  # the callback creates the root only; its file must have a folder to go to
            os.makedirs(os.path.join(root, folder), exist_ok=True)
        except OSError:
            return
        kwargs["config_filename"] = os.path.join(folder, "config.yaml")
    cli.save_config_kwargs = kwargs


def _masked(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            key: MASK
            if item is not None and (secret_name(str(key)) or key in _SECRET_KEYS)
            else _masked(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_masked(item) for item in value]
    if isinstance(value, str) and "://" in value:
        return strip_credentials(value)
    return value
