"""The hook options of ``finkctl stream``: ``--exec CMD [--batch]``, ``--webhook [URL]
[--template T]``, ``--retries N``; see :mod:`fink_client.hooks` for what they do."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from fink_client.cli.errors import UsageError
from fink_client.cli.options import seconds
from fink_client.errors import ConfigError
from fink_client.hooks import ExecHook, Hook, HookRunner, WebhookHook

WEBHOOK_ENV = "FINK_WEBHOOK_URL"


def add_hook_flags(p: argparse.ArgumentParser) -> None:
    """Add the hook options to the ``stream`` parser."""
    g = p.add_argument_group(
        "hooks", "run a command or call a webhook for every alert; an alert's offset is "
        "stored only once its hook succeeded (or, after the retries, once it is in "
        "--dead-letter DIR); after a crash a hook may see an alert twice")
    g.add_argument("--exec", metavar="CMD", dest="hook_exec",
                   help="run CMD (through /bin/sh) for every alert, the alert as one JSON line "
                   "on stdin; FINK_TOPIC, FINK_PARTITION, FINK_OFFSET in its environment; "
                   "success is exit status 0")
    g.add_argument("--batch", action="store_true", dest="hook_batch",
                   help="with --exec: run CMD once per batch of alerts (one JSON line each, "
                   "at most --batch-size)")
    g.add_argument("--webhook", metavar="URL", nargs="?", const="", dest="hook_webhook",
                   help="POST each alert's summary as JSON with a Slack/Mattermost 'text' "
                   f"field to URL; without URL it is read from ${WEBHOOK_ENV} (keeps the "
                   "secret out of the process list)")
    g.add_argument("--template", metavar="T", dest="hook_template",
                   help="with --webhook: the text, e.g. '{objectId} {fink_class} mag={mag:.2f}' "
                   "(fields: topic, objectId, alertId, time, band, mag, flux, fink_class, ...)")
    g.add_argument("--retries", type=int, default=3, metavar="N", dest="hook_retries",
                   help="tries after a failed hook before the alert is dead-lettered "
                   "(default 3; waits 1, 2, 4... s)")
    g.add_argument("--hook-timeout", type=seconds, default=None, metavar="S",
                   help="a command or request taking longer than S seconds fails "
                   "(default 60 for --exec, 10 for --webhook)")


def hook_from_args(args: argparse.Namespace) -> Hook | None:
    """The hook the options ask for (or None); usage errors for bad combinations."""
    if args.hook_exec is None and args.hook_webhook is None:
        for flag, value in (("--batch", args.hook_batch), ("--template", args.hook_template)):
            if value:
                raise UsageError(f"{flag} needs --exec or --webhook")
        return None
    _check_hook_options(args)
    try:
        return _exec_hook(args) if args.hook_exec is not None else _webhook(args)
    except ConfigError as exc:
        raise UsageError(exc.reason) from None


def _check_hook_options(args: argparse.Namespace) -> None:
    """Usage errors for the options that go with any hook."""
    if args.hook_exec is not None and args.hook_webhook is not None:
        raise UsageError("give either --exec or --webhook, not both")
    if args.save:
        raise UsageError("--exec/--webhook cannot be combined with --save")
    if args.hook_retries < 0:
        raise UsageError("--retries must be 0 or more")


def _exec_hook(args: argparse.Namespace) -> ExecHook:
    """The ``--exec`` hook (``--template`` is a webhook option)."""
    if args.hook_template:
        raise UsageError("--template goes with --webhook")
    return ExecHook(args.hook_exec, batch=args.hook_batch, timeout=args.hook_timeout or 60.0)


def _webhook(args: argparse.Namespace) -> WebhookHook:
    """The ``--webhook`` hook; its URL from the option or from $FINK_WEBHOOK_URL."""
    if args.hook_batch:
        raise UsageError("--batch goes with --exec")
    url = args.hook_webhook or os.environ.get(WEBHOOK_ENV, "")
    if not url:
        raise UsageError(f"--webhook without URL reads it from ${WEBHOOK_ENV}, which is not set")
    return WebhookHook(url, template=args.hook_template, timeout=args.hook_timeout or 10.0)


def hook_runner(args: argparse.Namespace, hook: Hook, dead: Path | None) -> HookRunner:
    """The runner for ``hook`` with the command's retry, batch and dead-letter options."""
    return HookRunner(hook, retries=args.hook_retries, dead_letter=dead,
                      batch_size=args.batch_size)
