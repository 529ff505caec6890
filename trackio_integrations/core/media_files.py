"""The files of media points, from the spool to where the dashboard reads them.

Where: trackio keeps a run's files in ``TRACKIO_DIR/media/<project>/<run>/<step>/<name>`` (the
project reduced to the characters trackio keeps in folder names) and a value refers to one by
``file_path``, that path relative to ``TRACKIO_DIR/media``. A file's name is its key and a digest
of its bytes, so sending it again (a retry, a replay) overwrites it instead of adding one.

How:

- ``FileStager`` (the writer, in ``log()``): writes each file into the spool and lists it for the
  point's ``files`` field.
- ``upload_files`` (a server or Space): ``POST /api/upload`` (multipart) gives the server a
  temporary copy, then ``bulk_upload_media`` moves it to its place; both before the points that
  reference the files are sent. The server remembers its temporary copies in memory only: after
  a restart it answers 400 "Uploaded file was not created by this Trackio server", which means
  "upload again", not "refused".
- ``copy_files`` (the embedded default): writes each file into ``TRACKIO_DIR/media`` (aside, then
  renamed), where ``trackio show`` finds it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from trackio_integrations.core.records import MEDIA, kind_of
from trackio_integrations.core.spool import Spool
from trackio_integrations.core.transport import Outcome, Reply, Transport

ReadBlob = Callable[[str], "bytes | None"]
UPLOAD_BYTES = 32 << 20  # per POST /api/upload
UPLOAD_FILES = 64
NOT_OURS = "not created by this Trackio server"
_OK = Reply(Outcome.OK, 200, "")


def project_folder(project: str) -> str:
    """The folder trackio keeps a project's files in: letters, digits, ``-`` and ``_`` only."""
    kept = "".join(c for c in project if c.isalnum() or c in "-_").rstrip()
    return kept or "default"


class FileStager:
    """Writes the files of one point into the spool; ``store`` is ``encoding.Store``."""

    def __init__(self, spool: Spool, project: str, run: str, step: int) -> None:
        self.spool = spool
        self.step = step
        self.prefix = f"{project_folder(project)}/{run}/{step}"
        self.files: list[dict[str, Any]] = []

    def store(self, key: str, data: bytes, extension: str) -> str:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("._")[:48] or "file"
        import hashlib  # here: a run without media never needs it (nor OpenSSL, which it loads)

        digest = hashlib.blake2b(data, digest_size=8).hexdigest()
        name = f"{slug}-{digest}.{extension}"
        blob = self.spool.write_blob(data, f".{extension}")
        self.files.append({"blob": blob, "step": self.step, "name": name})
        return f"{self.prefix}/{name}"

    def files_json(self) -> bytes:
        return orjson.dumps(self.files)


def _media_records(lines: Sequence[bytes]) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in lines if kind_of(line) == MEDIA]


def _missing(name: str) -> Reply:
    return Reply(Outcome.REJECTED, None, f"the file {name} of this point is missing from the spool")


def upload_files(transport: Transport, lines: Sequence[bytes], read: ReadBlob) -> Reply:
    """Upload every file the ``media`` lines among ``lines`` reference, before the lines.

    A file lost from the spool makes its point REJECTED, so the sender sets that point aside
    alone; the files of the other points go up again on the next try.
    """
    wanted: list[tuple[dict[str, Any], dict[str, Any], bytes]] = []
    for record in _media_records(lines):
        for entry in record.get("files") or []:
            data = read(str(entry.get("blob")))
            if data is None:
                return _missing(str(entry.get("name")))
            wanted.append((record, entry, data))
    group: list[tuple[dict[str, Any], dict[str, Any], bytes]] = []
    size = 0
    for item in wanted:
        if group and (size + len(item[2]) > UPLOAD_BYTES or len(group) >= UPLOAD_FILES):
            reply = _upload_group(transport, group)
            if reply.outcome is not Outcome.OK:
                return reply
            group, size = [], 0
        group.append(item)
        size += len(item[2])
    return _upload_group(transport, group) if group else _OK


def _upload_group(
    transport: Transport, group: list[tuple[dict[str, Any], dict[str, Any], bytes]]
) -> Reply:
    reply = _OK
    for _ in range(2):  # a second time only when the server forgot the first upload
        reply, paths = transport.upload([(str(entry["name"]), data) for _, entry, data in group])
        if reply.outcome is not Outcome.OK:
            return reply
        moves = [
            {
                "project": record["project"],
                "run": record["run"],
                "run_id": record.get("run_id"),
                "step": entry["step"],
                "relative_path": None,
                "uploaded_file": {"path": path, "orig_name": entry["name"]},
            }
            for (record, entry, _), path in zip(group, paths, strict=True)
        ]
        reply = transport.call("uploads:/api/bulk_upload_media", orjson.dumps(moves))
        if NOT_OURS not in reply.message:
            return reply
    return Reply(Outcome.RETRY, reply.status, reply.message)


def copy_files(trackio_dir: Path, record: dict[str, Any], read: ReadBlob) -> Reply:
    """Write the files of one ``media`` record into ``trackio_dir/media`` (whole, by rename)."""
    folder = trackio_dir / "media" / project_folder(str(record.get("project")))
    for entry in record.get("files") or []:
        data = read(str(entry.get("blob")))
        if data is None:
            return _missing(str(entry.get("name")))
        name = Path(str(entry.get("name"))).name
        target = folder / str(record.get("run")) / str(entry.get("step")) / name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{name}.{os.urandom(4).hex()}.tmp")
            temporary.write_bytes(data)
            os.replace(temporary, target)
        except OSError as exc:
            return Reply(Outcome.RETRY, None, f"cannot write {target}: {exc}")
    return _OK
