"""``finkctl broker start|stop|status``: a local Kafka broker to develop filters against.

``start`` launches a detached single-node Apache Kafka (see :mod:`fink_client.localkafka`)
that outlives the command, creates the demo user allowed to read every topic with any
group, and records pid, ports and folders in ``<cache>/broker/state.json``. ``stop`` stops
it and removes its data; ``status`` tells whether it runs (exit 0) or not (exit 1).

The demo credentials (``DEMO_USER`` / ``DEMO_PASSWORD``) are public, for this local
broker only: it listens on 127.0.0.1 and its PLAINTEXT admin listener needs no password.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fink_client.cli.errors import EXIT_OK, EXIT_RUNTIME
from fink_client.cli.options import add_json_flag, seconds
from fink_client.errors import BrokerError
from fink_client.localkafka import (
    DEMO_PASSWORD,
    DEMO_USER,
    KAFKA_VERSION,
    LocalKafka,
    cache_root,
    pid_is_kafka,
    stop_pid,
)

STATE_FILE = "state.json"


def default_state_dir() -> Path:
    """Folder of the detached broker: ``<cache>/broker`` (see ``FINK_CLIENT_CACHE``)."""
    return cache_root() / "broker"


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``broker`` and its ``start``/``stop``/``status`` actions to ``finkctl``."""
    parser = subparsers.add_parser(
        "broker",
        help="run a local Apache Kafka broker (demo and filter development)",
        description=(
            "Run a local single-node Apache Kafka broker on 127.0.0.1 with a demo user "
            f"('{DEMO_USER}', public password, local use only) allowed to read every topic. "
            "Needs Java 17+ and Maven (jars are fetched once from Maven Central)."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        add_json_flag(p)
        p.add_argument(
            "--state-dir",
            type=Path,
            default=None,
            help=f"folder of the broker's state and data (default: {default_state_dir()})",
        )

    start = actions.add_parser("start", help="start the broker in the background")
    common(start)
    start.add_argument("--heap", default="512m", help="JVM maximum heap (default: %(default)s)")
    start.add_argument(
        "--timeout", type=seconds, default=120.0, help="seconds to wait for the broker to be ready"
    )
    start.set_defaults(func=cmd_start)

    stop = actions.add_parser("stop", help="stop the broker and delete its data")
    common(stop)
    stop.set_defaults(func=cmd_stop)

    status = actions.add_parser("status", help="tell whether the broker runs (exit 0) or not (1)")
    common(status)
    status.set_defaults(func=cmd_status)
    return parser


# ---------------------------------------------------------------------------- state
def _state_dir(folder: Path | None) -> Path:
    """``folder`` (``--state-dir``), or :func:`default_state_dir`, as an absolute path."""
    return (folder or default_state_dir()).expanduser().resolve()


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """Serialise broker commands on one state folder (two concurrent starts, etc.)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_state(state_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((state_dir / STATE_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise BrokerError(
            f"unreadable broker state {state_dir / STATE_FILE}: {exc}; delete it and retry"
        ) from exc


def _write_state(state_dir: Path, state: dict[str, Any]) -> None:
    tmp = state_dir / f".{STATE_FILE}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(state, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, state_dir / STATE_FILE)


def _clean(state_dir: Path) -> None:
    """Remove the state file and the broker's data folder."""
    with contextlib.suppress(FileNotFoundError):
        (state_dir / STATE_FILE).unlink()
    shutil.rmtree(state_dir / "data", ignore_errors=True)


def _stale_message(state_dir: Path, state: dict[str, Any]) -> str:
    return (
        f"the broker recorded in {state_dir / STATE_FILE} (pid {state.get('pid')}) is not "
        "running any more; its stale state was removed. Run `finkctl broker start`."
    )


# ---------------------------------------------------------------------------- output
def _print_details(state: dict[str, Any], as_json: bool, note: str = "") -> None:
    if as_json:
        print(json.dumps({"running": True, **state}, indent=2))
        return
    if note:
        print(note)
    print(f"Local Apache Kafka {state['kafka_version']} broker running (pid {state['pid']})")
    print(f"  bootstrap servers : {state['bootstrap_servers']}  (SASL_PLAINTEXT, SCRAM-SHA-512)")
    print(f"  admin servers     : {state['admin_servers']}  (PLAINTEXT, no auth, super user)")
    print(f"  demo user         : {state['username']}")
    print(f"  demo password     : {state['password']}  (public, local demo only)")
    print(f"  broker log        : {state['log_file']}")
    print("Stop it with `finkctl broker stop`.")


def _not_running(as_json: bool, message: str) -> int:
    if as_json:
        print(json.dumps({"running": False, "message": message}))
    else:
        print(f"finkctl broker: {message}", file=sys.stderr)
    return EXIT_RUNTIME


# ---------------------------------------------------------------------------- commands
def cmd_start(args: argparse.Namespace) -> int:
    """Start the detached broker, or print the details of the one already running."""
    state_dir = _state_dir(args.state_dir)
    with _locked(state_dir):
        state = _read_state(state_dir)
        if state is not None:
            if pid_is_kafka(int(state.get("pid", 0))):
                _print_details(state, args.json, note="A local broker is already running.")
                return EXIT_OK
            print(f"finkctl broker: {_stale_message(state_dir, state)}", file=sys.stderr)
            _clean(state_dir)

        shutil.rmtree(state_dir / "data", ignore_errors=True)  # always a fresh broker
        kafka = LocalKafka(
            users={DEMO_USER: DEMO_PASSWORD},
            log_dir=state_dir / "data",
            heap=args.heap,
            detached=True,
        )
        began = time.monotonic()
        try:
            kafka.start(timeout=args.timeout)
            kafka.allow(DEMO_USER, topics=["*"], groups=["*"])
            state = {
                "pid": kafka.pid,
                "kafka_version": KAFKA_VERSION,
                "bootstrap_servers": kafka.bootstrap_servers,
                "admin_servers": kafka.admin_servers,
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "SCRAM-SHA-512",
                "username": DEMO_USER,
                "password": DEMO_PASSWORD,
                "ports": kafka.ports,
                "log_dir": str(kafka.log_dir),
                "log_file": str(kafka.log_dir / "logs" / "server.log"),
                "started_at": time.time(),
                "start_seconds": round(time.monotonic() - began, 2),
            }
            _write_state(state_dir, state)
        except BaseException:
            kafka.stop()
            _clean(state_dir)
            raise
        _print_details(state, args.json)
        return EXIT_OK


def _live_state(state_dir: Path) -> tuple[dict[str, Any] | None, str]:
    """The state of the running broker, or ``(None, why not)``; cleans a stale state.

    Call with the state folder locked.
    """
    state = _read_state(state_dir)
    if state is None:
        return None, "no local broker is running"
    if not pid_is_kafka(int(state.get("pid", 0))):
        _clean(state_dir)
        return None, _stale_message(state_dir, state)
    return state, ""


def _locked_live_state(state_dir: Path) -> tuple[dict[str, Any] | None, str]:
    """:func:`_live_state`, taking the state folder's lock for the read."""
    with _locked(state_dir):
        return _live_state(state_dir)


def running_broker(state_dir: Path | None = None) -> dict[str, Any] | None:
    """State (servers, pid, demo user) of the broker ``finkctl broker start`` left running.

    ``None`` when none runs in ``state_dir`` (default :func:`default_state_dir`); a stale
    state is cleaned, as by ``finkctl broker status``.
    """
    return _locked_live_state(_state_dir(state_dir))[0]


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop the detached broker and remove its state and data."""
    state_dir = _state_dir(args.state_dir)
    with _locked(state_dir):
        state, why = _live_state(state_dir)
        if state is None:
            return _not_running(args.json, why)
        pid = int(state["pid"])
        killed = stop_pid(pid)
        _clean(state_dir)
    if args.json:
        print(json.dumps({"running": False, "stopped": True, "pid": pid, "killed": killed}))
    else:
        how = " (had to be killed)" if killed else ""
        print(f"Local broker (pid {pid}) stopped{how}; its data was removed.")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    """Exit 0 and print details if the broker runs, else exit 1."""
    state, why = _locked_live_state(_state_dir(args.state_dir))
    if state is None:
        return _not_running(args.json, why)
    _print_details(state, args.json)
    return EXIT_OK
