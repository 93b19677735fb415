"""Upstream fink-client (from PyPI) in its own virtualenv, for the end-to-end comparison.

:func:`python` creates ``~/.cache/fink-client/bench-upstream-venv`` once (``python -m
venv`` + ``pip install fink-client``), never touching the project's ``.venv``, and
returns its interpreter. :func:`consume` runs upstream's ``AlertConsumer.consume`` in
that interpreter, isolated (``-I``, run from a scratch folder) so that it imports
upstream's ``fink_client`` and not this project's. Only upstream's public API is used
(``AlertConsumer(topics, config, survey)``, ``consume(num_alerts, timeout)`` returning
``(topic, alert, key)`` triples, config keys ``bootstrap.servers`` and ``group.id``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

VENV = Path(os.environ.get("FINK_CLIENT_CACHE", Path.home() / ".cache" / "fink-client")) \
    / "bench-upstream-venv"

# Runs inside the upstream venv: prints one JSON line like benchmarks.worker.
SCRIPT = r"""
import json, resource, sys, time, uuid
from importlib.metadata import version
from fink_client.consumer import AlertConsumer

args = json.loads(sys.argv[1])
config = {"bootstrap.servers": args["servers"], "group.id": "bench-" + uuid.uuid4().hex[:8]}
consumer = AlertConsumer([args["topic"]], config, survey="ztf")
n = 0
while not n:
    n = len([a for a in consumer.consume(num_alerts=1, timeout=1.0) if a[1] is not None])
start = time.perf_counter()
while n < args["count"]:
    n += len([a for a in consumer.consume(num_alerts=100, timeout=1.0) if a[1] is not None])
seconds = time.perf_counter() - start
consumer.close()
import fink_client
print(json.dumps({"alerts": n, "bytes": 0, "seconds": seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "version": version("fink-client"), "module": fink_client.__file__}))
"""


def python() -> Path:
    """The upstream venv's interpreter, creating the venv first if needed."""
    exe = VENV / "bin" / "python"
    if not exe.exists() or subprocess.run([str(exe), "-I", "-c", "import fink_client.consumer"],
                                          capture_output=True).returncode != 0:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True,
                       capture_output=True)
        proc = subprocess.run([str(exe), "-m", "pip", "install", "-q", "fink-client"],
                              capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"pip install fink-client failed: {proc.stderr.strip()[-400:]}")
    return exe


def consume(servers: str, topic: str, count: int, timeout: float = 1800) -> dict[str, Any]:
    """Upstream's alerts/s on ``topic`` (decoding to dicts), as a worker result dict."""
    exe = python()
    with tempfile.TemporaryDirectory(prefix="fink-bench-upstream-") as scratch:
        proc = subprocess.run(
            [str(exe), "-I", "-c", SCRIPT,
             json.dumps({"servers": servers, "topic": topic, "count": count})],
            capture_output=True, text=True, cwd=scratch, timeout=timeout,
        )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"upstream consumer failed: {proc.stderr.strip()[-600:]}")
    out = json.loads(lines[-1])
    if not out["module"].startswith(str(VENV)):
        raise RuntimeError(f"imported {out['module']}, not upstream's fink_client")
    return out
