"""Dead letters: points a target rejected for their content, set aside where a human finds them.

Split out of ``spool.py`` (the write-ahead queue itself). Rejected points are appended, with the
reason, to ``<root>/dead-letter/<writer>.jsonl``, and the files they reference are copied into
``<writer>.files/`` beside it; ``trackio-integrations status`` counts them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from trackio_integrations.core.records import files_of
from trackio_integrations.core.spool import Spool, private_folder, write_private

DEAD_LETTER = "dead-letter"


def dead_letter(root: Path, spool: Spool, lines: list[bytes], reason: str) -> Path:
    """Set rejected points aside, with the reason, where ``status`` and a human can find them.

    The files a rejected point references are copied beside it, into ``<writer>.files/``.
    """
    folder = root / DEAD_LETTER
    private_folder(folder)
    for line in lines:
        for file in files_of(line):
            data = spool.read_blob(str(file.get("blob")))
            if data is not None:
                files = folder / f"{spool.writer_id}.files"
                files.mkdir(exist_ok=True, mode=0o700)
                write_private(files / str(file.get("blob")), data)
    path = folder / f"{spool.writer_id}.jsonl"
    target = spool.meta.get("target", {})
    stamp = time.time()
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as out:
        for line in lines:
            try:
                entry: Any = orjson.loads(line)
            except orjson.JSONDecodeError:
                entry = line.decode("utf-8", errors="replace")
            out.write(
                orjson.dumps(
                    {
                        "target": target.get("url") or target.get("trackio_dir"),
                        "reason": reason,
                        "rejected_at": stamp,
                        "entry": entry,
                    }
                )
                + b"\n"
            )
    return path


def iter_dead_letters(root: Path) -> Iterator[tuple[Path, int]]:
    """Each dead-letter file under ``root`` and how many points it holds."""
    folder = root / DEAD_LETTER
    if folder.is_dir():
        for path in sorted(folder.glob("*.jsonl")):
            with path.open("rb") as f:
                yield path, sum(1 for _ in f)
