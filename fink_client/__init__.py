"""fink-client: receive, decode, store and look at the alert streams of the Fink broker.

Quick start::

    from fink_client.consumer import AlertConsumer
    with AlertConsumer(["rrlyr"], {"username": "...", "password": "...",
                                   "group_id": "my_group"}) as consumer:
        topic, alert = consumer.poll(timeout=5)

``fink_client.decode(value, key=None, schema=None)`` decodes a payload obtained
elsewhere; ``fink_client.io`` reads and writes alert files.
"""

import logging

from fink_client.errors import AlertError
from fink_client.wire import Decoder, decode

#: The package version, its one source: pyproject.toml reads it (setuptools dynamic attr).
__version__ = "0.1.0"

# A library logs, the application decides where logs go (no "last resort" stderr output).
logging.getLogger("fink_client").addHandler(logging.NullHandler())

__all__ = ["AlertError", "Decoder", "__version__", "decode"]
