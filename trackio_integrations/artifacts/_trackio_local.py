"""Run by ``local.py`` with an interpreter that has ``trackio``: stdin a JSON request,
stdout a JSON answer. Standalone on purpose (standard library and trackio only), so it also
works with the interpreter of a ``trackio`` installed beside this package rather than with it.

It calls trackio's own local storage, the code ``trackio.log_artifact`` / ``use_artifact`` run
for a local project, so the SQLite database ``trackio show`` reads is written as trackio writes
it: its schema, its versioning and aliases, and its cross-process lock.
"""

import json
import sys
from typing import Any


def main() -> None:
    request = json.load(sys.stdin)
    try:
        from trackio import cas, utils
        from trackio.sqlite_storage import SQLiteStorage
    except ImportError as exc:  # pragma: no cover - depends on the interpreter found
        print(json.dumps({"ok": False, "retry": True, "error": f"cannot import trackio: {exc}"}))
        return
    op = request.pop("op")
    data: Any = None
    zero: Any = "0" * 64  # any digest: its folder is the project's blob folder
    try:
        if op == "layout":
            project = request["project"]
            data = {
                "blobs": str(cas.blob_path(project, zero).parent.parent),
                "files": str(utils.project_media_dir(project) / "files"),
            }
        elif op == "commit":
            cas.validate_artifact_name(request["name"])
            request["aliases"] = cas.validate_aliases(request["aliases"])
            digests = [entry["digest"] for entry in request["manifest"]]
            present = SQLiteStorage.list_artifact_blobs_present(request["project"], digests)
            missing = sorted(set(digests) - present)
            if missing:
                raise ValueError(f"Manifest references blobs not on server: {missing[:5]}")
            data = SQLiteStorage.commit_artifact_version(**request)
        elif op == "resolve":
            data = SQLiteStorage.get_artifact_manifest(
                request["project"], request["name"], request["spec"]
            )
        elif op == "use":
            SQLiteStorage.insert_run_artifact_link(direction="input", **request)
        else:
            raise ValueError(f"unknown operation {op!r}")
    except (ValueError, TypeError, KeyError) as exc:
        print(json.dumps({"ok": False, "retry": False, "error": str(exc)}))
        return
    except Exception as exc:  # a locked database, a full disk: worth another try later
        print(json.dumps({"ok": False, "retry": True, "error": f"{type(exc).__name__}: {exc}"}))
        return
    print(json.dumps({"ok": True, "data": data}, default=str))


if __name__ == "__main__":
    main()
