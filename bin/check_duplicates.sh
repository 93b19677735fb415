#!/usr/bin/env bash
# CI gate against repeated code: runs the machine's `duplicates` tool (when it is on PATH)
# over the clone and fails when it lists a pair of places that is not marked boilerplate
# (the same idea written twice). Boilerplate rows (argparse preambles, fixtures, C error
# checks) are printed but do not fail. Not part of the README test command, which relies
# only on the project's .venv: this check needs a tool of the CI machine.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v duplicates >/dev/null 2>&1; then
  echo "==> duplicates: tool not on PATH, repeated-code check NOT run"
  exit 0
fi
echo "==> duplicates (repeated code; rows not marked boilerplate fail CI)"
out="$(duplicates --most 200 --seconds 120)"
printf '%s\n' "$out"
if grep -q '^incomplete:' <<<"$out"; then
  echo "duplicates: the check did not read the whole tree" >&2
  exit 1
fi
real="$(grep -E '^D[0-9]+ ' <<<"$out" | grep -v 'boilerplate' || true)"
if [ -n "$real" ]; then
  echo "duplicates: $(wc -l <<<"$real") pair(s) of repeated code; factor them out:" >&2
  printf '%s\n' "$real" >&2
  exit 1
fi
echo "duplicates: no repeated code (boilerplate rows only)"
