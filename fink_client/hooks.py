"""Alert hooks: run your command, or call a webhook, for every alert, at least once.

A *hook* is what should happen to each alert: :class:`ExecHook` runs a command with the
alert as one JSON line on stdin (or, ``batch=True``, once per batch with one JSON line per
alert), :class:`WebhookHook` POSTs the alert's summary as JSON with a ``text`` field that
Slack and Mattermost incoming webhooks display, :class:`CallableHook` calls a Python
function. A :class:`HookRunner` runs one hook in a worker thread fed by a bounded queue
(the consumer waits when the hook falls behind, so memory stays bounded), retrying a
failure a bounded number of times with exponential backoff.

Delivery rule (at least once): the offset of an alert is stored only after its hook
*succeeded* (exit status 0, HTTP 2xx, no exception) or, once the retries are spent, after
the alert and the reason are durably in the dead-letter folder. Without a dead-letter
folder a hook that keeps failing stops the stream with :class:`HookError`, and that alert
and every later one are delivered again on the next run with the same group. A crash or
``kill -9`` at any moment therefore loses nothing, but **a hook may see an alert twice**:
the alerts whose hook ran after the last commit (every ``auto.commit.interval.ms``, 5 s by
default, and on a clean stop) run again after a restart. Make hooks idempotent (key on
``candid`` for ZTF, ``diaSourceId``/``alertId`` for Rubin). A hook so slow that the consumer
cannot come back to Kafka within ``max.poll.interval.ms`` (5 min) makes it leave its group:
its partitions go elsewhere and their unfinished alerts are delivered again (duplicates,
never a loss).

The alert JSON is :mod:`fink_client.io.jsonlines`'s encoding (bytes as base64, NaN as
``"NaN"``, exact 64-bit integers); webhook summaries are :func:`fink_client.table.alert_fields`
plus topic, partition and offset.

>>> from fink_client.hooks import ExecHook, run_hooks
>>> run_hooks(["rrlyr"], config, ExecHook("python notify.py"),
...           dead_letter="dead/", idle_timeout=60)          # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import queue
import signal
import string
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fink_client.consumer import AlertConsumer, Delivery
from fink_client.errors import AlertError, ConfigError
from fink_client.io.deadletter import DeadLetter
from fink_client.io.jsonlines import encode_alert, to_jsonable
from fink_client.survey import LSST, MAIN_FINK_FIELDS, ZTF
from fink_client.table import alert_fields, alert_row

log = logging.getLogger(__name__)

TP = tuple[str, int]

__all__ = [
    "CallableHook", "ExecHook", "Hook", "HookError", "HookRunner", "HookSink", "Template",
    "WebhookHook", "alert_summary", "run_hooks",
]


class HookError(AlertError):
    """A hook failed for an alert (``topic``/``partition``/``offset``: the first alert of
    the call). ``retryable`` is false when trying again cannot help (e.g. HTTP 404)."""

    def __init__(self, message: str, *, retryable: bool = True, **where: Any) -> None:
        self.retryable = retryable
        super().__init__(message, **where)


# -- summaries and templates -----------------------------------------------------------
def alert_summary(d: Delivery) -> dict[str, Any]:
    """What a webhook receives about one alert: where it came from + :func:`alert_fields`."""
    return {"topic": d.topic, "partition": d.partition, "offset": d.offset,
            **alert_fields(d.alert or {})}


#: Fields a template may use (those absent from an alert render as ``-``).
TEMPLATE_FIELDS = tuple(dict.fromkeys(
    ["topic", "partition", "offset", "survey", "objectId", "alertId", "mjd", "time", "band",
     "mag", "magerr", "flux", "fluxerr", "ra", "dec", "fink_class",
     *MAIN_FINK_FIELDS[ZTF], *MAIN_FINK_FIELDS[LSST]]
))


class _Lenient(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        if value is None:
            return "-"
        if isinstance(value, float) and math.isnan(value):
            return "nan"
        try:
            return super().format_field(value, format_spec)
        except (ValueError, TypeError):  # e.g. {objectId:.2f}: show the value as it is
            return str(value)


class Template:
    """A ``str.format`` template over the summary fields, e.g.
    ``"{objectId} {fink_class} mag={mag:.2f}"``; checked when made (an unknown field is a
    :class:`ConfigError` listing the fields), lenient when rendered (a missing value is
    ``-``, a format spec that does not fit the value shows the value as it is)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._formatter = _Lenient()
        try:
            parsed = list(self._formatter.parse(text))
        except ValueError as exc:
            raise ConfigError(f"bad template {text!r}: {exc}", field="template") from None
        for _, name, _, _ in parsed:
            if name is None:
                continue
            base = name.split(".")[0].split("[")[0]
            if base not in TEMPLATE_FIELDS:
                raise ConfigError(
                    f"unknown field {{{name}}} in template {text!r}; available: "
                    f"{', '.join(TEMPLATE_FIELDS)}", field="template")

    def render(self, summary: Mapping[str, Any]) -> str:
        """The text for one alert summary."""
        values = {k: summary.get(k) for k in TEMPLATE_FIELDS}
        return self._formatter.vformat(self.text, (), values)


