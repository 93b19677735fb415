"""A real single-node Apache Kafka 4.x broker (KRaft, broker + controller in one JVM).

Used by the integration tests and by ``finkctl broker`` to give users a local, Fink-like
stream: SCRAM-SHA-512 users on a SASL_PLAINTEXT listener and real ACLs enforced by
``StandardAuthorizer``, exactly like Fink's servers, plus a PLAINTEXT listener whose
anonymous principal is a super user, for administration (creating topics, users, ACLs,
producing test data). Both listeners bind to 127.0.0.1 only.

The JVM runs in its own session (process group) and is stopped with SIGTERM, then
SIGKILL; an ``atexit`` hook and, on Linux, a parent-death signal make sure no JVM
survives the Python process that started it (unless ``detached=True``).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import logging
import os
import queue
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any

from fink_client.errors import BrokerError
from fink_client.localkafka.jars import ensure_jars, java_executable
from fink_client.localkafka.process import stop_pid

log = logging.getLogger(__name__)

#: SCRAM mechanism used by Fink's servers and by this broker.
SCRAM_MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 8192

#: Super user with a SCRAM credential on the SASL listener (its password is random).
ADMIN_USER = "admin"

# Kafka's loggers to the file <log_dir>/logs/server.log, never to the terminal.
LOG4J2_XML = """\
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <RollingFile name="file" fileName="${sys:kafka.logs.dir}/server.log"
                 filePattern="${sys:kafka.logs.dir}/server.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="20 MB"/></Policies>
      <DefaultRolloverStrategy max="2"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Logger name="org.apache.kafka.storage.internals.log" level="WARN"/>
    <Root level="INFO"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
"""

# Child-side shim (Linux): ask the kernel to SIGKILL the JVM when its parent dies, then
# exec java. Runs in a fresh interpreter, so no fork-with-threads hazard of preexec_fn.
_PDEATHSIG_SHIM = (
    "import ctypes,os,signal,sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGKILL)\n"  # 1 = PR_SET_PDEATHSIG
    "if os.getppid() != int(sys.argv[1]): os._exit(3)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)

class _Launcher:
    """Spawns child processes from one long-lived thread.

    Linux's parent-death signal fires when the *thread* that forked the child exits, not
    the process. Spawning from a thread that lives as long as the process (a daemon
    thread started on first use) makes the signal mean "the Python process died",
    whichever thread called :meth:`LocalKafka.start`.
    """

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], Any], Future[Any]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _run(self) -> None:
        while True:
            fn, fut = self._jobs.get()
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn())
                except BaseException as exc:
                    fut.set_exception(exc)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the launcher thread and return its result (or raise its error)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="localkafka-launcher",
                                                daemon=True)
                self._thread.start()
        fut: Future[Any] = Future()
        self._jobs.put((fn, fut))
        return fut.result()


_LAUNCHER = _Launcher()

# Every running instance, so that the atexit hook can stop them.
_RUNNING: weakref.WeakSet[LocalKafka] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for kafka in list(_RUNNING):
        with contextlib.suppress(Exception):
            kafka.stop()


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range of automatically assigned client ports (Linux; else a default)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1, *outside* the ephemeral port range.

    A broker restarted on the same ports must find them free. A port from the ephemeral
    range can meanwhile become the source port of a client's connection, or a client
    reconnecting to a stopped broker can even connect to itself (TCP self-connect) and
    hold it; ports below that range are never assigned to clients by the kernel.
    """
    low, _ = _ephemeral_range()
    lo, hi = 20000, low - 1
    if hi - lo < 100 * count:  # unusual kernel settings: fall back to any free port
        lo, hi = 0, 0
    rng = random.SystemRandom()
    socks: list[socket.socket] = []
    try:
        for _ in range(200):
            if len(socks) == count:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", rng.randint(lo, hi) if hi else 0))
            except OSError:
                s.close()
                continue
            socks.append(s)
        if len(socks) < count:
            raise BrokerError(f"could not find {count} free ports on 127.0.0.1")
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding.

    Ids starting with '-' are redrawn: the storage tool would read them as an option.
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def _scram_literal_ok(text: str) -> bool:
    # `--add-scram` parses `name=...,password="..."`; keep it to values it cannot misread.
    return bool(text) and not any(c in text for c in '"[]\\\n')


