"""Spool records: one JSON object per line, each knowing its kind.

The line of each kind is the entry the server's matching call takes, and the record the local
inbox of ``trackio show`` imports, so the sender forwards lines without re-encoding them:

=================  =====================  =======================================================
kind               server call            fields besides project, run, run_id
=================  =====================  =======================================================
``metric``         ``bulk_log``           metrics, step, timestamp (epoch), log_id, config
``system_metric``  ``bulk_log_system``    metrics, timestamp (ISO 8601), log_id
``alert``          ``bulk_alert``         title, text, level, step, timestamp (ISO 8601), alert_id
``media``          ``bulk_upload_media``  a point whose values reference files: the fields of
                   then ``bulk_log``      ``metric`` and ``files`` (see ``RunFields.media``)
=================  =====================  =======================================================

A metric line that carries the run's config starts with ``CONFIG_PREFIX`` (the server keeps the
first config of a batch, so the sender must see them without parsing). Every other line starts
with ``{"v":1,"kind":"<kind>"``, which ``kind_of`` reads without parsing the line either.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

import orjson

METRIC, SYSTEM, ALERT = "metric", "system_metric", "alert"
MEDIA = "media"
KINDS = (METRIC, SYSTEM, ALERT, MEDIA)
CONFIG_PREFIX = b'{"config":'
# A config line that repeats a point (the server ignores fields it does not know, as "kind")
REPEAT_MARK = b'"repeat":1,'
_HEAD = b'{"v":1,"kind":"'
_HEADS = {kind: _HEAD + kind.encode() + b'"' for kind in KINDS}


class RunFields:
    """The fields every record of one run repeats, encoded once."""

    def __init__(self, project: str, run: str, run_id: str) -> None:
        self.project, self.run, self.run_id = project, run, run_id
        self._ids = orjson.dumps({"project": project, "run": run, "run_id": run_id})[1:-1]

    def metric(
        self,
        body: bytes,
        step: int | None,
        log_id: bytes,
        timestamp: float,
        config: dict[str, Any] | None = None,
        repeat: bool = False,
    ) -> bytes:
        """A point: ``body`` is the already-encoded metrics object (the hot path).

        ``repeat``: the line only carries ``config``, on a copy of a point already written (same
        ``log_id``, which the server stores once); marked so that counts leave it out.
        """
        head = CONFIG_PREFIX + orjson.dumps(config) + b"," if config is not None else b"{"
        if repeat and config is not None:
            head += REPEAT_MARK
        return (
            b'%s"v":1,"kind":"metric",%s,"timestamp":%r,"step":%s,"log_id":"%s","metrics":%s}\n'
            % (
                head,
                self._ids,
                timestamp,
                b"null" if step is None else b"%d" % step,
                log_id,
                body,
            )
        )

    def system(self, body: bytes, log_id: bytes, timestamp: float) -> bytes:
        """A system sample (CPU, memory, GPU...), plotted against time: ``body`` as in ``metric``."""
        return b'%s,%s,"timestamp":"%s","log_id":"%s","metrics":%s}\n' % (
            _HEADS[SYSTEM],
            self._ids,
            iso(timestamp).encode(),
            log_id,
            body,
        )

    def alert(
        self,
        title: str,
        text: str | None,
        level: str,
        step: int | None,
        alert_id: str,
        timestamp: float,
    ) -> bytes:
        fields = {"title": title, "text": text, "level": level, "step": step}
        fields.update(timestamp=iso(timestamp), alert_id=alert_id)
        return _HEADS[ALERT] + b"," + self._ids + b"," + orjson.dumps(fields)[1:] + b"\n"

    def media(
        self, body: bytes, step: int | None, log_id: bytes, timestamp: float, files: bytes
    ) -> bytes:
        """A point whose values reference files kept beside the spool (never with a config).

        ``files`` is the JSON list ``[{"blob": spool blob, "step": media folder, "name": file
        name}]``: the sender uploads each blob as ``<project>/<run>/<step>/<name>`` (the
        ``file_path`` in the values) before the point itself.
        """
        return b'%s,%s,"timestamp":%r,"step":%s,"log_id":"%s","files":%s,"metrics":%s}\n' % (
            _HEADS[MEDIA],
            self._ids,
            timestamp,
            b"null" if step is None else b"%d" % step,
            log_id,
            files,
            body,
        )


def files_of(line: bytes) -> list[dict[str, Any]]:
    """The files a ``media`` line references (none for any other line)."""
    if not line.startswith(_HEADS[MEDIA]):
        return []
    try:
        files = orjson.loads(line).get("files")
    except (orjson.JSONDecodeError, AttributeError):
        return []
    return [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []


def tally(lines: Iterable[bytes]) -> Counter[str]:
    """How many of ``lines`` the user logged (``logged``, ``alert``) and how many the package adds
    to them (``config``: the run's config on a line of its own, ``system``: system samples)."""
    counts: Counter[str] = Counter()
    for line in lines:
        line = line.rstrip(b"\n")
        if line.startswith(_HEADS[SYSTEM]):
            counts["system"] += 1
        elif line.startswith(_HEADS[ALERT]):
            counts["alert"] += 1
        elif line.startswith(CONFIG_PREFIX) and (
            line.endswith(b'"metrics":{}}') or b"," + REPEAT_MARK + _HEADS[METRIC][1:] in line
        ):
            counts["config"] += 1
        else:
            counts["logged"] += 1
    return counts


def describe(counts: Counter[str]) -> str:
    """A ``tally`` in the user's words, e.g. ``1 point you logged, and 2 records the package adds
    (the run's config, system samples)``."""
    logged, alerts, config, system = (counts[k] for k in ("logged", "alert", "config", "system"))
    parts = [f"{logged} point{'s' if logged != 1 else ''} you logged"]
    if alerts:
        parts.append(f"{alerts} alert{'s' if alerts != 1 else ''}")
    if config or system:
        what = ["the run's config"] * bool(config) + ["system samples"] * bool(system)
        added = config + system
        parts.append(
            f"{added} record{'s' if added != 1 else ''} the package adds ({', '.join(what)})"
        )
    return ", and ".join(parts) if len(parts) <= 2 else ", ".join(parts[:-1]) + ", and " + parts[-1]


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat()


def kind_of(line: bytes) -> str:
    """The kind of a spool line; lines from before kinds existed are points."""
    if line.startswith(_HEAD):
        end = line.find(b'"', len(_HEAD))
        kind = line[len(_HEAD) : end].decode()
        return kind if kind in KINDS else METRIC
    if line.startswith(CONFIG_PREFIX):
        return METRIC
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return METRIC
    found = record.get("kind") if isinstance(record, dict) else None
    return str(found) if found in KINDS else METRIC


def by_kind(lines: Sequence[bytes]) -> Iterator[tuple[str, list[bytes]]]:
    """Consecutive runs of lines of one kind, in order (one request each)."""
    group: list[bytes] = []
    current = ""
    for line in lines:
        kind = kind_of(line)
        if group and kind != current:
            yield current, group
            group = []
        current = kind
        group.append(line)
    if group:
        yield current, group
