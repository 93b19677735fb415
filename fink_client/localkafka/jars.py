"""Fetch the Apache Kafka jars of the embedded broker, once, into a per-user cache.

The only download path is Maven (``mvn dependency:copy-dependencies`` on the ``pom.xml``
shipped next to this module), so the jars come from Maven Central or the user's mirror.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from fink_client.errors import BrokerError

log = logging.getLogger(__name__)

#: Version of ``org.apache.kafka:kafka_2.13`` pinned in ``pom.xml``.
KAFKA_VERSION = "4.4.0"

#: Name of the file written last into a complete jar folder.
MARKER = ".complete"

POM = Path(__file__).with_name("pom.xml")

INSTALL_JAVA = "install Java 17+ (e.g. apt-get install openjdk-17-jre-headless)"
INSTALL_MAVEN = "install Maven (e.g. apt-get install maven)"


def cache_root() -> Path:
    """Per-user cache folder of fink-client.

    ``$FINK_CLIENT_CACHE`` if set, else ``$XDG_CACHE_HOME/fink-client``, else
    ``~/.cache/fink-client``.
    """
    env = os.environ.get("FINK_CLIENT_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "fink-client"


def java_executable() -> str:
    """Path of ``java`` (``$JAVA_HOME/bin/java`` first), or raise :class:`BrokerError`."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("java")
    if not found:
        raise BrokerError(f"'java' was not found on PATH: {INSTALL_JAVA}")
    return found


def ensure_jars(cache_dir: Path | str | None = None) -> Path:
    """Return a folder holding every jar the broker needs, fetching them once via Maven.

    ``cache_dir`` is the folder for the jars themselves (default
    ``<cache_root()>/kafka-4.4.0``). Maven writes into a temporary sibling folder that is
    renamed into place only after success and a marker file is written, so an
    interrupted fetch is never mistaken for a complete one. Concurrent callers are safe:
    the first rename wins and the others discard their copy.

    Raises :class:`BrokerError` when ``java`` or ``mvn`` is missing or Maven fails.
    """
    target = Path(cache_dir).expanduser() if cache_dir else cache_root() / f"kafka-{KAFKA_VERSION}"
    java_executable()  # fail early with a useful message: no point fetching without Java
    if (target / MARKER).is_file():
        return target

    mvn = shutil.which("mvn")
    if not mvn:
        raise BrokerError(f"'mvn' was not found on PATH: {INSTALL_MAVEN}")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # incomplete leftover (no marker): replace it
        shutil.rmtree(target, ignore_errors=True)

    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    # Maven runs on a copy of the pom so that nothing is written next to the installed package.
    work = Path(tempfile.mkdtemp(prefix="fink-mvn-"))
    try:
        log.info("fetching Apache Kafka %s jars with Maven into %s", KAFKA_VERSION, target)
        shutil.copyfile(POM, work / "pom.xml")
        cmd = [
            mvn, "-q", "-B", "-f", str(work / "pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp}",
            "-DincludeScope=runtime",
        ]  # fmt: skip
        proc = subprocess.run(
            cmd, cwd=work, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0 or not any(tmp.glob("kafka_2.13-*.jar")):
            tail = (proc.stdout + proc.stderr).strip()[-2000:]
            raise BrokerError(
                f"Maven could not fetch the Kafka jars (exit {proc.returncode}); check network "
                f"access to Maven Central or your ~/.m2/settings.xml mirror:\n{tail}"
            )
        (tmp / MARKER).write_text(f"kafka {KAFKA_VERSION}\n")
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / MARKER).is_file():  # not a concurrent success: a real failure
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
