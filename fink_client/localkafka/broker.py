"""A real single-node Apache Kafka 4.x broker (KRaft, broker + controller in one JVM).

Used by the integration tests and by ``finkctl broker`` to give users a local, Fink-like
stream: SCRAM-SHA-512 users on a SASL_PLAINTEXT listener and real ACLs enforced by
``StandardAuthorizer``, exactly like Fink's servers, plus a PLAINTEXT listener whose
anonymous principal is a super user, for administration (creating topics, users, ACLs,
producing test data). Both listeners bind to 127.0.0.1 only.

:class:`LocalKafka` is the public face; the work is done by three modules:
:mod:`~fink_client.localkafka.config` renders the broker's files, ports and client
configs, :mod:`~fink_client.localkafka.lifecycle` runs the JVM (no JVM survives the
Python process that started it unless ``detached=True``), and
:mod:`~fink_client.localkafka.admin` creates topics, users and ACLs.
"""

from __future__ import annotations

import functools
import logging
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from fink_client.errors import BrokerError
from fink_client.localkafka.admin import BrokerAdmin
from fink_client.localkafka.config import (
    ADMIN_USER,
    SCRAM_MECHANISM,
    format_scram_args,
    pick_ports,
    ports_from_config,
    user_client_config,
    write_config,
)
from fink_client.localkafka.jars import ensure_jars, java_executable
from fink_client.localkafka.lifecycle import BrokerJvm, stop_at_exit

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_R = TypeVar("_R")

# ADMIN_USER and SCRAM_MECHANISM stay importable from here, as before the split.
__all__ = ["ADMIN_USER", "SCRAM_MECHANISM", "LocalKafka"]


