"""Packaging: the C fast path is built wherever it can be; one version.

``setup.py`` marks ``fink_client._fastdecode`` optional so that an install without a
compiler still works (fastavro decodes instead). The price is that a broken build is
silent: the equality tests skip and the suite stays green. The first test closes that gap: on a
machine with a C compiler and the Python headers, the extension must import.
"""

from __future__ import annotations

import importlib
import importlib.metadata

import pytest

import fink_client
from fink_client import fastdecode
from tests.helpers import c_compiler, python_headers


def test_fast_path_is_built_where_a_compiler_exists() -> None:
    compiler = c_compiler()
    if compiler is None or not python_headers():
        pytest.skip("no C compiler or no Python headers: the fast path is optional here")
    try:
        importlib.import_module("fink_client._fastdecode")
    except ImportError as exc:
        pytest.fail(
            f"a C compiler ({compiler}) and Python.h are present but the extension "
            f"fink_client._fastdecode does not import ({exc}); its build failed: reinstall "
            "with `.venv/bin/python -m pip install -v -e .` and read the compiler output"
        )
    assert fastdecode.available()



def test_one_version_source() -> None:
    """The installed metadata's version is read from ``fink_client.__version__``."""
    assert importlib.metadata.version("fink-client") == fink_client.__version__
