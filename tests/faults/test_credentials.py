"""Credentials file faults: created 0600; a group/world-readable file is refused.

Decision (CLI, documented in ``finkctl auth --help`` and the README): a credentials
file readable by the group or others is **refused** with an error saying how to fix
it (``chmod 600``) — not merely warned about — and the password is never printed.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.faults.helpers import env_with
from tests.helpers import FINKCTL

pytestmark = pytest.mark.faults

SECRET = "cred-file-secret-8f3a"


def _env(cfg: Path) -> dict[str, str]:
    env = env_with({"FINK_CLIENT_CONFIG_DIR": str(cfg)})
    for var in ("FINK_USERNAME", "FINK_PASSWORD", "FINK_GROUP_ID", "FINK_SERVERS"):
        env.pop(var, None)
    return env


def _register(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*FINKCTL, "auth", "register", "--username", "u", "--group-id", "g",
         "--servers", "127.0.0.1:9", "--password-stdin"],
        input=f"{SECRET}\n".encode(), env=env, capture_output=True, timeout=60)


def _credentials_file(cfg: Path) -> Path:
    files = [p for p in cfg.rglob("*") if p.is_file()]
    assert len(files) == 1, files
    return files[0]


def test_created_0600(tmp_path) -> None:
    env = _env(tmp_path / "cfg")
    old = os.umask(0o022)  # a permissive umask must not matter
    try:
        reg = _register(env)
    finally:
        os.umask(old)
    assert reg.returncode == 0, reg.stderr.decode()
    path = _credentials_file(tmp_path / "cfg")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SECRET not in (reg.stdout + reg.stderr).decode()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_readable_file_refused(tmp_path, mode: int) -> None:
    env = _env(tmp_path / "cfg")
    assert _register(env).returncode == 0
    path = _credentials_file(tmp_path / "cfg")
    path.chmod(mode)
    for cmd in ([*FINKCTL, "auth", "show"],
                [*FINKCTL, "stream", "some-topic", "--connect-timeout", "2"]):
        proc = subprocess.run(cmd, env=env, capture_output=True, timeout=60)
        out = (proc.stdout + proc.stderr).decode()
        assert proc.returncode != 0, f"{cmd} accepted a {mode:04o} credentials file"
        assert "chmod 600" in out, out
        assert SECRET not in out
    path.chmod(0o600)
    ok = subprocess.run([*FINKCTL, "auth", "show"], env=env, capture_output=True, timeout=60)
    assert ok.returncode == 0, ok.stderr.decode()
    assert SECRET not in (ok.stdout + ok.stderr).decode()
