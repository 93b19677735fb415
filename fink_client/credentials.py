"""Per-user credentials file for Fink's streams, one entry per survey.

The file is ``credentials.json`` in ``$FINK_CLIENT_CONFIG_DIR`` (default
``~/.config/fink-client``)::

    {"version": 1, "surveys": {"ztf": {"username": "...", "password": "...",
                                       "group_id": "...", "servers": "host:port"}}}

Security rules:

- the file is created with mode 0600 (and its folder 0700), written atomically;
- a file that the group or others may read (or that another user owns) is **refused**
  with a :class:`CredentialsError` telling the user to ``chmod 600`` it: a password that
  has been readable by others must be treated as leaked, so we never use it silently;
- environment variables ``FINK_USERNAME``, ``FINK_PASSWORD``, ``FINK_GROUP_ID`` and
  ``FINK_SERVERS`` override the file's values field by field;
- the password never appears in ``repr``, ``str`` or :meth:`Credentials.public`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fink_client.config import DEFAULT_SERVERS, DEFAULT_SURVEY, SURVEYS
from fink_client.errors import CredentialsError

#: Environment variable naming the folder of the credentials file.
CONFIG_DIR_ENV = "FINK_CLIENT_CONFIG_DIR"
FILE_NAME = "credentials.json"
#: Environment variables that override the file, per field.
ENV_VARS: dict[str, str] = {
    "username": "FINK_USERNAME",
    "password": "FINK_PASSWORD",
    "group_id": "FINK_GROUP_ID",
    "servers": "FINK_SERVERS",
}
FIELDS = tuple(ENV_VARS)
MASK = "********"


def config_dir() -> Path:
    """Folder of the credentials file: ``$FINK_CLIENT_CONFIG_DIR`` or ``~/.config/fink-client``."""
    given = os.environ.get(CONFIG_DIR_ENV)
    if given:
        return Path(given).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "fink-client"


def credentials_path() -> Path:
    """Path of the credentials file (it may not exist)."""
    return config_dir() / FILE_NAME


@dataclasses.dataclass
class Credentials:
    """Effective credentials of one survey; ``sources`` says where each field came from.

    The password is excluded from ``repr`` so that logging this object cannot leak it.
    """

    survey: str
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    group_id: str | None = None
    servers: str | None = None
    sources: dict[str, str] = dataclasses.field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        """The fields as a dict with the password masked (safe to print or log)."""
        return {
            "survey": self.survey,
            "username": self.username,
            "password": MASK if self.password else None,
            "group_id": self.group_id,
            "servers": self.servers,
            "sources": dict(self.sources),
        }

    def to_config(self, **extra: Any) -> dict[str, Any]:
        """The config dict for :class:`AlertConsumer` (``extra`` keys are added).

        Raises :class:`CredentialsError` when there is no group id, since every consumer
        needs one and ``finkctl auth register`` is the way to set it.
        """
        if not self.group_id:
            raise CredentialsError(
                f"no group id for survey {self.survey!r}: run `finkctl auth register "
                f"--survey {self.survey}` or set {ENV_VARS['group_id']}"
            )
        cfg: dict[str, Any] = {"group_id": self.group_id, "survey": self.survey}
        if self.username:
            if not self.password:
                raise CredentialsError(
                    f"username {self.username!r} has no password: run `finkctl auth register` "
                    f"or set {ENV_VARS['password']}"
                )
            cfg["username"] = self.username
            cfg["password"] = self.password
        if self.servers:
            cfg["bootstrap.servers"] = self.servers
        cfg.update(extra)
        return cfg


def check_permissions(path: Path) -> None:
    """Refuse a credentials file that others could read or that another user owns."""
    st = path.stat()
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(
            f"credentials file {path} is readable by others (mode "
            f"{stat.S_IMODE(st.st_mode):04o}); fix it with `chmod 600 {path}` and consider "
            "changing your password, since others may have read it",
            path=str(path),
        )
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise CredentialsError(
            f"credentials file {path} belongs to another user (uid {st.st_uid}); "
            "register your own with `finkctl auth register`",
            path=str(path),
        )


def load_file(path: Path | None = None) -> dict[str, dict[str, str]]:
    """Survey -> stored fields, from the credentials file (empty if there is none).

    Raises :class:`CredentialsError` for an unsafe mode, an unreadable or corrupt file.
    """
    path = credentials_path() if path is None else Path(path)
    if not path.exists():
        return {}
    check_permissions(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CredentialsError(
            f"cannot read credentials file {path}: {exc.__class__.__name__}; remove it and "
            "register again with `finkctl auth register`",
            path=str(path),
        ) from None
    surveys = data.get("surveys") if isinstance(data, dict) else None
    if not isinstance(surveys, dict):
        raise CredentialsError(
            f"credentials file {path} has no 'surveys' table; remove it and register again",
            path=str(path),
        )
    return {
        str(name): {k: str(v) for k, v in entry.items() if k in FIELDS and v is not None}
        for name, entry in surveys.items()
        if isinstance(entry, dict)
    }


def _write_file(path: Path, surveys: Mapping[str, Mapping[str, str]]) -> None:
    """Write the file atomically, created 0600 from the start (never briefly readable)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = json.dumps({"version": 1, "surveys": surveys}, indent=1, sort_keys=True) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode is subject to the umask; be explicit
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)