def default_text(d: Delivery) -> str:
    """Webhook text without a template: the table row of the alert on one line."""
    row = alert_row(d.topic, d.alert or {})
    topic = row.pop("topic")
    return f"Fink alert on {topic}: " + " · ".join(f"{k} {v}" for k, v in row.items())


# -- hooks -------------------------------------------------------------------------------
class Hook:
    """Base class: ``__call__(deliveries)`` handles one alert (or one batch when
    ``batch`` is true) and raises :class:`HookError` (or any exception) on failure."""

    batch: bool = False

    def __call__(self, deliveries: Sequence[Delivery]) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        """Short description for logs and dead-letter reasons (never a secret)."""
        return type(self).__name__


def _where(deliveries: Sequence[Delivery]) -> dict[str, Any]:
    d = deliveries[0]
    return {"topic": d.topic, "partition": d.partition, "offset": d.offset}


class ExecHook(Hook):
    """Run ``command`` with the alert(s) as JSON lines on stdin; success is exit status 0.

    A string runs through ``/bin/sh`` (pipes and redirections work), a list runs as is.
    The command also gets ``FINK_TOPIC``, ``FINK_PARTITION``, ``FINK_OFFSET`` (of the first
    alert) and ``FINK_ALERTS`` (how many lines) in its environment. Its stdout is left to
    it; its stderr is passed on and its end quoted in the failure reason. A command still
    running after ``timeout`` seconds is killed (with its process group) and counts as
    failed. ``drop_bytes=True`` leaves the cutouts out of the JSON.
    """

    def __init__(self, command: str | Sequence[str], *, batch: bool = False,
                 timeout: float = 60.0, drop_bytes: bool = False,
                 env: Mapping[str, str] | None = None) -> None:
        if not command:
            raise ConfigError("the hook command is empty", field="command")
        self.command = command if isinstance(command, str) else list(command)
        self.batch = batch
        self.timeout = timeout
        self.drop_bytes = drop_bytes
        self.env = dict(env) if env is not None else None

    def describe(self) -> str:
        cmd = self.command if isinstance(self.command, str) else " ".join(self.command)
        return f"command {cmd!r}"

    def __call__(self, deliveries: Sequence[Delivery]) -> None:
        payload = b"".join(encode_alert(d.alert or {}, self.drop_bytes) for d in deliveries)
        env = dict(os.environ if self.env is None else self.env)
        first = deliveries[0]
        env.update(FINK_TOPIC=first.topic, FINK_PARTITION=str(first.partition),
                   FINK_OFFSET=str(first.offset), FINK_ALERTS=str(len(deliveries)))
        try:
            proc = subprocess.Popen(self.command, shell=isinstance(self.command, str),
                                    stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                    start_new_session=True)
        except OSError as exc:
            raise HookError(f"cannot run {self.describe()}: {exc.strerror or exc}",
                            retryable=False, **_where(deliveries)) from None
        try:
            _, err = proc.communicate(payload, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise HookError(f"{self.describe()} still running after {self.timeout:g} s: "
                            "killed", **_where(deliveries)) from None
        except BaseException:  # interrupted: leave no child behind
            _kill_group(proc)
            raise
        if err:
            sys.stderr.write(err.decode("utf-8", "replace"))
            sys.stderr.flush()
        if proc.returncode != 0:
            tail = err.decode("utf-8", "replace").strip().splitlines()[-3:] if err else []
            status = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
                      else f"exit status {proc.returncode}")
            raise HookError(f"{self.describe()} failed ({status})"
                            + (": " + " | ".join(tail) if tail else ""), **_where(deliveries))


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
    proc.wait()


