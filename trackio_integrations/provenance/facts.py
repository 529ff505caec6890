"""Everything about a run's making that is not git: versions, packages, command, host, GPU, SLURM.

Read in the background thread (``recorder.py``), never at ``import`` or on the training path.
Only what is asked for is read from the environment (``SLURM_JOB_ID``); no other variable's
value is recorded. GPUs are asked of ``nvidia-smi`` (no CUDA context is created in the run).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
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
            import importlib.metadata  # rarely needed: most libraries have __version__

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
        "provenance/hostname": os.uname().nodename,  # gethostname()
        "provenance/platform": platform_name(),
    }
    job = environ.get("SLURM_JOB_ID")
    if job:
        facts["provenance/slurm_job_id"] = job
    facts.update(gpus(sys.modules))
    return facts


def platform_name() -> str:
    """``platform.platform()``, e.g. ``Linux-6.8.0-x86_64-with-glibc2.39``, without the
    ``uname -p`` process it starts on Linux (a short run's ``finish()`` waits for it): there the
    processor is ``unknown`` or the machine again, and either is left out of the name."""
    system, _, release, _, machine = os.uname()
    if system != "Linux":
        return platform.platform()
    libc, version = platform.libc_ver()
    name = "-".join(part.strip() for part in (system, release, machine, "with", libc + version))
    name = re.sub(r"[ /\\:;\"()]", "-", name).replace("unknown", "")
    return re.sub(r"-{2,}", "-", name).rstrip("-")


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


def installed_packages(path: Iterable[str] | None = None) -> bytes:
    """The installed distributions as ``pip freeze`` lists them: ``name==version``, or
    ``name @ url`` for one installed from a URL (credentials and path tokens removed), sorted by
    name.

    Read from the ``*.dist-info`` / ``*.egg-info`` metadata on ``sys.path`` directly, the first
    found of a name winning as for ``importlib.metadata``: importing that (and the email parser
    it reads each file with) costs more than the reading, and a short run's ``finish()`` waits.
    """
    lines: dict[str, str] = {}
    for folder in _metadata_folders(sys.path if path is None else path):
        name, version = _name_and_version(folder)
        if not name or name.lower() in lines:
            continue
        line = f"{name}=={version}"
        direct = _direct_url(folder)
        if direct is not None:
            url = clean_package_url(str(direct.get("url", "")))
            if direct.get("dir_info", {}).get("editable"):
                line = f"# editable install of {name}=={version} from {url}\n{line}"
            elif "vcs_info" in direct:
                vcs = direct["vcs_info"]
                line = f"{name} @ {vcs.get('vcs', 'git')}+{url}@{vcs.get('commit_id', '')}"
            elif url and not url.startswith("file:"):
                line = f"{name} @ {url}"
        lines[name.lower()] = line
    return "".join(lines[key] + "\n" for key in sorted(lines)).encode()


def _metadata_folders(path: Iterable[str]) -> Iterator[str]:
    for entry in path:
        try:
            names = os.listdir(entry or ".")
        except OSError:  # a zip file, a folder that is gone
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                yield os.path.join(entry or ".", name)


def _name_and_version(folder: str) -> tuple[str | None, str | None]:
    """``Name`` and ``Version`` from the metadata's header lines, read up to them only: the
    whole files hold the packages' long descriptions (megabytes for a training venv)."""
    for path in (os.path.join(folder, "METADATA"), os.path.join(folder, "PKG-INFO"), folder):
        name = version = None
        try:  # an egg-info may be a file: PKG-INFO itself (the last path)
            with open(path, "rb") as f:
                for line in f:
                    if not line.strip():  # the headers end at the first blank line
                        break
                    if line.startswith(b"Name:"):
                        name = line[5:].strip().decode(errors="replace")
                    elif line.startswith(b"Version:"):
                        version = line[8:].strip().decode(errors="replace")
                    if name and version:
                        break
        except OSError:  # not there, or a folder (IsADirectoryError): the next candidate
            continue
        if name or version:
            return name, version
    return None, None


def _direct_url(folder: str) -> dict[str, Any] | None:
    try:  # a dist-info only (an egg-info file has none: NotADirectoryError)
        with open(os.path.join(folder, "direct_url.json"), "rb") as f:
            value = json.loads(f.read())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
