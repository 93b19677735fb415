"""One file write at a time in a background thread, while the caller reads the next batch.

Writing and fsyncing a file of alerts spends its time in system calls that release the
GIL, so a sink can hand a batch to this thread and go on consuming: reading and writing
overlap, and a save runs at the speed of the slower of the two instead of their sum.

Rules kept by the caller (:class:`fink_client.sink.DiskSink`): at most one job is in
flight (it waits for the previous one before submitting the next: a bounded queue of
one batch); the offsets of a batch are stored by the caller's thread, after the job has
returned, that is once its files are renamed and fsynced, never before. The thread is a
daemon and owns no state of its own: its temporary files are registered by
:func:`fink_client.io.atomic.atomic_write` like the main thread's, so an abort
(:func:`~fink_client.io.atomic.remove_open_temps`) removes them at once.

Signals stay with the main thread: the writer thread blocks SIGINT and SIGTERM (a
signal the kernel gave it would reach Python's handler only once the main thread wakes
up), and :func:`result` waits in short slices, so that a second Ctrl-C during a write
aborts at once.
"""

from __future__ import annotations

import queue
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future, wait
from typing import Any, TypeVar

T = TypeVar("T")


class BackgroundWriter:
    """A daemon thread running submitted jobs one after the other."""

    def __init__(self, name: str = "fink-client-writer") -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue())
        self._thread: threading.Thread | None = None
        self.ident: int | None = None  # the thread's id (its temporary files' owner)

    def submit(self, job: Callable[[], T]) -> Future[T]:
        """Run ``job()`` in the thread; its result or exception comes by the future."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
            self.ident = self._thread.ident
        future: Future[T] = Future()
        self._jobs.put((future, job))
        return future

    def _run(self) -> None:
        if hasattr(signal, "pthread_sigmask"):  # the main thread's handlers get them
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        while True:
            item = self._jobs.get()
            if item is None:
                return
            future, job = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(job())
            except BaseException as exc:  # handed to the caller, who re-raises it
                future.set_exception(exc)

    def close(self) -> None:
        """Let the thread end once its last job is done (does not wait for it)."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread = None


def result(future: Future[T], slice_seconds: float = 0.2) -> T:
    """``future.result()``, waited for in slices of ``slice_seconds``: between two, the
    main thread runs the Python signal handlers that came meanwhile (a second Ctrl-C),
    which one long wait would delay until the job is done."""
    while not future.done():
        wait([future], timeout=slice_seconds)
    return future.result()


__all__ = ["BackgroundWriter", "result"]
