"""fink-client's benchmarks (``python -m benchmarks``, ``python -m benchmarks.transfer``)."""

from __future__ import annotations

import compileall
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "fink_client"


def byte_compile_package(package: Path = PACKAGE) -> bool:
    """Byte-compile fink_client's modules (``__pycache__``), as pip does when it installs
    a package: the upstream peer is measured pip-installed, compiled. A checkout run
    with ``PYTHONDONTWRITEBYTECODE=1`` (set on some machines) writes no ``.pyc``, so
    every process a run starts (a transfer's worker server, a measurement's fresh
    interpreter) would compile each module it imports again: ~0.1 s of CPU per process
    here, a cost no installed copy has. ``package``: the folder of
    the package (fink_client's by default). Returns True when every module compiled."""
    return bool(compileall.compile_dir(package, quiet=1))
