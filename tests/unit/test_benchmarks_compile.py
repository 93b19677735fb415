"""``benchmarks.byte_compile_package``: a checkout measured as pip installs it, with every
module byte-compiled, even where the environment asks Python to write no bytecode."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from benchmarks import PACKAGE, byte_compile_package


def test_every_module_gets_its_pyc_even_with_dont_write_bytecode(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    (tmp_path / "sub").mkdir()
    for rel in ("__init__.py", "mod.py", "sub/__init__.py", "sub/deep.py"):
        (tmp_path / rel).write_text("VALUE = 1\n")
    assert byte_compile_package(tmp_path)
    tag = sys.implementation.cache_tag
    for rel in ("__init__", "mod", "sub/__init__", "sub/deep"):
        path = tmp_path / rel
        assert (path.parent / "__pycache__" / f"{path.name}.{tag}.pyc").is_file(), rel


def test_a_module_that_does_not_compile_is_reported(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("def broken(:\n")
    assert not byte_compile_package(tmp_path)


def test_the_default_is_the_fink_client_package() -> None:
    assert (PACKAGE / "consumer.py").is_file()
