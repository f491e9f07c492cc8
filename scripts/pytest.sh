#!/usr/bin/env bash
# Run pytest; "no tests collected" (exit 5) is a failure here, never a silent pass.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/.venv/bin/python" -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests for: $*; refusing to call that a pass" >&2
  exit 1
fi
exit "$rc"
