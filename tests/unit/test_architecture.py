"""The import rules of docs/architecture.md, checked on the source (every import, also the
ones inside functions): a rule broken by a change fails here, not in a review."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

import fink_client

PACKAGE = Path(fink_client.__file__).resolve().parent

# The layers below delivery: they work without Kafka and never reach up.
LOWER = ("errors", "avroschema", "codec", "fastdecode", "compare", "schemas", "survey", "wire",
         "encoder", "io", "viz")
UPPER = ("_kafka", "consumer", "offsets", "streamloop", "sink", "cli", "localkafka", "testing")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of every module imported by ``path`` (``from a import b`` gives
    ``a`` and ``a.b``, since ``b`` may be a submodule)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


GRAPH = {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _in(name: str, area: str) -> bool:
    full = f"fink_client.{area}"
    return name == full or name.startswith(full + ".")


def _offenders(importers: Callable[[str], bool], target: str) -> list[str]:
    """``"<module> imports <name>"`` for every import of ``target`` by an ``importers`` module."""
    return sorted(
        f"{mod} imports {name}"
        for mod, names in GRAPH.items()
        if importers(mod)
        for name in names
        if _in(name, target)
    )


def test_the_graph_covers_the_package() -> None:
    assert "fink_client.consumer" in GRAPH and "fink_client.localkafka.broker" in GRAPH
    assert "fink_client.errors" in GRAPH["fink_client.consumer"]


@pytest.mark.parametrize("target", ["cli", "testing"])
def test_nothing_outside_imports(target: str) -> None:
    """The CLI sits on top; the test helpers are for tests (production uses compare)."""
    assert _offenders(lambda mod: not _in(mod, target), target) == []


def test_localkafka_is_used_by_the_cli_only() -> None:
    assert _offenders(lambda mod: not (_in(mod, "cli") or _in(mod, "localkafka")),
                      "localkafka") == []


def test_the_package_never_imports_tests_or_benchmarks() -> None:
    bad = sorted(f"{mod} imports {name}" for mod, names in GRAPH.items() for name in names
                 if name.split(".")[0] in ("tests", "benchmarks"))
    assert bad == []


def test_errors_imports_nothing_from_the_package() -> None:
    """Nor confluent-kafka: librdkafka errors are translated by their names."""
    assert [n for n in GRAPH["fink_client.errors"]
            if n.split(".")[0] in ("fink_client", "confluent_kafka")] == []


@pytest.mark.parametrize("upper", UPPER)
def test_lower_layers_never_import_upper_ones(upper: str) -> None:
    lower = [area for area in LOWER if not _in(f"fink_client.{area}", upper)]
    assert _offenders(lambda mod: any(_in(mod, area) for area in lower), upper) == []
