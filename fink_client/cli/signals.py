"""Graceful stop for long-running commands (``stream``, ``transfer``).

The first SIGINT/SIGTERM asks the command to finish what it is writing and stop cleanly
(its offsets committed); a second one aborts at once. The abort exits the process with
status 130 from the handler itself: raising KeyboardInterrupt there could land inside a C
extension writing a file (pyarrow, fastavro) and come out as a ``SystemError``. Nothing
more is committed; the temporary files this process is writing are removed (a later run
also removes leftovers), so what was not saved comes again on the next run.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from typing import Any

from fink_client.cli.errors import EXIT_INTERRUPTED
from fink_client.io.atomic import remove_open_temps


class Stopper:
    """Context manager installing the two-step SIGINT/SIGTERM handler.

    ``command`` names the command in the messages, ``finishing`` says what the first
    signal lets it finish, ``on_stop`` (optional) is called on the first signal.
    """

    def __init__(self, command: str, finishing: str,
                 on_stop: Callable[[], None] | None = None) -> None:
        self.command = command
        self.finishing = finishing
        self.on_stop = on_stop
        self.signal: str | None = None
        self._old: dict[int, Any] = {}

    def __call__(self, signum: int, frame: Any) -> None:
        if self.signal is not None:
            remove_open_temps()
            with contextlib.suppress(OSError):
                os.write(2, f"\nfinkctl {self.command}: aborted; nothing more committed (the "
                            "alerts not yet saved come again next run)\n".encode())
            os._exit(EXIT_INTERRUPTED)
        self.signal = signal.Signals(signum).name
        # os.write, not sys.stderr: the signal may arrive while the main thread is inside
        # sys.stderr.write (the status line), and a buffered stream is not reentrant.
        with contextlib.suppress(OSError):
            os.write(2, f"\nfinkctl {self.command}: {self.signal}: {self.finishing} "
                        "(Ctrl-C again to abort)\n".encode())
        if self.on_stop is not None:
            self.on_stop()

    def __enter__(self) -> Stopper:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def stopped(self) -> bool:
        """True once a signal asked to stop."""
        return self.signal is not None
