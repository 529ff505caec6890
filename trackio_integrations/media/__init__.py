"""Media: the value kinds (``Image`` ... ``Markdown``) and how each becomes JSON and file bytes.

May import: ``trackio_integrations.core`` (``values``) and ``errors``; numpy, Pillow and torch only
inside the function that needs them. Knows nothing of HTTP, the spool or files on the server.

``kinds`` holds the classes a user builds; ``encode`` turns a point's media values into JSON and the
bytes to store; ``codecs`` makes those bytes (PNG, WAV, MP4) from arrays, tensors and files.
"""