def save(survey: str, entry: Mapping[str, str | None], path: Path | None = None) -> Path:
    """Store (replace) the credentials of ``survey``; return the file's path."""
    survey = normalise_survey(survey)
    path = credentials_path() if path is None else Path(path)
    surveys = load_file(path)
    surveys[survey] = {k: str(v) for k, v in entry.items() if k in FIELDS and v}
    _write_file(path, surveys)
    return path


def remove(survey: str, path: Path | None = None) -> bool:
    """Forget the credentials of ``survey``; delete the file when it becomes empty.

    Returns False when nothing was stored for that survey.
    """
    survey = normalise_survey(survey)
    path = credentials_path() if path is None else Path(path)
    surveys = load_file(path)
    if survey not in surveys:
        return False
    del surveys[survey]
    if surveys:
        _write_file(path, surveys)
    else:
        path.unlink()
    return True


def normalise_survey(survey: str) -> str:
    """Lower-case survey name, checked against :data:`SURVEYS`."""
    name = (survey or "").strip().lower()
    if name not in SURVEYS:
        raise CredentialsError(f"unknown survey {survey!r}: choose one of {', '.join(SURVEYS)}")
    return name


def default_survey(path: Path | None = None) -> str:
    """The survey to use when none is given: the only registered one, else ZTF."""
    stored = load_file(path)
    return next(iter(stored)) if len(stored) == 1 else DEFAULT_SURVEY


def resolve(
    survey: str | None = None,
    overrides: Mapping[str, str | None] | None = None,
    *,
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Credentials:
    """Effective credentials of ``survey``: file, then environment, then ``overrides``.

    ``overrides`` are explicit values (command-line flags) and win over everything.
    The file is only read if it exists; reading it applies :func:`check_permissions`.
    """
    env = os.environ if environ is None else environ
    survey = normalise_survey(survey) if survey else default_survey(path)
    creds = Credentials(survey=survey)
    file_path = credentials_path() if path is None else Path(path)
    stored = load_file(file_path).get(survey, {})
    for name in FIELDS:
        value, source = stored.get(name), f"file {file_path}"
        if env.get(ENV_VARS[name]):
            value, source = env[ENV_VARS[name]], f"env {ENV_VARS[name]}"
        if overrides and overrides.get(name):
            value, source = overrides[name], "command line"
        if value:
            setattr(creds, name, value)
            creds.sources[name] = source
    if not creds.servers and survey in DEFAULT_SERVERS:
        creds.servers = DEFAULT_SERVERS[survey]
        creds.sources["servers"] = "default"
    return creds


__all__ = [
    "CONFIG_DIR_ENV",
    "ENV_VARS",
    "SURVEYS",
    "Credentials",
    "check_permissions",
    "config_dir",
    "credentials_path",
    "default_survey",
    "load_file",
    "normalise_survey",
    "remove",
    "resolve",
    "save",
]
