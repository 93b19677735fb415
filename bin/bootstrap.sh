#!/usr/bin/env bash
# Install what fink-client needs on a fresh Debian/Ubuntu machine, then create .venv with
# the package. Idempotent: every step is skipped when already done.
#   bin/bootstrap.sh            runtime (demo)
#   bin/bootstrap.sh test       runtime + test tools
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
# The tests read the process list (passwords must not show in it).
command -v ps >/dev/null 2>&1 || need_apt+=(procps)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-venv python3-pip)
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then need_apt+=(python3-venv); fi
# The optional C fast decoder builds at install time (fastavro is used if it cannot).
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || need_apt+=(python3-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> installing system packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating virtualenv .venv"
  python3 -m venv .venv
fi
stamp=".venv/.installed-${extra:-run}"
stale=0
for f in pyproject.toml setup.py fink_client/_fastdecode.c fink_client/_arrow.c fink_client/_avro.h; do
  [ -f "$f" ] && [ "$f" -nt "$stamp" ] && stale=1
done
if [ ! -f "$stamp" ] || [ "$stale" = 1 ]; then
  echo "==> installing fink-client${extra:+ [$extra]} into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  if [ -n "$extra" ]; then spec=".[${extra}]"; else spec="."; fi
  .venv/bin/python -m pip install -q -e "$spec"
  touch "$stamp"
fi

echo "==> fetching the Apache Kafka jars (Maven Central, cached in ~/.cache/fink-client)"
.venv/bin/python -c 'from fink_client.localkafka import ensure_jars; print(ensure_jars())'