def _tail(path: Path, lines: int = 40) -> str:
    try:
        data = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(data[-lines:])


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
        self._proc: subprocess.Popen[bytes] | None = None
        self._admin: Any = None
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
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        """True while the broker JVM is alive."""
        return self._proc is not None and self._proc.poll() is None

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
            self._log_dir.mkdir(parents=True, exist_ok=True)
            formatted = (self._log_dir / "data" / "meta.properties").is_file()
            # A log dir formatted by another instance: keep its ports (its data refers to
            # them), and re-register our users and admin password once it runs.
            adopted = formatted and not self._ports
            if adopted:
                self._ports = self._ports_from_config()
                formatted = adopted = bool(self._ports)
            # Freshly picked ports may be taken by someone else before the JVM binds them:
            # then pick again. Ports of an existing (restarted) broker are kept.
            attempts = 1 if formatted else 3
            for attempt in range(attempts):
                if not formatted:
                    names = ("PLAINTEXT", "SASL_PLAINTEXT", "CONTROLLER")
                    self._ports = dict(zip(names, _free_ports(3), strict=True))
                    shutil.rmtree(self._log_dir / "data", ignore_errors=True)
                self._write_config()
                if not formatted:
                    self._format(java, jars)
                try:
                    self._launch(java, jars, deadline)
                    break
                except BrokerError as exc:
                    retry = "Address already in use" in str(exc) and attempt + 1 < attempts
                    if not retry:
                        raise
                    log.info("port clash at broker start, retrying with new ports")
                    formatted = False
            if adopted:
                self._upsert_scram(ADMIN_USER, self._admin_password)
            # Users whose names or passwords `--add-scram` cannot carry are added now.
            for name, password in self._users.items():
                if adopted or not (_scram_literal_ok(name) and _scram_literal_ok(password)):
                    self._upsert_scram(name, password)
            return self

    def _ports_from_config(self) -> dict[str, int]:
        """Listener ports recorded in an existing ``server.properties`` ({} if none)."""
        assert self._log_dir is not None
        try:
            lines = (self._log_dir / "server.properties").read_text().splitlines()
        except OSError:
            return {}
        for line in lines:
            if line.startswith("listeners="):
                ports = {}
                for url in line.partition("=")[2].split(","):
                    name, _, hostport = url.partition("://")
                    ports[name] = int(hostport.rpartition(":")[2])
                if {"PLAINTEXT", "SASL_PLAINTEXT", "CONTROLLER"} <= ports.keys():
                    return ports
        return {}

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
        self._close_admin()
        proc, self._proc = self._proc, None
        _RUNNING.discard(self)
        if proc is None:
            return
        if proc.poll() is None:
            stop_pid(proc.pid, timeout)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)  # reap it: no zombie left behind

    def _close_admin(self) -> None:
        self._admin = None  # librdkafka handles are freed on garbage collection

    # ------------------------------------------------------------------ JVM plumbing
    def _write_config(self) -> None:
        assert self._log_dir is not None
        p = self._ports
        listeners = (
            f"PLAINTEXT://127.0.0.1:{p['PLAINTEXT']},"
            f"SASL_PLAINTEXT://127.0.0.1:{p['SASL_PLAINTEXT']},"
            f"CONTROLLER://127.0.0.1:{p['CONTROLLER']}"
        )
        scram_jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{p['CONTROLLER']}",
            "controller.listener.names": "CONTROLLER",
            "listeners": listeners,
            "advertised.listeners": (
                f"PLAINTEXT://127.0.0.1:{p['PLAINTEXT']},"
                f"SASL_PLAINTEXT://127.0.0.1:{p['SASL_PLAINTEXT']}"
            ),
            "listener.security.protocol.map": (
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT"
            ),
            "inter.broker.listener.name": "PLAINTEXT",
            "sasl.enabled.mechanisms": SCRAM_MECHANISM,
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": scram_jaas,
            # Real ACLs. Anonymous = PLAINTEXT/CONTROLLER listeners (admin, the broker itself).
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:ANONYMOUS;User:{ADMIN_USER}",
            "log.dirs": str(self._log_dir / "data"),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "delete.topic.enable": "true",
            # Fink alerts with cutouts can exceed the 1 MB default.
            "message.max.bytes": "10485760",
            # A small footprint: few threads, no idle work.
            "num.network.threads": "2",
            "num.io.threads": "2",
            "background.threads": "2",
            "num.recovery.threads.per.data.dir": "1",
            "log.cleaner.threads": "1",
            "log.cleaner.dedupe.buffer.size": "8388608",
        }
        text = "".join(f"{k}={v}\n" for k, v in props.items())
        (self._log_dir / "server.properties").write_text(text)
        (self._log_dir / "log4j2.xml").write_text(LOG4J2_XML)
        (self._log_dir / "logs").mkdir(exist_ok=True)

    def _jvm_flags(self) -> list[str]:
        assert self._log_dir is not None
        return [
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self._log_dir / 'log4j2.xml'}",
            f"-Dkafka.logs.dir={self._log_dir / 'logs'}",
        ]

    def _format(self, java: str, jars: Path) -> None:
        assert self._log_dir is not None
        cmd = [
            java, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            *self._jvm_flags(), "-cp", f"{jars}/*", "kafka.tools.StorageTool", "format",
            "--config", str(self._log_dir / "server.properties"),
            "--cluster-id", _cluster_id(),
        ]  # fmt: skip
        # NB: --add-scram puts passwords on a short-lived command line: test users only.
        users = {ADMIN_USER: self._admin_password, **self._users}
        for name, password in users.items():
            if _scram_literal_ok(name) and _scram_literal_ok(password):
                cmd += [
                    "--add-scram",
                    f'{SCRAM_MECHANISM}=[name="{name}",iterations={SCRAM_ITERATIONS},'
                    f'password="{password}"]',
                ]
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, check=False)
        if proc.returncode != 0:
            out = (proc.stdout + proc.stderr).decode(errors="replace").strip()[-3000:]
            raise BrokerError(f"formatting the Kafka storage failed:\n{out}")

    def _launch(self, java: str, jars: Path, deadline: float) -> None:
        assert self._log_dir is not None
        cmd = [
            java, f"-Xmx{self._heap}", "-Xms64m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            *self._jvm_flags(), "-cp", f"{jars}/*",
            "kafka.Kafka", str(self._log_dir / "server.properties"),
        ]  # fmt: skip
        if sys.platform.startswith("linux") and not self._detached:
            cmd = [sys.executable, "-I", "-S", "-c", _PDEATHSIG_SHIM, str(os.getpid()), *cmd]
        out_path = self._log_dir / "jvm.out"
        with open(out_path, "ab") as out:
            # Own session: signals to our terminal's process group do not reach the JVM and
            # stop() can signal the whole group. No inherited pipes: the JVM must never hold
            # a caller's stdout open (a detached broker would hang `subprocess.run`).
            self._proc = _LAUNCHER.call(
                lambda: subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                )
            )
        if not self._detached:
            _RUNNING.add(self)
        try:
            self._wait_ready(deadline)
        except BaseException:
            self._stop_jvm(timeout=5)
            raise

    def _wait_ready(self, deadline: float) -> None:
        """Poll the admin listener until the broker answers a metadata request."""
        from confluent_kafka.admin import AdminClient

        probe = AdminClient(self._admin_conf(fast=True))
        while True:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                raise BrokerError(
                    f"the Kafka broker exited during start (exit code {code}); "
                    f"log in {self.log_dir}:\n{self._log_tail()}"
                )
            try:
                probe.list_topics(timeout=1.0)
                return
            except Exception:  # KafkaException while the broker is not listening yet
                if time.monotonic() > deadline:
                    raise BrokerError(
                        f"the Kafka broker was not ready in time; log in {self.log_dir}:\n"
                        f"{self._log_tail()}"
                    ) from None
                time.sleep(0.1)

    def _log_tail(self) -> str:
        assert self._log_dir is not None
        parts = []
        for path in (self._log_dir / "jvm.out", self._log_dir / "logs" / "server.log"):
            tail = _tail(path)
            if tail:
                parts.append(f"--- {path.name} ---\n{tail}")
        return "\n".join(parts) or "(no log written)"

    # ------------------------------------------------------------------ clients
    def _admin_conf(self, fast: bool = False) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "bootstrap.servers": self.admin_servers,
            "logger": logging.getLogger("fink_client.localkafka.rdkafka"),
        }
        if fast:
            conf.update({"reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 200})
        return conf

    def admin(self) -> Any:
        """A ``confluent_kafka.admin.AdminClient`` on the admin (super user) listener."""
        from confluent_kafka.admin import AdminClient

        if not self.running:
            raise BrokerError("the broker is not running: call start() first")
        if self._admin is None:
            self._admin = AdminClient(self._admin_conf())
        return self._admin

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
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": SCRAM_MECHANISM,
            "sasl.username": user,
            "sasl.password": password,
        }

    # ------------------------------------------------------------------ admin helpers
    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        config: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> str:
        """Create a topic and wait until every partition has a leader; return its name."""
        from confluent_kafka.admin import NewTopic

        admin = self.admin()
        new = NewTopic(name, num_partitions=partitions, replication_factor=1,
                       config=dict(config or {}))  # fmt: skip
        try:
            admin.create_topics([new], operation_timeout=timeout)[name].result(timeout)
        except Exception as exc:
            raise BrokerError(f"could not create topic '{name}': {exc}") from exc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            meta = admin.list_topics(topic=name, timeout=timeout).topics.get(name)
            if (
                meta is not None
                and meta.error is None
                and len(meta.partitions) == partitions
                and all(p.leader >= 0 for p in meta.partitions.values())
            ):
                return name
            time.sleep(0.05)
        raise BrokerError(f"topic '{name}' was created but has no leader after {timeout} s")

    def delete_topic(self, name: str, timeout: float = 30.0) -> None:
        """Delete a topic and wait until the broker no longer lists it."""
        admin = self.admin()
        try:
            admin.delete_topics([name], operation_timeout=timeout)[name].result(timeout)
        except Exception as exc:
            raise BrokerError(f"could not delete topic '{name}': {exc}") from exc
        deadline = time.monotonic() + timeout
        while name in admin.list_topics(timeout=timeout).topics:
            if time.monotonic() > deadline:
                raise BrokerError(f"topic '{name}' still listed {timeout} s after deletion")
            time.sleep(0.05)

    def add_user(self, name: str, password: str, timeout: float = 30.0) -> None:
        """Create (or change the password of) a SCRAM-SHA-512 user on the running broker."""
        if name == ADMIN_USER:
            raise BrokerError(f"user name '{ADMIN_USER}' is reserved for the broker's admin")
        self._upsert_scram(name, password, timeout)
        self._users[name] = password

    def _upsert_scram(self, name: str, password: str, timeout: float = 30.0) -> None:
        from confluent_kafka.admin import (
            ScramCredentialInfo,
            ScramMechanism,
            UserScramCredentialUpsertion,
        )

        admin = self.admin()
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
        upsert = UserScramCredentialUpsertion(name, info, password.encode())
        try:
            admin.alter_user_scram_credentials([upsert])[name].result(timeout)
        except Exception as exc:
            raise BrokerError(f"could not add user '{name}': {exc}") from exc

    def allow(
        self,
        user: str,
        topics: Iterable[str] = (),
        groups: Iterable[str] = (),
        prefixed: bool = False,
        operations: Iterable[str] = ("READ", "DESCRIBE"),
        timeout: float = 30.0,
    ) -> None:
        """Grant ``user`` the topic ``operations`` on ``topics`` and READ on ``groups``.

        Names are literal (``"*"`` means every topic or group) or, with ``prefixed=True``,
        prefixes. Returns once the broker's authorizer reports the new ACLs.
        """
        from confluent_kafka.admin import (
            AclBinding,
            AclBindingFilter,
            AclOperation,
            AclPermissionType,
            ResourcePatternType,
            ResourceType,
        )

        topics, groups = tuple(topics), tuple(groups)  # iterated more than once
        pattern = ResourcePatternType.PREFIXED if prefixed else ResourcePatternType.LITERAL
        principal = f"User:{user}"
        bindings = []
        for op in operations:
            try:
                operation = AclOperation[op.upper()]
            except KeyError:
                raise BrokerError(f"unknown ACL operation '{op}'") from None
            for topic in topics:
                bindings.append(
                    AclBinding(ResourceType.TOPIC, topic, pattern, principal, "*",
                               operation, AclPermissionType.ALLOW)
                )  # fmt: skip
        for group in groups:
            bindings.append(
                AclBinding(ResourceType.GROUP, group, pattern, principal, "*",
                           AclOperation.READ, AclPermissionType.ALLOW)
            )  # fmt: skip
        if not bindings:
            return
        admin = self.admin()
        try:
            for fut in admin.create_acls(bindings, request_timeout=timeout).values():
                fut.result(timeout)
        except Exception as exc:
            raise BrokerError(f"could not create ACLs for '{user}': {exc}") from exc
        # The authorizer applies metadata asynchronously: wait until it lists them all.
        query = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, principal,
                                 None, AclOperation.ANY, AclPermissionType.ANY)  # fmt: skip
        wanted = {(b.restype, b.name, b.resource_pattern_type, b.operation) for b in bindings}
        deadline = time.monotonic() + timeout
        while True:
            found = admin.describe_acls(query, request_timeout=timeout).result(timeout)
            have = {(b.restype, b.name, b.resource_pattern_type, b.operation) for b in found}
            if wanted <= have:
                return
            if time.monotonic() > deadline:
                raise BrokerError(f"ACLs for '{user}' not visible after {timeout} s")
            time.sleep(0.05)

