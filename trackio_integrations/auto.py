"""``import trackio_integrations.auto``: the same as ``trackio_integrations.install()``.

One line at the top of a training script (or in ``sitecustomize``) makes ``report_to="trackio"``
and ``log_with="trackio"`` use this package's integrations.
"""

from trackio_integrations.adopt.install import install

install()
