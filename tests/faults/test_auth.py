"""Authentication and authorisation faults: typed errors, fast, and no password leak.

Wrong password, unknown user, topic without ACL, group without ACL: each must raise
its typed :class:`AlertError` subclass within 30 s (a bound, not a benchmark: a hang
or an endless retry loop fails). The password must never appear in logs (captured at
DEBUG, librdkafka's security/broker debug included), exception texts and attributes,
``repr(consumer)``, nor in the ``ps`` output of a running ``finkctl stream``.
"""

from __future__ import annotations

import logging
import subprocess
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from fink_client.consumer import AlertConsumer
from fink_client.errors import (
    AlertError,
    AuthenticationError,
    GroupAuthorizationError,
    TopicAuthorizationError,
)
from tests.faults.helpers import encode_all, env_with, publish_spread, unique_alerts, wait_for
from tests.helpers import FINKCTL

pytestmark = [pytest.mark.faults, pytest.mark.integration]

BOUND_S = 30.0
SECRET = f"pw-{uuid.uuid4().hex}"  # a password unique enough to grep for


@pytest.fixture(scope="module")
def carol(kafka) -> str:
    """User allowed to read every topic but to use no consumer group."""
    kafka.add_user("carol", SECRET)
    kafka.allow("carol", topics=["*"])
    return "carol"


@pytest.fixture(scope="module")
def auth_topic(kafka) -> str:
    """A topic with a few alerts."""
    name = kafka.create_topic(f"auth-{uuid.uuid4().hex[:8]}")
    publish_spread(encode_all(unique_alerts(5)), name, kafka.admin_servers, 1)
    return name


def _config(kafka, user: str, password: str) -> dict:
    return {"username": user, "password": password, "group_id": f"g-{uuid.uuid4().hex[:8]}",
            "bootstrap.servers": kafka.bootstrap_servers,
            "debug": "security,broker,protocol"}  # librdkafka's most talkative areas


def _texts(exc: BaseException, consumer: AlertConsumer | None = None) -> str:
    """Everything an error (and its chain) or a consumer shows of itself."""
    parts = ["".join(traceback.format_exception(exc)), repr(exc), repr(vars(exc))]
    if consumer is not None:
        parts.append(repr(consumer))
    return "\n".join(parts)


def _expect(error: type[AlertError], make: Callable[[], AlertConsumer],
            caplog: pytest.LogCaptureFixture, password: str) -> AlertError:
    """Run ``make`` (and a poll), expect ``error`` within the bound, check for leaks."""
    caplog.set_level(logging.DEBUG)
    # Explicitly: a CLI run in this process (finkctl main()) may have quieted this logger.
    caplog.set_level(logging.DEBUG, logger="fink_client.librdkafka")
    t0 = time.monotonic()
    consumer = None
    with pytest.raises(error) as info:
        consumer = make()
        try:
            while time.monotonic() - t0 < BOUND_S + 5:
                consumer.poll(timeout=1)
        finally:
            shown = repr(consumer)
            consumer.close()
    elapsed = time.monotonic() - t0
    assert elapsed < BOUND_S, f"{error.__name__} took {elapsed:.1f} s"
    assert password not in _texts(info.value)
    if consumer is not None:
        assert password not in shown
    logs = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert logs, "no log captured at all: the leak check would be empty"
    assert password not in logs
    assert password not in caplog.text
    return info.value


def test_wrong_password(kafka, auth_topic, caplog) -> None:
    err = _expect(AuthenticationError, lambda: AlertConsumer(
        [auth_topic], _config(kafka, "alice", SECRET)), caplog, SECRET)
    assert "finkctl auth" in str(err)  # says what to do


def test_unknown_user(kafka, auth_topic, caplog) -> None:
    _expect(AuthenticationError, lambda: AlertConsumer(
        [auth_topic], _config(kafka, "mallory", SECRET)), caplog, SECRET)


def test_topic_without_acl(kafka, auth_topic, caplog) -> None:
    """bob is authenticated but may read no topic."""
    kafka.add_user("bob", SECRET)  # same user, a password we can grep for
    try:
        err = _expect(TopicAuthorizationError, lambda: AlertConsumer(
            [auth_topic], _config(kafka, "bob", SECRET)), caplog, SECRET)
    finally:
        kafka.add_user("bob", "bob-secret")
    assert err.topic == auth_topic


def test_group_without_acl(kafka, auth_topic, carol, caplog) -> None:
    """carol may read the topic but use no group: the error comes at the first poll."""
    err = _expect(GroupAuthorizationError, lambda: AlertConsumer(
        [auth_topic], _config(kafka, carol, SECRET)), caplog, SECRET)
    assert "group" in str(err)


def test_password_not_in_ps_output_of_finkctl_stream(kafka, auth_topic, tmp_path) -> None:
    """Credentials registered with `finkctl auth`; ps shows neither args nor env secret."""
    cfg_dir = tmp_path / "cfg"
    env = env_with({"FINK_CLIENT_CONFIG_DIR": str(cfg_dir)})
    for var in ("FINK_USERNAME", "FINK_PASSWORD", "FINK_GROUP_ID", "FINK_SERVERS"):
        env.pop(var, None)
    reg = subprocess.run(
        [*FINKCTL, "auth", "register", "--username", "carol", "--group-id", "g-ps",
         "--servers", kafka.bootstrap_servers, "--password-stdin"],
        input=f"{SECRET}\n".encode(), env=env, capture_output=True, timeout=60)
    assert reg.returncode == 0, reg.stderr.decode()
    assert SECRET not in (reg.stdout + reg.stderr).decode()
    kafka.allow("carol", groups=["g-ps"])
    proc = subprocess.Popen([*FINKCTL, "-vv", "stream", auth_topic, "--save",
                             str(tmp_path / "out")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: proc.poll() is not None, 3.0)  # running, connected, waiting
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        ps = subprocess.run(["ps", "-eww", "-o", "pid,args"], capture_output=True, text=True)
        ps_env = subprocess.run(["ps", "eww", "-p", str(proc.pid)], capture_output=True,
                                text=True)
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    assert str(proc.pid) in ps.stdout and "finkctl" in ps.stdout
    assert SECRET not in ps.stdout
    assert SECRET not in ps_env.stdout
    assert SECRET not in cmdline
    assert SECRET not in (out + err).decode(), "password in finkctl -vv output"