def _on_admin(
    method: Callable[Concatenate[BrokerAdmin, _P], _R],
) -> Callable[Concatenate[LocalKafka, _P], _R]:
    """``method`` of :class:`BrokerAdmin` as a :class:`LocalKafka` method, run on the
    running broker's admin client: the signature and docstring are written once, in
    :mod:`~fink_client.localkafka.admin`."""

    @functools.wraps(method)
    def on_running_broker(self: LocalKafka, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        return method(self._admin_api(), *args, **kwargs)

    return on_running_broker


class LocalKafka:
    """An embedded single-node Kafka broker with SCRAM users and ACLs.

    Example::

        with LocalKafka(users={"alice": "secret"}) as kafka:
            kafka.create_topic("ztf_sso")
            kafka.allow("alice", topics=["ztf_sso"], groups=["g"])
            conf = kafka.client_config("alice")  # SASL_PLAINTEXT / SCRAM-SHA-512

    ``users`` maps user names to passwords (created at format time); ``log_dir`` is the
    broker folder (a fresh temporary one, removed by :meth:`stop`, when not given);
    ``heap`` is the JVM's maximum heap (``-Xmx``). With ``detached=True`` the JVM may
    outlive this Python process (used by ``finkctl broker start``).
    """

    def __init__(
        self,
        users: Mapping[str, str] | None = None,
        log_dir: Path | str | None = None,
        heap: str = "512m",
        *,
        detached: bool = False,
        jars_dir: Path | str | None = None,
    ) -> None:
        self._users: dict[str, str] = dict(users or {})
        if ADMIN_USER in self._users:
            raise BrokerError(f"user name '{ADMIN_USER}' is reserved for the broker's admin")
        self._admin_password = uuid.uuid4().hex
        self._given_dir = Path(log_dir).expanduser().resolve() if log_dir else None
        self._log_dir: Path | None = self._given_dir
        self._heap = heap
        self._detached = detached
        self._jars_dir = jars_dir
        self._ports: dict[str, int] = {}
        self._jvm: BrokerJvm | None = None
        self._admin: BrokerAdmin | None = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ properties
    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:PORT`` of the SASL_PLAINTEXT (SCRAM-SHA-512) listener, for users."""
        return f"127.0.0.1:{self._port('SASL_PLAINTEXT')}"

    @property
    def admin_servers(self) -> str:
        """``127.0.0.1:PORT`` of the PLAINTEXT listener, whose principal is a super user."""
        return f"127.0.0.1:{self._port('PLAINTEXT')}"

    @property
    def log_dir(self) -> Path:
        """Folder of the broker: config, ``logs/server.log`` and Kafka data in ``data/``."""
        if self._log_dir is None:
            raise BrokerError("the broker has no log dir yet: call start() first")
        return self._log_dir

    @property
    def users(self) -> dict[str, str]:
        """Users (name → password) with a SCRAM credential, the admin excepted."""
        return dict(self._users)

    @property
    def admin_user(self) -> str:
        """Name of the super user on the SASL listener."""
        return ADMIN_USER

    @property
    def admin_password(self) -> str:
        """Random password of :attr:`admin_user`."""
        return self._admin_password

    @property
    def ports(self) -> dict[str, int]:
        """Listener name → port (``PLAINTEXT``, ``SASL_PLAINTEXT``, ``CONTROLLER``)."""
        return dict(self._ports)

    @property
    def pid(self) -> int | None:
        """Pid of the broker JVM, or None when not started."""
        return self._jvm.pid if self._jvm else None

    @property
    def running(self) -> bool:
        """True while the broker JVM is alive."""
        return self._jvm is not None and self._jvm.running

    def _port(self, name: str) -> int:
        if name not in self._ports:
            raise BrokerError("the broker has no ports yet: call start() first")
        return self._ports[name]

    def __repr__(self) -> str:
        state = f"running pid={self.pid}" if self.running else "stopped"
        where = f" sasl={self.bootstrap_servers}" if self._ports else ""
        return f"<LocalKafka {state}{where}>"

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LocalKafka:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = 60.0) -> LocalKafka:
        """Start the broker and return once it answers on its admin listener.

        The first start formats the storage (cluster id, SCRAM users); later starts on the
        same log dir (see :meth:`restart`) reuse it and the same ports. Raises
        :class:`BrokerError` with the tail of the broker log if the JVM dies or is not
        ready within ``timeout`` seconds.
        """
        with self._lock:
            if self.running:
                return self
            deadline = time.monotonic() + timeout
            jars = ensure_jars(self._jars_dir)
            java = java_executable()
            if self._log_dir is None:
                self._log_dir = Path(tempfile.mkdtemp(prefix="fink-kafka-"))
            log_dir = self._log_dir
            log_dir.mkdir(parents=True, exist_ok=True)
            formatted = (log_dir / "data" / "meta.properties").is_file()
            # A log dir formatted by another instance: keep its ports (its data refers to
            # them), and re-register our users and admin password once it runs.
            adopted = formatted and not self._ports
            if adopted:
                self._ports = ports_from_config(log_dir)
                formatted = adopted = bool(self._ports)
            # Freshly picked ports may be taken by someone else before the JVM binds them:
            # then pick again. Ports of an existing (restarted) broker are kept.
            attempts = 1 if formatted else 3
            for attempt in range(attempts):
                if not formatted:
                    self._ports = pick_ports()
                    shutil.rmtree(log_dir / "data", ignore_errors=True)
                write_config(log_dir, self._ports)
                jvm = BrokerJvm(log_dir, java, jars, self._heap, detached=self._detached)
                if not formatted:
                    # Only the broker's own (random) credential goes on the storage tool's
                    # command line: users' passwords would show in the process list.
                    jvm.format(format_scram_args({ADMIN_USER: self._admin_password}))
                self._jvm = jvm
                stop_at_exit(self, enabled=not self._detached)
                try:
                    jvm.launch(self.admin_servers, deadline)
                    break
                except BrokerError as exc:
                    self._stop_jvm(timeout=5)
                    retry = "Address already in use" in str(exc) and attempt + 1 < attempts
                    if not retry:
                        raise
                    log.info("port clash at broker start, retrying with new ports")
                    formatted = False
                except BaseException:
                    self._stop_jvm(timeout=5)
                    raise
            if adopted:
                self._admin_api().upsert_scram(ADMIN_USER, self._admin_password)
            # Users are added through the admin API (never on a command line).
            for name, password in self._users.items():
                self._admin_api().upsert_scram(name, password)
            return self

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the JVM (SIGTERM, then SIGKILL after ``timeout`` s) and wait for it.

        A temporary log dir created by :meth:`start` is removed; a given one is kept.
        Safe to call more than once.
        """
        with self._lock:
            self._stop_jvm(timeout)
            if self._given_dir is None and self._log_dir is not None:
                shutil.rmtree(self._log_dir, ignore_errors=True)
                self._log_dir = None
                self._ports = {}

    def restart(self, timeout: float = 60.0) -> LocalKafka:
        """Stop the broker and start it again on the same log dir and ports.

        Data written before the restart (topics, messages, committed offsets, users,
        ACLs) is kept: this simulates a broker outage.
        """
        with self._lock:
            self._stop_jvm()
            return self.start(timeout)

    def _stop_jvm(self, timeout: float = 20.0) -> None:
        self._admin = None  # librdkafka handles are freed on garbage collection
        jvm, self._jvm = self._jvm, None
        stop_at_exit(self, enabled=False)
        if jvm is not None:
            jvm.stop(timeout)

    # ------------------------------------------------------------------ clients
    def _admin_api(self) -> BrokerAdmin:
        if not self.running:
            raise BrokerError("the broker is not running: call start() first")
        if self._admin is None:
            self._admin = BrokerAdmin(self.admin_servers)
        return self._admin

    def admin(self) -> Any:
        """A ``confluent_kafka.admin.AdminClient`` on the admin (super user) listener."""
        return self._admin_api().client

    def client_config(self, user: str | None = None, password: str | None = None) -> dict[str, Any]:
        """A confluent-kafka producer/consumer config dict for this broker.

        Without ``user``: the PLAINTEXT admin listener (super user, no authentication).
        With ``user``: the SASL_PLAINTEXT listener with SCRAM-SHA-512; the password defaults
        to the one registered for that user. No ``group.id`` is set.
        """
        if user is None:
            return {"bootstrap.servers": self.admin_servers}
        if password is None:
            known = {**self._users, ADMIN_USER: self._admin_password}
            if user not in known:
                raise BrokerError(f"unknown user '{user}': give its password or add_user() it")
            password = known[user]
        return user_client_config(self.bootstrap_servers, user, password)

    # ------------------------------------------------------------------ admin helpers
    # The admin operations, as BrokerAdmin defines them (signature and docstring), on the
    # running broker's admin listener.
    create_topic = _on_admin(BrokerAdmin.create_topic)
    delete_topic = _on_admin(BrokerAdmin.delete_topic)
    allow = _on_admin(BrokerAdmin.allow)

    def add_user(self, name: str, password: str, timeout: float = 30.0) -> None:
        """Create (or change the password of) a SCRAM-SHA-512 user on the running broker."""
        if name == ADMIN_USER:
            raise BrokerError(f"user name '{ADMIN_USER}' is reserved for the broker's admin")
        self._admin_api().upsert_scram(name, password, timeout)
        self._users[name] = password
