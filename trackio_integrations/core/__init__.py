"""The delivery core: where a run goes, how its values are cleaned, kept on disk and sent.

May import: the standard library, httpx and orjson, ``trackio_integrations.errors`` and
``redaction``; nothing else of this package (the client, media, monitoring, artifacts and the
integrations all build on it).

The one-way walk of a point: ``values`` (cleaned) -> ``records`` (a line of a kind) -> ``spool``
(segments on disk, media bytes beside them in ``blobs``) -> ``sender`` (a ``worker`` thread) ->
``transport`` (HTTP to the ``target``, reached as ``access`` says: CAs, a client certificate, a
gateway's headers) -> the server. ``writer`` opens a run's spool and adopts the
spools of dead writers; ``process`` holds what all clients of one process share (fork and exit);
``runs`` finds the run to resume; ``dead_letter`` keeps what a server can never take; ``mode``
says whether a run sends (online), only keeps (offline) or does nothing (disabled).
"""
