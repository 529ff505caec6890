"""Artifacts and project files: what a user logs, and the patient uploader that sends them.

May import: ``trackio_integrations.core`` and ``errors``. Hashing and uploading run in the
uploader's own thread with its own spool and cursor, so a gigabyte never delays the next points.

``model`` (names, ``Artifact``, ``UsedArtifact``, the request kinds) <- ``calls`` (what each client
call appends) <- ``methods`` (the client's ``log_artifact`` / ``use_artifact`` / ``save``);
``uploader`` (the thread) -> ``upload_queue`` (one request at a time) -> a store: ``server`` (a
Trackio server, blobs once) or ``local`` (trackio's own local storage through ``_trackio_local``,
run as a script from this folder: no module here may take a standard library name such as
``queue``); ``files`` hashes, snapshots and verifies the files themselves; ``paths`` names the
folders of trackio's local storage (light: the client writes provenance files there directly).
"""
