"""Everything about a run's making that is not git: versions, packages, command, host, GPU, SLURM.

Read in the background thread (``recorder.py``), never at ``import`` or on the training path.
Only what is asked for is read from the environment (``SLURM_JOB_ID``); no other variable's
value is recorded. GPUs are asked of ``nvidia-smi`` (no CUDA context is created in the run).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterable
from typing import Any

from trackio_integrations.provenance.redact import clean_package_url, redact_command

# The libraries whose version matters for a training run, recorded when the run has imported them.
LIBRARIES = {
    "torch": "torch",
    "transformers": "transformers",
    "lightning": "lightning",
    "pytorch_lightning": "pytorch-lightning",
    "accelerate": "accelerate",
    "trl": "trl",
    "peft": "peft",
    "datasets": "datasets",
    "trackio": "trackio",
    "trackio_integrations": "trackio-integrations",
}


def command_line(argv: list[str], secrets: Iterable[str]) -> str:
    """``python <argv...>`` as a shell would take it, its secrets replaced by ``***``."""
    return shlex.join(["python", *redact_command(argv, secrets)])


def versions(modules: dict[str, Any]) -> dict[str, str]:
    """``provenance/versions/<distribution>`` of the libraries above that are imported."""
    found: dict[str, str] = {}
    for module, dist in LIBRARIES.items():
        if module not in modules:
            continue
        version = getattr(modules[module], "__version__", None)
        if not isinstance(version, str):
            try:
                version = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
        found[f"provenance/versions/{dist}"] = version
    return found


def machine(environ: dict[str, str] | os._Environ[str]) -> dict[str, Any]:
    """Python, host, OS, the SLURM job, and the GPUs (model, driver, CUDA) where present."""
    facts: dict[str, Any] = {
        "provenance/python": platform.python_version(),
        "provenance/hostname": socket.gethostname(),
        "provenance/platform": platform.platform(),
    }
    job = environ.get("SLURM_JOB_ID")
    if job:
        facts["provenance/slurm_job_id"] = job
    facts.update(gpus(sys.modules))
    return facts


def gpus(modules: dict[str, Any]) -> dict[str, Any]:
    """GPU models and driver from ``nvidia-smi``, the CUDA version torch was built with."""
    facts: dict[str, Any] = {}
    torch = modules.get("torch")
    cuda = getattr(getattr(torch, "version", None), "cuda", None) if torch is not None else None
    if isinstance(cuda, str):
        facts["provenance/cuda"] = cuda
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return facts
    try:
        done = subprocess.run(
            [smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return facts
    rows = [line.split(",") for line in done.stdout.splitlines() if "," in line]
    if done.returncode == 0 and rows:
        facts["provenance/gpu/count"] = len(rows)
        facts["provenance/gpu/model"] = rows[0][0].strip()
        facts["provenance/gpu/driver"] = rows[0][1].strip()
    return facts


def installed_packages() -> bytes:
    """The installed distributions as ``pip freeze`` lists them: ``name==version``, or
    ``name @ url`` for one installed from a URL (credentials and path tokens removed), sorted by
    name."""
    lines: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if not name or name.lower() in lines:
            continue
        line = f"{name}=={dist.version}"
        direct = _direct_url(dist)
        if direct is not None:
            url = clean_package_url(str(direct.get("url", "")))
            if direct.get("dir_info", {}).get("editable"):
                line = f"# editable install of {name}=={dist.version} from {url}\n{line}"
            elif "vcs_info" in direct:
                vcs = direct["vcs_info"]
                line = f"{name} @ {vcs.get('vcs', 'git')}+{url}@{vcs.get('commit_id', '')}"
            elif url and not url.startswith("file:"):
                line = f"{name} @ {url}"
        lines[name.lower()] = line
    return "".join(lines[key] + "\n" for key in sorted(lines)).encode()


def _direct_url(dist: importlib.metadata.Distribution) -> dict[str, Any] | None:
    try:
        text = dist.read_text("direct_url.json")
        value = json.loads(text) if text else None
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