def _redact(url: str) -> str:
    """``scheme://host[:port]/…``: webhook URLs carry their secret in the path."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}/…"


class WebhookHook(Hook):
    """POST each alert's summary as JSON to ``url``: ``{"text": ..., **summary}``.

    ``text`` (what Slack and Mattermost show) is ``template`` rendered over the summary
    (:class:`Template`), or the alert's table row. Success is an HTTP 2xx answer; 5xx, 408,
    429 and network errors are retried, other answers are not. The URL is a secret (Slack
    and Mattermost put the token in it): logs and reasons show only its host.
    """

    def __init__(self, url: str, *, template: str | None = None, timeout: float = 10.0) -> None:
        parts = urllib.parse.urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError("the webhook URL must start with http:// or https:// and name "
                              "a host", field="webhook")
        self.url = url
        self.template = Template(template) if template else None
        self.timeout = timeout

    def describe(self) -> str:
        return f"webhook {_redact(self.url)}"

    def payload(self, d: Delivery) -> dict[str, Any]:
        """The JSON body for one alert."""
        summary = alert_summary(d)
        text = self.template.render(summary) if self.template else default_text(d)
        return {"text": text, **to_jsonable(summary)}

    def __call__(self, deliveries: Sequence[Delivery]) -> None:
        for d in deliveries:
            self._post(d)

    def _post(self, d: Delivery) -> None:
        body = json.dumps(self.payload(d), allow_nan=False).encode()
        req = urllib.request.Request(self.url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        where = _where([d])
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            retryable = exc.code >= 500 or exc.code in (408, 429)
            raise HookError(f"{self.describe()} answered HTTP {exc.code} {exc.reason}"
                            + ("" if retryable else " (not retried)"),
                            retryable=retryable, **where) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise HookError(f"{self.describe()} unreachable: {reason}", **where) from None


class CallableHook(Hook):
    """Call ``fn(topic, alert)`` per alert, or ``fn([(topic, alert), ...])`` with
    ``batch=True``; an exception is a failure (retried, then dead-lettered)."""

    def __init__(self, fn: Callable[..., Any], *, batch: bool = False) -> None:
        self.fn = fn
        self.batch = batch

    def describe(self) -> str:
        return f"function {getattr(self.fn, '__qualname__', repr(self.fn))}"

    def __call__(self, deliveries: Sequence[Delivery]) -> None:
        if self.batch:
            self.fn([(d.topic, d.alert) for d in deliveries])
        else:
            for d in deliveries:
                self.fn(d.topic, d.alert)


# -- running hooks ---------------------------------------------------------------------
_STOP = object()


class HookRunner:
    """Run ``hook`` in a worker thread over a bounded queue, with retries and dead letters.

    :meth:`submit` queues deliveries (waiting while ``queue_size`` calls are pending),
    one call per alert, or per ``batch_size`` alerts for a batch hook. Each call is tried
    ``1 + retries`` times, waiting ``backoff * 2**k`` seconds (at most ``max_backoff``)
    between tries. A call that still fails goes to ``dead_letter`` (each alert as
    ``<topic>-<partition>-<offset>.value``: the raw Kafka value when the delivery carries
    it, else the alert's JSON line; the key in ``.key``, the reason in ``.json``, error
    ``HookError``); without one,
    the runner stops and :meth:`check` raises the :class:`HookError`. :meth:`completed`
    says up to where every alert is done (succeeded or dead-lettered), per partition.
    """

    def __init__(self, hook: Hook, *, retries: int = 3, backoff: float = 1.0,
                 max_backoff: float = 30.0, queue_size: int = 100,
                 dead_letter: str | Path | DeadLetter | None = None,
                 batch_size: int = 1000) -> None:
        if retries < 0 or queue_size < 1 or batch_size < 1 or backoff < 0:
            raise ConfigError("retries and backoff must be >= 0, queue_size and batch_size "
                              "positive", field="hooks")
        self.hook = hook
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.batch_size = batch_size
        self.dead_letter = (dead_letter if isinstance(dead_letter, DeadLetter) or dead_letter
                            is None else DeadLetter(dead_letter))
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._done: dict[TP, int] = {}
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self._stop = threading.Event()
        self.error: HookError | None = None
        self.succeeded = 0
        self.dead_lettered = 0
        self.attempts = 0
        self._thread = threading.Thread(target=self._work, name="fink-hooks", daemon=True)
        self._thread.start()

    # -- feeding
    def submit(self, deliveries: Sequence[Delivery],
               on_wait: Callable[[], None] | None = None) -> None:
        """Queue ``deliveries`` in order; waits while the queue is full, calling
        ``on_wait()`` now and then meanwhile. Raises the runner's :class:`HookError` if
        it has stopped on one."""
        step = self.batch_size if self.hook.batch else 1
        for i in range(0, len(deliveries), step):
            unit = list(deliveries[i:i + step])
            with self._lock:
                self._pending += 1
            while True:
                self.check()
                try:
                    self._queue.put(unit, timeout=0.2)
                    break
                except queue.Full:
                    if on_wait is not None:
                        on_wait()

    def check(self) -> None:
        """Raise the :class:`HookError` the runner stopped on, if any."""
        if self.error is not None:
            raise self.error

    def completed(self) -> dict[TP, int]:
        """``(topic, partition) -> offset after the last alert done`` (hook succeeded, or
        alert dead-lettered): every alert before it on that partition is done."""
        with self._lock:
            return dict(self._done)

    def idle(self) -> bool:
        """True when every submitted call is done and the runner has not stopped."""
        with self._lock:
            return self._pending == 0 and self.error is None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every queued call is done (or the runner stopped); True if idle."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._pending and self.error is None:
                left = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self, timeout: float | None = None) -> None:
        """Stop the worker after the call in progress (queued calls are dropped: their
        offsets are not stored, so they come again next run); wait for it at most
        ``timeout`` seconds (default: a retry delay and a bit)."""
        self._stop.set()
        while True:  # make room for the sentinel
            try:
                self._queue.put_nowait(_STOP)
                break
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()
        self._thread.join(timeout=self.max_backoff + 5 if timeout is None else timeout)

    # -- the worker
    def _work(self) -> None:
        while True:
            unit = self._queue.get()
            if unit is _STOP or self._stop.is_set():
                return
            try:
                if self.error is None:
                    self._run(unit)
            except BaseException as exc:  # never let the worker die silently
                self.error = HookError(f"hook worker failed: {type(exc).__name__}: {exc}",
                                       retryable=False, **_where(unit))
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _run(self, unit: list[Delivery]) -> None:
        error: HookError | None = None
        tries = 0
        for attempt in range(self.retries + 1):
            tries += 1
            self.attempts += 1
            try:
                self.hook(unit)
            except HookError as exc:
                error = exc
            except Exception as exc:  # a Python hook raised: a failure like any other
                error = HookError(f"{self.hook.describe()} raised {type(exc).__name__}: {exc}",
                                  **_where(unit))
            else:
                self._mark_done(unit)
                self.succeeded += len(unit)
                return
            if not error.retryable or attempt == self.retries:
                break
            delay = min(self.backoff * 2 ** attempt, self.max_backoff)
            log.warning("%s (try %d of %d); retrying in %.1f s", error, tries,
                        self.retries + 1, delay)
            if self._stop.wait(delay):
                return  # stopping: not done, so not stored
        assert error is not None
        reason = f"{error.reason} (after {tries} tr{'y' if tries == 1 else 'ies'})"
        if self.dead_letter is None:
            self.error = HookError(reason + "; use a dead-letter folder to keep failed alerts "
                                   "and go on", retryable=False, **_where(unit))
            return
        for d in unit:
            try:
                raw = getattr(d, "value", None)  # the raw Kafka value, where kept
                self.dead_letter.write(
                    raw if isinstance(raw, bytes) else encode_alert(d.alert or {}), d.key,
                    HookError(reason, topic=d.topic, partition=d.partition, offset=d.offset))
            except (OSError, AlertError) as exc:  # DeadLetterError: disk full, not writable
                self.error = HookError(f"cannot keep a failed alert in the dead-letter folder "
                                       f"{self.dead_letter.folder}: {exc}", retryable=False,
                                       topic=d.topic, partition=d.partition, offset=d.offset)
                return
            self._mark_done([d])
            self.dead_lettered += 1
        log.warning("dead-lettered %d alert(s) in %s: %s", len(unit), self.dead_letter.folder,
                    reason)

    def _mark_done(self, unit: Sequence[Delivery]) -> None:
        with self._lock:
            for d in unit:
                tp = (d.topic, d.partition)
                self._done[tp] = max(self._done.get(tp, 0), d.offset + 1)


class HookSink:
    """Plugs a :class:`HookRunner` into :func:`fink_client.streamloop.stream` (as ``sink=``):
    stores offsets on ``consumer`` (made with ``auto_store=False``) as hooks complete."""

    def __init__(self, consumer: AlertConsumer, runner: HookRunner) -> None:
        self.consumer = consumer
        self.runner = runner
        #: alerts the loop fetches at a time: whole batches for a batch hook
        self.batch_size = runner.batch_size if runner.hook.batch else 200
        self.files: list[Path] = []  # the stream loop's sink interface; hooks write none
        self._stored: dict[TP, int] = {}

    def _store_done(self) -> None:
        done = self.runner.completed()
        if self.runner.idle():
            # Everything handed out is done, including undecodable messages the consumer
            # kept in the dead-letter folder (they never reach a hook): store up to there.
            for tp, o in self.consumer.delivered_positions().items():
                done[tp] = max(done.get(tp, 0), o)
        new = {tp: o for tp, o in done.items() if o > self._stored.get(tp, -1)}
        if new:
            self.consumer.store_delivered(new)
            self._stored.update(new)

    def add(self, deliveries: Sequence[Delivery]) -> list[Path]:
        """Queue the hooks of ``deliveries``; store the offsets of the alerts done so far."""
        try:
            if deliveries:
                self.runner.submit(deliveries, on_wait=self._store_done)
        finally:
            self._store_done()
        return []

    def close(self, *, only_written: bool = False) -> None:
        """Wait for the queued hooks, store their offsets, stop the worker; raise the
        :class:`HookError` the runner stopped on, if any. (``only_written`` is the disk
        sink's argument: hooks store only what is done in every case.)"""
        try:
            while not self.runner.wait(0.5):  # store progress while the queue drains
                self._store_done()
            self._store_done()
        except BaseException:  # e.g. a second Ctrl-C: abort now, store nothing more
            self.runner.close(timeout=0)
            raise
        self.runner.close()
        self.runner.check()


def run_hooks(topics: Sequence[str] | str, config: dict[str, Any], hook: Hook, *,
              dead_letter: str | Path | None = None, retries: int = 3, backoff: float = 1.0,
              queue_size: int = 100, batch_size: int = 1000, limit: int | None = None,
              idle_timeout: float | None = None,
              should_stop: Callable[[], bool] = lambda: False) -> HookRunner:
    """Consume ``topics`` and run ``hook`` on every alert until ``limit`` alerts,
    ``idle_timeout`` seconds without one, or ``should_stop()``; commit what is done.

    Undecodable messages go to ``dead_letter`` too (or raise ``DecodeError`` without
    one). Returns the runner (``succeeded``, ``dead_lettered``, ``attempts``); raises
    :class:`HookError` when a hook keeps failing and there is no dead-letter folder.
    """
    from fink_client.streamloop import stream

    consumer = AlertConsumer(topics, config, on_error="skip" if dead_letter else "raise",
                             dead_letter=dead_letter, auto_store=False)
    runner = HookRunner(hook, retries=retries, backoff=backoff, queue_size=queue_size,
                        dead_letter=dead_letter, batch_size=batch_size)
    try:
        stream(consumer, sink=HookSink(consumer, runner), limit=limit,
               idle_timeout=idle_timeout, should_stop=should_stop)
    finally:
        runner.close(timeout=1.0)  # already stopped unless the loop was interrupted
        consumer.close()  # commits the offsets stored for the alerts done
    return runner
