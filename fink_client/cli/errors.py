"""The exit codes of ``finkctl`` and the usage error, in one place.

Every subcommand reports a bad combination of options found after parsing by raising
:class:`UsageError`; :func:`fink_client.cli.main.main` turns it into ``finkctl: error:
...`` and :data:`EXIT_USAGE`, as argparse does for what it finds itself.
"""

from __future__ import annotations

import signal

from fink_client.errors import ConfigError

EXIT_OK = 0
#: A runtime error: bad credentials, broker unreachable, bad input, a failed write.
EXIT_RUNTIME = 1
#: A usage error: bad options or a bad combination of them (argparse's code too).
EXIT_USAGE = 2
#: Interrupted by Ctrl-C (128 + SIGINT), as a shell reports it.
EXIT_INTERRUPTED = 128 + signal.SIGINT
#: The reader of stdout went away (``| head``): 128 + SIGPIPE, as a Unix tool killed by it.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


class UsageError(ConfigError):
    """A usage error found after parsing (exit code :data:`EXIT_USAGE`)."""
