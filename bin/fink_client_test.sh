#!/usr/bin/env bash
# The whole test suite: unit tests, integration tests against a real embedded Apache Kafka
# broker (SCRAM users, ACLs), CLI tests, the fault suite and a bounded fuzz run; before them,
# the lint (ruff) and type (mypy) checks. tests/unit/test_packaging.py fails when a C
# compiler is present but the C fast path did not build.
# Extra arguments go to pytest (e.g. bin/fink_client_test.sh -k consumer).
set -euo pipefail
cd "$(dirname "$0")/.."
bin/bootstrap.sh test
echo "==> ruff"
.venv/bin/ruff check .
echo "==> mypy"
.venv/bin/mypy  # settings and files in pyproject.toml [tool.mypy]
echo "==> pytest"
exec .venv/bin/python -m pytest "$@"
