"""``finkctl replay`` to the local broker by default, bounded when the broker is
unreachable; bad numbers and secrets on the command line refused as usage errors.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from fink_client.consumer import AlertConsumer
from tests.helpers import FINKCTL, SAMPLES, drain, unique_group

FINK = SAMPLES / "ztf" / "fink"


def finkctl(*args: str, env: dict | None = None, timeout: float = 60,
            ) -> subprocess.CompletedProcess:
    return subprocess.run([*FINKCTL, *args], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL,
                          timeout=timeout)


def _env(tmp_path: Path) -> dict:
    """A user environment with its own (empty) cache and config folders."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("FINK_")}
    e["FINK_CLIENT_CACHE"] = str(tmp_path / "cache")
    e["FINK_CLIENT_CONFIG_DIR"] = str(tmp_path / "config")
    return e


@pytest.mark.integration
def test_replay_without_servers_publishes_to_the_local_broker(kafka, topic, alice_config,
                                                             tmp_path: Path) -> None:
    """The state `finkctl broker start` records (<cache>/broker/state.json) names a live
    Kafka process: here the session's broker."""
    env = _env(tmp_path)
    state_dir = tmp_path / "cache" / "broker"
    state_dir.mkdir(parents=True)
    (state_dir / "state.json").write_text(json.dumps({
        "pid": kafka.pid, "admin_servers": kafka.admin_servers,
        "bootstrap_servers": kafka.bootstrap_servers,
    }))
    r = finkctl("replay", str(FINK), "--topic", topic, "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"topic": topic, "published": 4}
    with AlertConsumer([topic], alice_config(unique_group())) as consumer:
        assert len(drain(consumer, 4)) == 4


def test_replay_without_servers_and_no_local_broker(tmp_path: Path) -> None:
    r = finkctl("replay", str(FINK), "--topic", "t", env=_env(tmp_path))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and "ImportError" not in r.stderr
    assert "no local broker is running" in r.stderr and "finkctl broker start" in r.stderr


def test_replay_to_an_unreachable_broker_fails_fast_in_one_line(tmp_path: Path) -> None:
    """Bounded by the connect timeout (15 s by default; the old code took 61 s and printed
    ~600 librdkafka lines): one clear error line, librdkafka quiet without -vv."""
    r = finkctl("replay", str(FINK), "--topic", "t", "--servers", "127.0.0.1:1",
                env=_env(tmp_path), timeout=45)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr[:2000]
    assert "127.0.0.1:1" in lines[0] and "within 15 s" in lines[0]
    assert "rdkafka" not in r.stderr and "Traceback" not in r.stderr


@pytest.mark.integration
def test_replay_with_a_wrong_password_is_an_authentication_error(kafka, tmp_path: Path) -> None:
    env = dict(_env(tmp_path), FINK_PASSWORD="wrong-password")
    r = finkctl("replay", str(FINK), "--topic", "t", "--servers", kafka.bootstrap_servers,
                "--username", "alice", env=env, timeout=45)
    assert r.returncode == 1
    assert "authentication failed" in r.stderr and "wrong-password" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr[:2000]


@pytest.mark.parametrize("args", [
    ("stream", "t", "--timeout", "nan"),
    ("stream", "t", "--connect-timeout", "nan"),
    ("stream", "t", "--timeout", "inf"),
    ("topics", "--connect-timeout", "NaN"),
    ("offsets", "t", "--connect-timeout=-inf"),
    ("schema", "t", "--timeout", "nan"),
    ("broker", "start", "--timeout", "nan"),
    ("auth", "register", "--check", "--connect-timeout", "nan"),
    ("replay", "f.avro", "--topic", "t", "--connect-timeout", "nan"),
    ("replay", "f.avro", "--topic", "t", "--rate", "nan"),
])
def test_non_finite_seconds_are_usage_errors(args: tuple[str, ...], tmp_path: Path) -> None:
    r = finkctl(*args, env=_env(tmp_path), timeout=30)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "expected a finite number" in r.stderr


@pytest.mark.parametrize("key", [
    "ssl.key.pem", "ssl_key", "ssl.key.password", "ssl.keystore.password", "sasl.password",
    "sasl.oauthbearer.config", "sasl.oauthbearer.client.secret", "SSL.KEY.PEM",
])
def test_secret_librdkafka_keys_refused_on_the_command_line(key: str, tmp_path: Path) -> None:
    r = finkctl("topics", "--servers", "127.0.0.1:1", "--group-id", "g", "-X",
                f"{key}=-----BEGIN PRIVATE KEY-----", env=_env(tmp_path), timeout=30)
    assert r.returncode == 2, r.stderr
    assert "never put a secret on the command line" in r.stderr and key in r.stderr
